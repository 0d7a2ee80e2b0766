"""The knowledge retrieval agent: indexes `knowledge.sources` and records passages for the run.

Retrieval itself arrives with the retrieval phase; until then an enabled knowledge section is
reported as not available (the run goes on without passages) rather than faked.
"""

from __future__ import annotations

from typing import Any

from llmfinetune_agent.agents.common import emit
from llmfinetune_agent.state import RunState


def knowledge_retrieval(state: RunState) -> dict[str, Any]:
    """Graph node: mark retrieval as done, saying plainly that no passages were retrieved."""
    message = "Knowledge retrieval is not available in this version; no passages were retrieved."
    emit("agent", agent="knowledge_retrieval", message=message)
    retrieval = {"status": "unavailable", "passages": 0, "message": message}
    return {"data": {**state["data"], "retrieval_done": True, "retrieval": retrieval}}
