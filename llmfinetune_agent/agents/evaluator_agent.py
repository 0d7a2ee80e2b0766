"""The evaluator agent: base vs tuned model on the eval split, against the thresholds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmfinetune_agent.agents.common import emit, run_config
from llmfinetune_agent.direct import evaluate_direct
from llmfinetune_agent.state import RunState


def evaluator(state: RunState) -> dict[str, Any]:
    """Graph node: evaluate, write the report into the run directory, keep the numbers in state."""
    training = state["training"]
    emit("agent", agent="evaluator", message="evaluating base and tuned models")
    summary = evaluate_direct(
        run_config(state),
        Path(state["run_dir"]),
        state["data"],
        tuned=training["model_path"],
        log_history=Path(training["log_history_path"]),
        progress=lambda kind, payload: emit(kind, **payload),
    )
    emit("evaluation_result", tuned=summary["tuned"], passed=summary["passed"])
    return {"evaluation": summary}
