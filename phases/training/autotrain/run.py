"""`train_autotrain()`: one training run through AutoTrain, judged by what it left behind.

AutoTrain exits 0 when training crashed (autotrain-advanced#877), so the exit code decides
nothing. A run completed when all of these hold: the output shows the Trainer's end-of-training
summary, no traceback, and the output folder holds the weights the method makes (a LoRA adapter,
or a full model). Anything else is `failed`, with AutoTrain's own error text in the message.
The result has the same shape as a TRL run's (`TrainingResult`, `log_history.json`,
`training_args.json`), so evaluation, gates, debugger and finalize treat it alike.

AutoTrain trains in one go: it cannot pause at a fraction (a mid-training gate is not asked)
nor resume from a checkpoint; a cancel stops its process tree and saves nothing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from models.config import ModelConfig
from phases.training.autotrain.environment import require_autotrain
from phases.training.autotrain.log_reader import AutoTrainLog, Progress
from phases.training.autotrain.process import (
    autotrain_environment,
    run_process_tree,
    stop_leftover,
)
from phases.training.autotrain.project import PROJECT_NAME, write_project
from phases.training.config import TrainingSettings
from phases.training.data import load_training_data
from phases.training.results import TrainingProgress, TrainingResult

LOG_FILE = "autotrain.log"
PID_FILE = "autotrain.pid"
LOG_HISTORY_FILE = "log_history.json"
ARGS_FILE = "training_args.json"
WEIGHTS = (".safetensors", ".bin")


def train_autotrain(
    config: TrainingSettings,
    *,
    model: ModelConfig | str,
    train_path: Path,
    output_dir: Path,
    backends_dir: Path,
    max_length: int = 512,
    progress: Callable[[TrainingProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    cache_dir: Path | None = None,
) -> TrainingResult:
    """Train `model` on `train_path` with AutoTrain into `output_dir/model` (from scratch each
    call: AutoTrain keeps no resumable state). Raises BackendNotInstalled before any work when
    the backend is missing, TrainingInputError for unusable data."""
    from models import load_tokenizer, resolve_model_path

    install = require_autotrain(backends_dir)
    data = load_training_data(Path(train_path), config.method)
    model_config = model if isinstance(model, ModelConfig) else ModelConfig(name_or_path=model)
    model_path = resolve_model_path(model_config, cache_dir=cache_dir)
    tokenizer = load_tokenizer(model_config, cache_dir=cache_dir)
    output_dir = Path(output_dir)
    stop_leftover(output_dir / PID_FILE)  # a tree a dead worker left would write into our folder
    _clear_outputs(output_dir)
    project = write_project(
        config,
        data=data,
        tokenizer=tokenizer,
        model_path=model_path,
        work_dir=output_dir,
        max_length=max_length,
    )
    _write_args(output_dir, config, data, project.settings, max_length)
    log = AutoTrainLog(logging_steps=config.logging_steps)
    outcome = run_process_tree(
        [str(install.bin_dir / "autotrain"), "--config", str(project.config_path)],
        cwd=output_dir,
        env=autotrain_environment(
            install.bin_dir, trust_remote_code=model_config.trust_remote_code
        ),
        log_path=output_dir / LOG_FILE,
        pid_path=output_dir / PID_FILE,
        on_line=_forward(log, progress),
        should_stop=should_stop or (lambda: False),
    )
    history_path = output_dir / LOG_HISTORY_FILE
    history = [*log.history, *([log.summary] if log.summary else [])]
    history_path.write_text(json.dumps(history, indent=1), encoding="utf-8")
    status, message = judge(log, output_dir / PROJECT_NAME, config, outcome.exit_code)
    if outcome.cancelled:
        status = "cancelled"
        message = (
            f"Cancelled at step {log.step} of {log.total_steps or '?'}: AutoTrain's processes "
            "were stopped; it keeps no checkpoint to resume from."
        )
    model_dir = output_dir / PROJECT_NAME
    if status == "completed":
        _point_adapter_at(model_dir, model_path)
    losses = [h["loss"] for h in log.history if "loss" in h]
    return TrainingResult(
        status=status,
        global_step=log.step,
        total_steps=log.total_steps or log.step,
        resumed_from_step=0,
        train_loss=losses[-1] if losses else None,
        model_path=str(model_dir) if status == "completed" else None,
        checkpoint_path=None,
        log_history_path=str(history_path),
        args_path=str(output_dir / ARGS_FILE),
        message=message,
    )


def judge(
    log: AutoTrainLog, model_dir: Path, config: TrainingSettings, exit_code: int | None
) -> tuple[str, str]:
    """("completed" | "failed", message) from the output text and the files, never the exit code."""
    missing = missing_outputs(model_dir, lora=config.lora is not None)
    error = log.error_text()
    if error is None and log.summary is not None and not missing:
        return "completed", (
            f"Training completed through AutoTrain: {log.total_steps or log.step} steps. "
            f"Model saved to {model_dir}."
        )
    if error is None:
        error = (
            "no end-of-training summary in its output"
            if log.summary is None
            else f"it saved no {', '.join(missing)}"
        )
        error += "; last lines: " + " | ".join(list(log.tail)[-5:])
    return "failed", (
        f"AutoTrain failed: {error} (its process exited {exit_code}; the full output is in "
        f"{model_dir.parent / LOG_FILE})."
    )


def missing_outputs(model_dir: Path, *, lora: bool) -> list[str]:
    """The files a finished run must have left in `model_dir` that are not there."""
    names = {p.name for p in model_dir.iterdir()} if model_dir.is_dir() else set()
    weights = any(n.endswith(WEIGHTS) and n != "training_args.bin" for n in names)
    needed = (
        {"adapter_config.json": "adapter_config.json"} if lora else {"config.json": "config.json"}
    )
    missing = [label for name, label in needed.items() if name not in names]
    return [*missing, *([] if weights else ["weights"])]


def _forward(
    log: AutoTrainLog, progress: Callable[[TrainingProgress], None] | None
) -> Callable[[str], None]:
    def on_line(line: str) -> None:
        update = log.feed(line)
        if update is not None and progress is not None:
            progress(_as_training_progress(update))

    return on_line


def _as_training_progress(update: Progress) -> TrainingProgress:
    return TrainingProgress(
        step=update.step,
        total_steps=update.total_steps,
        loss=update.loss,
        learning_rate=update.learning_rate,
        tokens_per_second=None,
        eta_seconds=update.eta_seconds,
        epoch=update.epoch,
    )


def _clear_outputs(output_dir: Path) -> None:
    """A new attempt starts clean: stale weights must not pass for this run's."""
    for name in (PROJECT_NAME, LOG_FILE, LOG_HISTORY_FILE):
        path = output_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    output_dir.mkdir(parents=True, exist_ok=True)


def _point_adapter_at(model_dir: Path, model_path: str) -> None:
    """The adapter names the base it was trained on: the run's model, not the 4.48 view."""
    adapter_config = model_dir / "adapter_config.json"
    if adapter_config.is_file():
        settings = json.loads(adapter_config.read_text(encoding="utf-8"))
        settings["base_model_name_or_path"] = model_path
        adapter_config.write_text(json.dumps(settings, indent=2), encoding="utf-8")


def _write_args(output_dir, config, data, settings, max_length) -> None:
    """What this phase decided, as the TRL path writes it (plus AutoTrain's own config)."""
    record = {
        "finetune_agent": {
            "training_config": config.model_dump(mode="json"),
            "backend": "autotrain",
            "data_kind": data.kind,
            "train_path": str(data.path),
            "num_examples": len(data.records),
            "max_length": max_length,
            "autotrain_config": settings,
        }
    }
    (output_dir / ARGS_FILE).write_text(json.dumps(record, indent=1), encoding="utf-8")
