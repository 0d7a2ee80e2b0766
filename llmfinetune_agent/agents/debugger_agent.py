"""The debugger agent: diagnoses a run that diverged, missed its thresholds, or was rejected.

Automatic diagnosis arrives with the diagnosis phase; until then the debugger proposes no
fix and says so, and the orchestrator ends the run with that reason rather than guessing.
"""

from __future__ import annotations

from typing import Any

from llmfinetune_agent.agents.common import emit
from llmfinetune_agent.state import RunState


def debugger(state: RunState) -> dict[str, Any]:
    """Graph node: record that no diagnosis is available (an empty list, not invented output)."""
    emit("agent", agent="debugger", message="automatic diagnosis is not available in this version")
    return {"diagnoses": []}
