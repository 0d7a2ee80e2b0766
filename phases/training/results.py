"""What a training call reports: progress while it runs, and its result when it returns."""

from dataclasses import asdict, dataclass
from typing import Literal

TrainingStatus = Literal["completed", "paused", "cancelled", "diverged", "failed"]
"""'failed': the training engine crashed (a backend run in a subprocess, e.g. AutoTrain); the
result's message carries the engine's own error text."""


@dataclass
class TrainingProgress:
    """One progress report, emitted after every optimizer step."""

    step: int
    total_steps: int
    loss: float | None
    learning_rate: float | None
    tokens_per_second: float | None
    eta_seconds: float | None
    epoch: float | None

    def to_dict(self) -> dict:
        """A JSON-serializable dict."""
        return asdict(self)


@dataclass
class TrainingResult:
    """The outcome of one `train()` call (one segment of a run, or the whole run)."""

    status: TrainingStatus
    global_step: int
    total_steps: int
    resumed_from_step: int
    train_loss: float | None
    model_path: str | None
    checkpoint_path: str | None
    log_history_path: str
    args_path: str
    message: str
    diverged_at_step: int | None = None
    tokens_per_second: float | None = None
    continued_from: str | None = None
    """The earlier run's checkpoint this run continued from (`train(continue_from=...)`)."""

    def to_dict(self) -> dict:
        """A JSON-serializable dict."""
        return asdict(self)
