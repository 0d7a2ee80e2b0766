"""Execution: submitting, deciding and cancelling runs, and the workers that execute them.

    with open_service() as service:                   # stores and the compiled graph
        backend = LocalBackend(service, workers=1)
        backend.start()
        run = backend.submit(config)                  # queued; a worker starts it
        backend.decide(run.id, interrupt_id=..., decision={"decision": "approve"})
        backend.cancel(run.id, by="cli")

`RunService` executes one run in the calling thread (what `finetune-agent run` does);
`ExecutionBackend` is what the API and `finetune-agent worker` use, `LocalBackend` its
store-as-queue implementation (see backend.py) and `RayBackend` the one that executes runs on a
Ray cluster (ray_backend.py; `make_backend` picks by `FINETUNE_AGENT_BACKEND`).
"""

from llmfinetune_agent.execution.backend import ExecutionBackend, LocalBackend, make_backend
from llmfinetune_agent.execution.cancel import CancelOutcome, CancelWatch, cancel_run
from llmfinetune_agent.execution.decisions import InterruptUnknown, accept_decision
from llmfinetune_agent.execution.describe import describe_run
from llmfinetune_agent.execution.errors import (
    BAD_INPUT_PREFIX,
    ENDED,
    InterruptNotPending,
    InvalidDecision,
    RunBusy,
    RunCancelled,
    RunEnded,
    RunError,
    RunNotFound,
    user_errors,
)
from llmfinetune_agent.execution.ray_backend import FollowedRuns, RayBackend
from llmfinetune_agent.execution.service import (
    PROGRESS_LOG_SECONDS,
    EventSink,
    RunService,
    open_service,
)
from llmfinetune_agent.execution.workers import RunWorkerPool

__all__ = [
    "BAD_INPUT_PREFIX",
    "ENDED",
    "PROGRESS_LOG_SECONDS",
    "CancelOutcome",
    "CancelWatch",
    "EventSink",
    "ExecutionBackend",
    "FollowedRuns",
    "InterruptNotPending",
    "InterruptUnknown",
    "InvalidDecision",
    "LocalBackend",
    "RayBackend",
    "RunBusy",
    "RunCancelled",
    "RunEnded",
    "RunError",
    "RunNotFound",
    "RunService",
    "RunWorkerPool",
    "accept_decision",
    "cancel_run",
    "describe_run",
    "make_backend",
    "open_service",
    "user_errors",
]
