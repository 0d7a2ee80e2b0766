"""Training on a Ray cluster with Ray Train, resumable after a worker or a node dies.

    import ray
    ray.init(address="auto")
    result = train_on_ray(SFTTraining(num_processes=2), model="builtin:tiny-llama",
                          train_path=..., eval_path=None, output_dir=Path("out"),
                          name="my-training", storage_path=Path("/shared/ray"))

A `TorchTrainer` runs `config.num_processes` workers, each asking for `config.resources`
(so 4 processes with one GPU each are 4 workers of one GPU, never one worker of four), and each
worker runs `train()` on its share of every batch. The HF Trainer saves a checkpoint every
`save_steps` into a scratch directory on the worker's own node, and the first worker reports
it to Ray Train (`RayTrainReportCallback`), which keeps it in `storage_path`. When a worker or
its node dies, `FailureConfig` has Ray Train start the workers again, on any node with the
resources; each worker then copies the newest complete checkpoint into its new scratch
directory before `train()` starts, so the HF Trainer resumes at that checkpoint's step, optimizer
and schedule included. Without that hand-back it would start again at step 0 on a fresh node
(ray#46814). "Newest complete" looks past Ray's own record: a report waits in a one-slot queue
until the controller polls, so the last reported checkpoint can be two saves old when a node
dies (seen in CI: step 40 trained, Ray's latest at 20). Every checkpoint that reached storage
carries a manifest of its files and sizes (`MANIFEST`), and the newest whose files are all
there is taken. At most `save_steps` steps are lost.

Only what ends a call reaches `output_dir` (the same layout as `train()` there): the log
history, the arguments, the model on completion and the checkpoint the call ended at, which
the next call (after an approval gate, say) starts from. Ray is imported only here, and this
module only where it is used.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.config import ModelConfig
from phases.training.checkpoints import checkpoint_step, latest_checkpoint
from phases.training.config import TrainingResources, TrainingSettings
from phases.training.data import TrainingInputError
from phases.training.results import TrainingProgress, TrainingResult
from phases.training.reward_watch import COMPLETIONS_FILE, GUARD_FILE
from phases.training.run import ARGS_FILE, CHECKPOINTS_SUBDIR, LOG_HISTORY_FILE, MODEL_SUBDIR

RL_FILES = (COMPLETIONS_FILE, GUARD_FILE)
"""An RL run's sampled completions and a reward guard that fired: written by one call, read or
appended to by the next, so they travel between `output_dir` and each call's scratch."""

RESULT_FILE = "ray_result.json"
INPUT_ERROR_FILE = "input_error.json"
"""In the run's storage (every node reaches it): a worker's input error, which the workers Ray
restarts after that worker fails find and end on."""
SCRATCH_ENV = "FINETUNE_AGENT_TRAIN_SCRATCH"
"""Where workers keep their checkpoints on their node (default: the system's temp folder)."""
STOP_CHECK_SECONDS = 1.0


