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
    rewards: dict | None = None
    """RL runs: this step's mean reward, each function's mean, zero-spread and clipped shares."""
    samples: list[dict] | None = None
    """RL runs, every `log_completions_steps`: sample completions with each function's reward."""
    reward_guard: dict | None = None
    """RL runs: the guard that fired (kind, step, action, message), once it has."""

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
    reward_guard: dict | None = None
    """RL runs: the reward guard that stopped or flagged the run (kind, step, action, message)."""
    completions_path: str | None = None
    """RL runs: the JSONL of sample completions with their rewards, every N steps."""

    def to_dict(self) -> dict:
        """A JSON-serializable dict."""
        return asdict(self)
