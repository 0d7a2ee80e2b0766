"""Trainer callbacks that make a training call pausable, cancellable, observable and safe.

Imported only inside `train()`: it pulls in transformers.

Order matters: `Trainer` runs callbacks in list order after its own flow callback, so
`DivergenceGuard` goes after the callbacks that ask for a checkpoint and can veto the save.
"""

import math
import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState

from phases.training.results import TrainingProgress


class StepMonitor(TrainerCallback):
    """The loss and learning rate of the optimizer step just taken.

    The trainer subclass adds each micro-batch loss through `add_micro_loss` (the sum over one
    step's micro-batches is what Trainer itself logs); the learning rate is read just before the
    scheduler moves it on, so it is the rate this step used, as in the log history.
    """

    def __init__(self) -> None:
        self._pending = 0.0
        self.step_loss: float | None = None
        self.learning_rate: float | None = None
        self.gradients_finite = True

    def add_micro_loss(self, loss: float) -> None:
        """Record one micro-batch loss of the current optimizer step."""
        self._pending += loss

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        # A finite loss can still give NaN/inf gradients, and one such update poisons every
        # weight; one norm over the gradients is cheap next to the backward pass.
        if model is not None:
            import torch

            grads = [p.grad for p in model.parameters() if p.grad is not None]
            self.gradients_finite = bool(torch.isfinite(_total_norm(grads)))

    def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        if optimizer is not None:
            self.learning_rate = float(optimizer.param_groups[0]["lr"])

    def on_step_end(self, args, state, control, **kwargs):
        # Each process holds its share of the batch's loss; Trainer logs their mean.
        self.step_loss, self._pending = mean_over_processes(self._pending), 0.0


def _total_norm(grads: list):
    import torch

    if not grads:
        return torch.tensor(0.0)
    if hasattr(torch.nn.utils, "get_total_norm"):  # torch >= 2.6, one fused pass
        return torch.nn.utils.get_total_norm(grads)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


class StopAtStep(TrainerCallback):
    """Stop after the target step and save a checkpoint there.

    The target is `round(fraction * max_steps)` of the whole run's schedule, so a paused run
    resumed later follows exactly the learning-rate schedule of an uninterrupted one. With no
    fraction the target is the last step: the final checkpoint makes a finished run idempotent.
    """

    def __init__(self, fraction: float | None) -> None:
        self.fraction = fraction
        self.target_step: int | None = None
        self.reached = False

    def on_train_begin(self, args, state: TrainerState, control, **kwargs):
        self.target_step = target_step(state.max_steps, self.fraction)

    def on_step_end(self, args, state: TrainerState, control: TrainerControl, **kwargs):
        if self.target_step is not None and state.global_step >= self.target_step:
            self.reached = True
            control.should_training_stop = True
            control.should_save = True


def target_step(max_steps: int, fraction: float | None) -> int:
    """The step a segment ends at: a fraction of the whole run (at least 1), or its end."""
    if fraction is None:
        return max_steps
    return min(max_steps, max(1, round(fraction * max_steps)))


def any_process(flag: bool) -> bool:
    """True when `flag` is True in any data-parallel process of this training.

    Every process must ask, at the same point of every step: one that stops alone would leave
    the others waiting in their next gradient all-reduce forever. One process alone: `flag`.
    """
    return bool(_all_reduce(1.0 if flag else 0.0, "max"))


def mean_over_processes(value: float) -> float:
    """`value` averaged over the data-parallel processes (each asks at the same point)."""
    return _all_reduce(value, "sum") / _world_size()


def from_every_process(value: Any) -> list[Any]:
    """Each data-parallel process's `value` (any picklable object), in process order."""
    if _world_size() < 2:
        return [value]
    import torch.distributed as dist

    values: list[Any] = [None] * _world_size()
    dist.all_gather_object(values, value)
    return values


def _world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _all_reduce(value: float, op: str) -> float:
    if _world_size() < 2:
        return value
    import torch
    import torch.distributed as dist

    on_gpu = dist.get_backend() == "nccl"  # NCCL reduces only tensors on the GPU
    device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else torch.device("cpu")
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return float(tensor.item())


class CancelOnRequest(TrainerCallback):
    """Cooperative cancellation: ask `should_stop()` after every step; on True save and stop.

    With several processes, a request seen by any of them stops all at the same step."""

    def __init__(self, should_stop: Callable[[], bool] | None) -> None:
        self.should_stop = should_stop
        self.cancelled = False

    def on_step_end(self, args, state, control: TrainerControl, **kwargs):
        if any_process(self.should_stop is not None and self.should_stop()):
            self.cancelled = True
            control.should_training_stop = True
            control.should_save = True


