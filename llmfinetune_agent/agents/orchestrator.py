"""The orchestrator node: asks the routing policy (`llmfinetune_agent.routing`) where the run
goes next, logs the choice with its reason, and goes there; a choice that ends the run also
sets its outcome."""

from __future__ import annotations

from typing import Any

from langgraph.types import Command

from llmfinetune_agent.routing import Destination, choose_next
from llmfinetune_agent.state import RunState


def orchestrator(state: RunState) -> Command[Destination]:
    """Graph node: pick the next node and record why."""
    choice = choose_next(state)
    entry: dict[str, Any] = {
        "next": choice.node,
        "reason": choice.reason,
        "iteration": state.get("iteration", 1),
    }
    update: dict[str, Any] = {"log": [entry]}
    if choice.outcome is not None:
        entry["outcome"] = choice.outcome
        update["outcome"] = choice.outcome
        if choice.outcome != "completed":
            update["reason"] = choice.reason
    return Command(goto=choice.node, update=update)
