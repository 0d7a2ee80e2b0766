"""`train()`: one call trains one segment of a run (or all of it) with a TRL trainer.

A call always continues from the newest valid checkpoint in `output_dir/checkpoints`, so the
same call serves a fresh start, a resume after an approval gate, and recovery after a crash.
With `continue_from` and no checkpoint of its own, it starts from another run's checkpoint
(same model, data and method) and trains on to a longer schedule's end. With
`config.num_processes` > 1 it trains data-parallel in that many processes (multiprocess.py),
each running this same function; only the first process writes the run's files.
"""

import json
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from models.config import ModelConfig
from phases.training.checkpoints import (
    checkpoint_state,
    checkpoint_step,
    damaged_files,
    expected_resume_warnings_hidden,
    is_valid_checkpoint,
    latest_checkpoint,
)
from phases.training.config import RLTraining, TrainingSettings
from phases.training.data import TrainingData, TrainingInputError, load_training_data
from phases.training.results import TrainingProgress, TrainingResult

MODEL_SUBDIR = "model"
CHECKPOINTS_SUBDIR = "checkpoints"
LOG_HISTORY_FILE = "log_history.json"
ARGS_FILE = "training_args.json"


def train(
    config: TrainingSettings,
    *,
    model: ModelConfig | str,
    train_path: Path,
    eval_path: Path | None,
    output_dir: Path,
    max_length: int = 512,
    stop_at_fraction: float | None = None,
    progress: Callable[[TrainingProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    cache_dir: Path | None = None,
    continue_from: Path | None = None,
    extra_callbacks: list | None = None,
    backends_dir: Path | None = None,
    reward_modules: list[str] | None = None,
) -> TrainingResult:
    """Train `model` on `train_path` with `config.method`, resuming from any checkpoint.

    `stop_at_fraction` ends this call at `round(fraction * total_steps)` with status "paused"
    (the schedule stays that of the whole run); a later call finishes it. `should_stop` is asked
    after every step (status "cancelled"); a NaN/inf loss ends with status "diverged". On
    completion the model (or LoRA adapter) and tokenizer are in `output_dir/model`.

    `continue_from` is a checkpoint of an earlier run with the same model, data and method:
    when `output_dir/checkpoints` has none of its own, training starts from it (weights,
    optimizer and step) and runs on to this config's total steps, the learning rate following
    this longer schedule. Refused unless the checkpoint is valid and its step is below the new
    total. Raises TrainingInputError for unusable data or checkpoints, before training.

    `config.num_processes` > 1 (and not already one of several processes) launches that many
    processes with `accelerate launch` and waits for them; pausing, `should_stop` and
    `progress` work across them. `extra_callbacks` go after the phase's own (Ray Train's
    report callback, say).

    GRPO and RLOO score completions with `config.rewards`; a user reward function must come
    from a module in `reward_modules` (the operator's allow-list). Every reward is checked
    before the model loads. A reward guard that fires with action 'stop' ends the run there,
    the model saved, with `result.reward_guard` saying why.

    With `config.backend == "autotrain"` AutoTrain trains instead (see
    `phases.training.autotrain`), from its environment under `backends_dir`: to the end in one
    go (`stop_at_fraction` is not honoured), without checkpoints (`continue_from` is refused).
    """
    if config.backend == "autotrain":
        return _train_with_autotrain(
            config,
            model=model,
            train_path=train_path,
            output_dir=output_dir,
            backends_dir=backends_dir,
            max_length=max_length,
            progress=progress,
            should_stop=should_stop,
            cache_dir=cache_dir,
            continue_from=continue_from,
        )
    if stop_at_fraction is not None and not 0.0 < stop_at_fraction <= 1.0:
        raise TrainingInputError(f"stop_at_fraction must be in (0, 1], got {stop_at_fraction}.")
    train_data = load_training_data(Path(train_path), config.method)
    eval_data = load_training_data(Path(eval_path), config.method) if eval_path else None
    builder_extra = {}
    if isinstance(config, RLTraining):
        builder_extra["reward_functions"] = reward_functions(config, train_data, reward_modules)
    if config.num_processes > 1 and process_count() == 1:
        from phases.training.multiprocess import train_in_processes

        return train_in_processes(
            config,
            model=model,
            train_path=Path(train_path),
            eval_path=Path(eval_path) if eval_path else None,
            output_dir=Path(output_dir),
            max_length=max_length,
            stop_at_fraction=stop_at_fraction,
            progress=progress,
            should_stop=should_stop,
            cache_dir=cache_dir,
            continue_from=continue_from,
            reward_modules=reward_modules,
        )

    from phases.training.callbacks import make_callbacks, target_step
    from phases.training.rl_trainers import RL_BUILDERS
    from phases.training.trainers import BUILDERS, common_args, quiet

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    checkpoints_dir = output_dir / CHECKPOINTS_SUBDIR
    resume = latest_checkpoint(checkpoints_dir)
    continued = None
    if resume is None and continue_from is not None:
        resume = continued = _continuation(Path(continue_from), config, train_data)
    callbacks = make_callbacks(
        stop_at_fraction=stop_at_fraction,
        progress=progress,
        should_stop=should_stop,
        continuing=continued is not None,
    )
    # One process at a time builds the model cache and the tokenized datasets; the others
    # then read what it wrote.
    with main_process_first():
        try:
            trainer = {**BUILDERS, **RL_BUILDERS}[config.method](
                config,
                model=model,
                train_data=train_data,
                eval_data=eval_data,
                base_args=common_args(
                    config,
                    checkpoints_dir=checkpoints_dir,
                    max_length=max_length,
                    has_eval=bool(eval_data),
                ),
                work_dir=output_dir,
                callbacks=[*callbacks.values(), *(extra_callbacks or [])],
                monitor=callbacks["monitor"],
                cache_dir=cache_dir,
                **builder_extra,
            )
        except ValueError as error:
            if not _no_lora_target(error, config):
                raise
            raise TrainingInputError(
                f"training.lora.target_modules {config.lora.target_modules!r}: no layer of model "
                f"{getattr(model, 'name_or_path', model)} has such a name ({error}). Name its "
                "linear layers (q_proj, v_proj, ... in Llama-like models) or use 'all-linear'."
            ) from None
    quiet(trainer)
    total_steps = total_training_steps(trainer)
    if continued is not None:
        _check_longer_run(continued, total_steps)
    else:
        _check_same_run(resume, total_steps)
    # A continuation resumed from its own checkpoint (after a crash) still continued from there.
    began_at = (continued or _recorded_continuation(output_dir)) if continue_from else None
    if trainer.is_world_process_zero():
        _write_args(output_dir, trainer, config, train_data, total_steps, max_length, began_at)
    resumed_from = checkpoint_step(resume)
    if resumed_from < total_steps and resumed_from >= target_step(total_steps, stop_at_fraction):
        # This segment is already done (e.g. the same pause asked twice): train nothing.
        trainer.state.global_step = resumed_from
        trainer.state.log_history = checkpoint_state(resume).get("log_history", [])
    else:
        with expected_resume_warnings_hidden(trainer.model):
            trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    result = _finish(trainer, callbacks, output_dir, total_steps, resumed_from, config)
    if began_at is not None:
        result.continued_from = str(began_at)
        result.checkpoint_path = result.checkpoint_path or str(began_at)
    return result


def _recorded_continuation(output_dir: Path) -> str | None:
    """The checkpoint an earlier attempt of this segment continued from, as it recorded."""
    try:
        recorded = json.loads((output_dir / ARGS_FILE).read_text(encoding="utf-8"))
        return recorded["finetune_agent"]["continued_from"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def reward_functions(
    config: RLTraining, data: TrainingData, reward_modules: list[str] | None
) -> list:
    """The run's reward functions, checked against the columns every training row has (a
    reward model is checked, not loaded). Raises TrainingInputError naming the field."""
    from phases.training.rewards import build_rewards

    columns = set.intersection(*(set(record) for record in data.records))
    return build_rewards(config.rewards, columns=columns, allowed_modules=reward_modules or [])


def process_count() -> int:
    """How many data-parallel processes this one belongs to (`WORLD_SIZE`, set by the launcher:
    `accelerate launch`/torchrun, or Ray Train)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


@contextmanager
def main_process_first() -> Iterator[None]:
    """The block runs in the first process, then in the others (one process: just runs).

    Barriers go through torch.distributed directly: accelerate's `PartialState()` built before
    the TrainingArguments reports a single process on the CPU (its `main_process_first` then let
    every process write the dataset cache at once: seen in CI as a missing Arrow file). The
    process group made here is the one accelerate adopts later.
    """
    if process_count() == 1:
        yield
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group()  # env:// from the launcher; gloo on the CPU, nccl on GPUs
    first = dist.get_rank() == 0
    if not first:
        dist.barrier()
    yield
    if first:
        dist.barrier()


def _train_with_autotrain(config, *, continue_from, backends_dir, **kwargs) -> TrainingResult:
    from models.paths import default_backends_dir
    from phases.training.autotrain.run import train_autotrain

    if continue_from is not None:
        raise TrainingInputError(
            f"continue_from={continue_from}: training.backend 'autotrain' cannot continue from a "
            "checkpoint (AutoTrain keeps none); train from the base model."
        )
    return train_autotrain(config, backends_dir=backends_dir or default_backends_dir(), **kwargs)


def total_training_steps(trainer) -> int:
    """The whole run's optimizer steps, as Trainer computes them (epochs or max_steps)."""
    dataloader = trainer.get_train_dataloader()
    return int(trainer.set_initial_training_values(trainer.args, dataloader)[-1])


def _no_lora_target(error: ValueError, config: TrainingSettings) -> bool:
    """True if `error` is peft's refusal of LoRA target modules the model does not have: a
    config mistake to report as bad input, not a crash."""
    return config.lora is not None and type(error).__name__ == "NoMatchingPeftModuleError"


def _check_same_run(checkpoint: Path | None, total_steps: int) -> None:
    """A checkpoint resumes only the run it came from: same total steps, same schedule."""
    saved_total = checkpoint_state(checkpoint).get("max_steps")
    if saved_total is not None and saved_total != total_steps:
        raise TrainingInputError(
            f"{checkpoint} belongs to a run of {saved_total} steps, but this configuration and "
            f"data give {total_steps}. Resume with the same training config and data, or use a "
            "new output_dir to start over."
        )


def _continuation(checkpoint: Path, config: TrainingSettings, data: TrainingData) -> Path:
    """`checkpoint`, checked to be a complete checkpoint of a run on the same data and method."""
    if not checkpoint.is_dir() or not is_valid_checkpoint(checkpoint):
        raise TrainingInputError(
            f"continue_from={checkpoint} is not a complete Trainer checkpoint (a checkpoint-N "
            "directory with its trainer_state.json). Pass a checkpoint of the earlier run, or "
            "train from the base model."
        )
    damaged = damaged_files(checkpoint)
    if damaged:
        raise TrainingInputError(
            f"continue_from={checkpoint}: {', '.join(damaged)} cannot be read whole (damaged or "
            "cut short after it was saved). Restore the file, pass another checkpoint, or train "
            "from the base model."
        )
    # The earlier run's training_args.json sits two levels up (<run>/checkpoints/checkpoint-N).
    args_file = checkpoint.parent.parent / ARGS_FILE
    earlier = {}
    if args_file.is_file():
        earlier = json.loads(args_file.read_text(encoding="utf-8")).get("finetune_agent", {})
    mine = config.model_dump(mode="json")
    theirs = earlier.get("training_config") or {}
    same = ("method", "lora", "batch_size", "gradient_accumulation_steps")
    differ = [f"training.{k}" for k in same if k in theirs and theirs[k] != mine[k]]
    if earlier.get("num_examples") not in (None, len(data.records)):
        differ.append(f"the number of examples ({earlier['num_examples']} -> {len(data.records)})")
    if differ:
        raise TrainingInputError(
            f"continue_from={checkpoint} was trained with a different "
            + ", ".join(differ)
            + ": continuing needs the same model, data and method. Train from the base model."
        )
    return checkpoint


def _check_longer_run(checkpoint: Path, total_steps: int) -> None:
    """Continuing makes sense only towards a total beyond the checkpoint's step."""
    step = checkpoint_step(checkpoint)
    if step >= total_steps:
        raise TrainingInputError(
            f"continue_from={checkpoint} is at step {step}, but this configuration trains "
            f"{total_steps} steps in all: nothing is left to train. Lengthen the schedule "
            "(training.epochs or training.max_steps) beyond that step, or train from the base "
            "model."
        )


def _finish(trainer, callbacks, output_dir, total_steps, resumed_from, config) -> TrainingResult:
    state = trainer.state
    writer = trainer.is_world_process_zero()  # one process writes, the others wait for it
    history_path = output_dir / LOG_HISTORY_FILE
    if writer:
        history_path.write_text(json.dumps(_finite(state.log_history), indent=1), encoding="utf-8")
    diverged_at = callbacks["divergence"].diverged_at_step
    watch = getattr(trainer, "reward_watch", None)
    guard = watch.fired if watch is not None else None
    status, message = _status(state.global_step, total_steps, diverged_at, callbacks, config)
    if guard is not None and guard["action"] == "stop" and status == "paused":
        status, message = "completed", guard["message"]
    model_path = None
    if status == "completed":
        model_path = output_dir / MODEL_SUBDIR
        if writer:
            trainer.model.save_pretrained(model_path)
            trainer.processing_class.save_pretrained(model_path)
        message += f" Model saved to {model_path}."
    trainer.accelerator.wait_for_everyone()
    checkpoint = latest_checkpoint(output_dir / CHECKPOINTS_SUBDIR)
    last = callbacks["progress"].last
    return TrainingResult(
        status=status,
        global_step=state.global_step,
        total_steps=total_steps,
        resumed_from_step=resumed_from,
        train_loss=_last_loss(state.log_history, callbacks["monitor"].step_loss),
        model_path=str(model_path) if model_path else None,
        checkpoint_path=str(checkpoint) if checkpoint else None,
        log_history_path=str(history_path),
        args_path=str(output_dir / ARGS_FILE),
        message=message,
        diverged_at_step=diverged_at,
        tokens_per_second=last.tokens_per_second if last else None,
        reward_guard=guard,
        completions_path=str(watch.path) if watch is not None and watch.path.is_file() else None,
    )


def _status(step, total, diverged_at, callbacks, config) -> tuple[str, str]:
    if diverged_at is not None:
        return "diverged", (
            f"Training diverged: the loss or its gradient became NaN or infinite at step {diverged_at}. "
            f"No model was saved. Lower the learning rate (now {config.learning_rate}) or check "
            "the data, then train again."
        )
    if callbacks["cancel"].cancelled:
        return "cancelled", f"Cancelled at step {step} of {total}; a checkpoint was saved."
    if step >= total:
        return "completed", f"Training completed: {total} steps."
    return "paused", (
        f"Paused at step {step} of {total} ({step / max(total, 1):.0%}); "
        "call train() again with the same output_dir to continue."
    )


def _last_loss(log_history: list[dict], step_loss: float | None) -> float | None:
    """The most recent logged training loss (the last step's loss when none was logged)."""
    losses = [entry["loss"] for entry in log_history if "loss" in entry]
    loss = losses[-1] if losses else step_loss
    return loss if loss is not None and math.isfinite(loss) else None


def _finite(value):
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _write_args(
    output_dir, trainer, config, data: TrainingData, total_steps, max_length, continued
) -> None:
    """The resolved Trainer arguments plus what this phase decided, as JSON."""
    resolved = json.loads(trainer.args.to_json_string())
    resolved["finetune_agent"] = {
        "training_config": config.model_dump(mode="json"),
        "data_kind": data.kind,
        "train_path": str(data.path),
        "num_examples": len(data.records),
        "total_steps": total_steps,
        "max_length": max_length,
        "packing": bool(getattr(trainer.args, "packing", False)),
        "continued_from": str(continued) if continued else None,
    }
    (output_dir / ARGS_FILE).write_text(json.dumps(resolved, indent=1), encoding="utf-8")