def train_on_ray(
    config: TrainingSettings,
    *,
    model: ModelConfig | str,
    train_path: Path,
    eval_path: Path | None,
    output_dir: Path,
    name: str,
    storage_path: Path,
    max_length: int = 512,
    stop_at_fraction: float | None = None,
    progress: Callable[[TrainingProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    cache_dir: Path | None = None,
    continue_from: Path | None = None,
    max_failures: int = 3,
    on_workers_started: Callable[[dict[str, Any]], None] | None = None,
    reward_modules: list[str] | None = None,
) -> TrainingResult:
    """`train()` on Ray Train workers (see the module docstring); Ray must be initialized.

    `name` names the Ray Train run in `storage_path` (shared by every node): the same name
    continues from that run's last reported checkpoint. `progress`, `should_stop` and
    `on_workers_started` ({resumed_from_step, node_id, pid, world_size}, each time the workers
    start) are called in the first worker, so they must be picklable (e.g. call an actor).
    `reward_modules`: the allow-list for user reward functions (GRPO, RLOO).
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    request = {
        "config": config.model_dump(mode="json"),
        "model": model.model_dump(mode="json") if isinstance(model, ModelConfig) else model,
        "train_path": str(train_path),
        "eval_path": str(eval_path) if eval_path else None,
        "output_dir": str(output_dir),
        "max_length": max_length,
        "stop_at_fraction": stop_at_fraction,
        "cache_dir": str(cache_dir) if cache_dir else None,
        "continue_from": str(continue_from) if continue_from else None,
        "name": name,
        "storage_path": str(storage_path),
        "reward_modules": reward_modules,
    }
    (Path(output_dir) / RESULT_FILE).unlink(missing_ok=True)
    _input_error_file(request).unlink(missing_ok=True)
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={
            "request": request,
            "progress": progress,
            "should_stop": should_stop,
            "on_workers_started": on_workers_started,
        },
        scaling_config=ScalingConfig(
            num_workers=config.num_processes,
            use_gpu=config.resources.gpus > 0,
            resources_per_worker=worker_resources(config.resources),
        ),
        run_config=RunConfig(
            name=name,
            storage_path=str(storage_path),
            failure_config=FailureConfig(max_failures=max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=config.save_total_limit),
        ),
    )
    trainer.fit()
    outcome = json.loads((Path(output_dir) / RESULT_FILE).read_text(encoding="utf-8"))
    if "input_error" in outcome:
        raise TrainingInputError(outcome["input_error"])
    return TrainingResult(**outcome["result"])


def worker_resources(resources: TrainingResources) -> dict[str, float]:
    """Ray's resource request of one training worker."""
    request = {"CPU": resources.cpus}
    if resources.gpus:
        request["GPU"] = resources.gpus
    if resources.memory_gb:
        request["memory"] = resources.memory_gb * 2**30
    return request


def train_loop(loop_config: dict[str, Any]) -> None:
    """One Ray Train worker: restore the last checkpoint, train, publish (first worker)."""
    import ray.train

    from phases.training.config import parse_training_config
    from phases.training.run import train

    context = ray.train.get_context()
    first = context.get_world_rank() == 0
    request = loop_config["request"]
    output_dir = Path(request["output_dir"])
    recorded = _recorded_input_error(request)
    if recorded is not None:  # Ray's restart after a worker's input error: nothing to retry
        if first:
            _write_outcome(output_dir, {"input_error": recorded})
        return
    scratch = scratch_dir(request["name"])
    resumed_from = _restore(
        scratch / CHECKPOINTS_SUBDIR,
        output_dir,
        Path(request["storage_path"]) / request["name"],
        context.get_local_rank(),
    )
    if first:  # a restart on the same node keeps its scratch's newer copies
        _copy_files(output_dir, scratch, RL_FILES, overwrite=False)
    started = loop_config["on_workers_started"]
    if first and started is not None:
        started(
            {
                "resumed_from_step": resumed_from,
                "node_id": ray.get_runtime_context().get_node_id(),
                "pid": os.getpid(),
                "world_size": context.get_world_size(),
            }
        )
    try:
        result = train(
            parse_training_config(request["config"]),
            model=_model(request["model"]),
            train_path=Path(request["train_path"]),
            eval_path=Path(request["eval_path"]) if request["eval_path"] else None,
            output_dir=scratch,
            max_length=request["max_length"],
            stop_at_fraction=request["stop_at_fraction"],
            progress=loop_config["progress"] if first else None,
            should_stop=_Throttled(loop_config["should_stop"]),
            cache_dir=Path(request["cache_dir"]) if request["cache_dir"] else None,
            continue_from=Path(request["continue_from"]) if request["continue_from"] else None,
            extra_callbacks=[_report_callback()],
            reward_modules=request.get("reward_modules"),
        )
    except TrainingInputError as exc:  # not worth a retry: the same input fails again
        _record_input_error(request, str(exc), output_dir if first else None)
        if context.get_world_size() > 1:
            # The other workers wait in their next collective until its 30-minute timeout:
            # failing this worker has Ray end them now, and the restart ends at once (above).
            raise RuntimeError(f"training input error, recorded for the run: {exc}") from exc
        return
    if first:
        _write_outcome(output_dir, {"result": _publish(scratch, output_dir, result)})
    _barrier()  # published: the scratch copies are no longer needed
    if context.get_local_rank() == 0:
        shutil.rmtree(scratch, ignore_errors=True)


def _input_error_file(request: dict[str, Any]) -> Path:
    return Path(request["storage_path"]) / request["name"] / INPUT_ERROR_FILE


def _record_input_error(request: dict[str, Any], error: str, output_dir: Path | None) -> None:
    """Keep a worker's input error where every worker and a restarted one find it."""
    path = _input_error_file(request)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".{os.getpid()}.part")
    partial.write_text(json.dumps({"input_error": error}), encoding="utf-8")
    partial.replace(path)
    if output_dir is not None:
        _write_outcome(output_dir, {"input_error": error})


def _recorded_input_error(request: dict[str, Any]) -> str | None:
    """The input error a worker recorded in this call, if any."""
    path = _input_error_file(request)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))["input_error"]


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def scratch_dir(name: str) -> Path:
    """This node's working directory for the training `name` (checkpoints, tokenized data)."""
    import ray

    root = Path(os.environ.get(SCRATCH_ENV) or tempfile.gettempdir()) / "finetune-agent-train"
    return root / ray.get_runtime_context().get_node_id()[:16] / name


def _restore(local: Path, output_dir: Path, storage: Path, local_rank: int) -> int:
    """Copy the newest checkpoint (Ray Train's last reported, a newer one already in `storage`,
    or the one the previous call ended at) into this node's scratch when it is newer than what
    is there; its step."""
    import ray.train

    reported = ray.train.get_checkpoint()
    with reported.as_directory() if reported else contextlib.nullcontext() as directory:
        candidates = [
            latest_checkpoint(output_dir / CHECKPOINTS_SUBDIR, remove_broken=False),
            *stored_checkpoints(storage),
        ]
        if directory is not None:
            candidates.append(Path(directory) / CHECKPOINT_IN_REPORT)
        best = max((c for c in candidates if c and c.is_dir()), key=checkpoint_step, default=None)
        step = checkpoint_step(best)
        if local_rank == 0 and step > checkpoint_step(latest_checkpoint(local)):
            local.mkdir(parents=True, exist_ok=True)
            shutil.copytree(best, local / f"checkpoint-{step}", dirs_exist_ok=True)
    _barrier()  # the node's other workers wait for the copy
    return step


