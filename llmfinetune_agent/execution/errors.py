"""What can go wrong with a request about a run; each error's `code` maps to HTTP and exit codes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmfinetune_agent.run_store import RunRecord

BAD_INPUT_PREFIX = "bad input: "  # marks failures caused by the user's data, model or config
ENDED = ("completed", "failed", "cancelled")


class RunError(Exception):
    """A request about a run that cannot be served; `code` maps to HTTP and exit codes."""

    code = "bad_request"


class RunNotFound(RunError):
    """No run has that id."""

    code = "not_found"


class RunBusy(RunError):
    """Another process holds the run (or the interrupt was already answered)."""

    code = "conflict"


class RunEnded(RunError):
    """The run has already ended (completed, failed or cancelled): there is nothing to do."""

    code = "conflict"

    def __init__(self, run: RunRecord) -> None:
        self.status = run.status
        reason = f": {run.error}" if run.error and run.status != "completed" else ""
        super().__init__(f"run {run.id} has already ended: {run.status}{reason}")


class InterruptNotPending(RunError):
    """The interrupt id is not among the run's pending interrupts."""

    code = "conflict"


class InvalidDecision(RunError):
    """The decision (or its edit) is invalid; the run keeps waiting."""

    code = "invalid"


class RunCancelled(RunError):
    """Raised while a run executes once a cancel was requested; the run ends `cancelled`."""

    code = "conflict"


def user_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean bad input (data, model, config): shown as a message, no traceback."""
    from llmfinetune_agent.chat_model import ChatModelError  # a configured chat model
    from llmfinetune_agent.config import ConfigError
    from models import ModelLoadError
    from phases.data import DataError
    from phases.evaluation.errors import EvaluationError
    from phases.post_training.errors import PostTrainingInputError
    from phases.training.data import TrainingInputError

    return (
        ChatModelError,
        ConfigError,
        DataError,
        ModelLoadError,
        TrainingInputError,
        EvaluationError,
        PostTrainingInputError,
    )