class DivergenceGuard(TrainerCallback):
    """Stop at the first NaN/inf loss or gradient, without saving: the weights are garbage.

    Each process sees its own micro-batches' loss: a blow-up in any one stops them all."""

    def __init__(self, monitor: StepMonitor) -> None:
        self.monitor = monitor
        self.diverged_at_step: int | None = None

    def on_step_end(self, args, state: TrainerState, control: TrainerControl, **kwargs):
        loss = self.monitor.step_loss
        blown_up = not self.monitor.gradients_finite or (
            loss is not None and not math.isfinite(loss)
        )
        if any_process(blown_up):
            self._check(math.nan, state, control)

    def on_log(self, args, state: TrainerState, control: TrainerControl, logs=None, **kwargs):
        self._check((logs or {}).get("loss"), state, control)

    def _check(self, loss: float | None, state: TrainerState, control: TrainerControl) -> None:
        if self.diverged_at_step is None and loss is not None and not math.isfinite(loss):
            self.diverged_at_step = state.global_step
        if self.diverged_at_step is not None:
            control.should_training_stop = True
            control.should_save = False


class LongerSchedule(TrainerCallback):
    """Continuing another run's checkpoint: take the learning rate from this run's schedule.

    Trainer builds the scheduler for the new total and loads the checkpoint's scheduler state
    (its step); the lambda keeps the new total, as torch saves no state of a `partial`. But the
    optimizer's saved param groups carry the rate the *earlier* schedule had reached (0 at the
    end of a linear decay), and the first step would use it. Reset it to the new schedule's.
    """

    def on_train_begin(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
        lambdas = getattr(lr_scheduler, "lr_lambdas", None)
        if optimizer is None or lambdas is None:
            return
        step = lr_scheduler.last_epoch
        for group, base_lr, fn in zip(
            optimizer.param_groups, lr_scheduler.base_lrs, lambdas, strict=True
        ):
            group["lr"] = base_lr * fn(step)
        lr_scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


class ProgressReporter(TrainerCallback):
    """Emit a `TrainingProgress` after every optimizer step (and keep the last one)."""

    def __init__(
        self, monitor: StepMonitor, progress: Callable[[TrainingProgress], None] | None
    ) -> None:
        self.monitor = monitor
        self.progress = progress
        self.last: TrainingProgress | None = None
        # Numbers a method adds to each step's report (an RL run's rewards and samples).
        self.extra: Callable[[], dict] | None = None
        self._start_time = 0.0
        self._start_step = 0
        self._start_tokens = 0

    def on_train_begin(self, args, state: TrainerState, control, **kwargs):
        self._start_time = time.monotonic()
        self._start_step = state.global_step
        self._start_tokens = state.num_input_tokens_seen

    def on_step_end(self, args, state: TrainerState, control, **kwargs):
        elapsed = max(time.monotonic() - self._start_time, 1e-9)
        steps_done = state.global_step - self._start_step
        tokens = state.num_input_tokens_seen - self._start_tokens
        eta = elapsed / steps_done * (state.max_steps - state.global_step) if steps_done else None
        self.last = TrainingProgress(
            step=state.global_step,
            total_steps=state.max_steps,
            loss=self.monitor.step_loss,
            learning_rate=self.monitor.learning_rate,
            tokens_per_second=tokens / elapsed if tokens else None,
            eta_seconds=eta,
            epoch=state.epoch,
            **(self.extra() if self.extra else {}),
        )
        if self.progress is not None:
            self.progress(self.last)


def make_callbacks(
    *,
    stop_at_fraction: float | None,
    progress: Callable[[TrainingProgress], None] | None,
    should_stop: Callable[[], bool] | None,
    continuing: bool = False,
) -> dict[str, TrainerCallback]:
    """The run's callbacks by role, in the order the trainer must call them (`continuing`:
    the run starts from another run's checkpoint, see `LongerSchedule`)."""
    monitor = StepMonitor()
    schedule = {"schedule": LongerSchedule()} if continuing else {}
    return {
        **schedule,
        "monitor": monitor,
        "progress": ProgressReporter(monitor, progress),
        "stop": StopAtStep(stop_at_fraction),
        "cancel": CancelOnRequest(should_stop),
        "divergence": DivergenceGuard(monitor),
    }