CHECKPOINT_IN_REPORT = "checkpoint"
"""The HF checkpoint's folder inside a checkpoint reported by `RayTrainReportCallback`."""
MANIFEST = "finetune-agent-manifest.json"
"""Written into each checkpoint before it is reported: {relative path: size} of its files."""


def write_manifest(checkpoint: Path) -> None:
    """Record the files of `checkpoint` and their sizes, for `is_complete` after a copy."""
    files = {
        str(f.relative_to(checkpoint)): f.stat().st_size
        for f in sorted(checkpoint.rglob("*"))
        if f.is_file() and f.name != MANIFEST
    }
    (checkpoint / MANIFEST).write_text(json.dumps({"files": files}), encoding="utf-8")


def is_complete(checkpoint: Path) -> bool:
    """True when every file the manifest lists is in `checkpoint` at its recorded size (a copy
    cut off by a kill has a missing or short file, or no readable manifest)."""
    try:
        files = json.loads((checkpoint / MANIFEST).read_text(encoding="utf-8"))["files"]
        return all((checkpoint / name).stat().st_size == size for name, size in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def stored_checkpoints(storage: Path) -> list[Path]:
    """The complete HF checkpoints in a Ray Train run's storage folder, reported or not."""
    if not storage.is_dir():
        return []
    return [
        found
        for found in (d / CHECKPOINT_IN_REPORT for d in storage.glob("checkpoint_*"))
        if is_complete(found)
    ]


def _report_callback():
    """`RayTrainReportCallback` that only the first worker reports checkpoints through.

    Its `on_save` copies the newest `checkpoint-N`; a second worker may get there before the
    first has finished writing it, so the others report their metrics with no checkpoint.
    """
    import ray.train
    from ray.train.huggingface.transformers import RayTrainReportCallback
    from transformers.trainer_utils import get_last_checkpoint

    class FirstWorkerReports(RayTrainReportCallback):
        def on_save(self, args, state, control, **kwargs):
            if ray.train.get_context().get_world_rank() == 0:
                newest = get_last_checkpoint(args.output_dir)  # the one Ray's callback copies
                if newest is not None:
                    write_manifest(Path(newest))
                return super().on_save(args, state, control, **kwargs)
            metrics: dict[str, Any] = {}
            for entry in state.log_history:
                metrics.update(entry)
            ray.train.report(metrics=metrics, checkpoint=None)

    return FirstWorkerReports()


class _Throttled:
    """`should_stop` asked at most every STOP_CHECK_SECONDS (it may be a remote call)."""

    def __init__(self, ask: Callable[[], bool] | None) -> None:
        self.ask = ask
        self.answer = False
        self.asked_at = 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if self.ask is not None and not self.answer and now - self.asked_at >= STOP_CHECK_SECONDS:
            self.asked_at = now
            self.answer = bool(self.ask())
        return self.answer


def _model(value: Any) -> Any:
    return ModelConfig.model_validate(value) if isinstance(value, dict) else value


def _publish(scratch: Path, output_dir: Path, result: TrainingResult) -> dict[str, Any]:
    """Copy what the call produced from the scratch directory into `output_dir`."""
    _copy_files(scratch, output_dir, (LOG_HISTORY_FILE, ARGS_FILE, *RL_FILES))
    published = result.to_dict()
    if result.model_path:
        shutil.rmtree(output_dir / MODEL_SUBDIR, ignore_errors=True)
        shutil.copytree(scratch / MODEL_SUBDIR, output_dir / MODEL_SUBDIR)
        published["model_path"] = str(output_dir / MODEL_SUBDIR)
    if result.checkpoint_path:
        kept = output_dir / CHECKPOINTS_SUBDIR / Path(result.checkpoint_path).name
        if not kept.is_dir():
            shutil.copytree(result.checkpoint_path, kept)
        published["checkpoint_path"] = str(kept)
    published["log_history_path"] = str(output_dir / LOG_HISTORY_FILE)
    published["args_path"] = str(output_dir / ARGS_FILE)
    if result.completions_path:
        published["completions_path"] = str(output_dir / COMPLETIONS_FILE)
    return published


def _copy_files(
    source: Path, target: Path, names: tuple[str, ...], *, overwrite: bool = True
) -> None:
    """Copy each of `names` that `source` holds into `target` (not over a copy already there
    unless `overwrite`)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (source / name).is_file() and (overwrite or not (target / name).exists()):
            shutil.copy2(source / name, target / name)


def _write_outcome(output_dir: Path, outcome: dict[str, Any]) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    partial = output_dir / (RESULT_FILE + ".part")
    partial.write_text(json.dumps(outcome), encoding="utf-8")
    partial.replace(output_dir / RESULT_FILE)
