"""OpenAPI examples for the LangGraph Server routes (`/info`, `/assistants`, `/threads`), in the
shapes `api.langgraph_shapes` produces, trimmed from a real quickstart run."""

from __future__ import annotations

from typing import Any

from api import langgraph_shapes as lg

THREAD_ID = "df4255f3ac95"
INTERRUPT_ID = "c0da26dd09c09786a6be259301eab20b"
WHEN = "2026-12-06T10:12:31.412345+00:00"
GATE: dict[str, Any] = {
    "kind": "approve_plan",
    "message": "Plan: SFT on builtin:tiny-llama with 144 training examples, about 144 steps. "
    "Approve?",
    "summary": {"model": "builtin:tiny-llama", "method": "sft, all weights", "steps": 144},
    "details": {"model": "builtin:tiny-llama", "method": "sft", "estimate": {"total_steps": 144}},
    "options": ["approve", "reject", "edit"],
    "default": "approve",
    "action_requests": [
        {
            "name": "approve_plan",
            "args": {"edits": {}},
            "description": "Plan: SFT on builtin:tiny-llama ... Approve?\n\n- **steps**: 144",
        }
    ],
    "review_configs": [
        {"action_name": "approve_plan", "allowed_decisions": ["approve", "reject", "edit"]}
    ],
}
RUN_SUMMARY = {
    "id": THREAD_ID,
    "name": "quickstart",
    "status": "awaiting_approval",
    "current_node": "gate_plan",
    "pending_interrupt": {"id": INTERRUPT_ID, **GATE},
    "error": None,
    "model_path": None,
    "run_dir": f"/srv/finetune-agent/runs/{THREAD_ID}",
    "parent_run_id": None,
    "created_at": WHEN,
    "updated_at": WHEN,
}
THREAD = lg.thread_of(RUN_SUMMARY)
INFO = {
    "version": "0.1.0",
    "langgraph_py_version": "1.2.24",
    "flags": {"assistants": True, "crons": False, "langsmith": False},
    "graphs": [lg.GRAPH_ID],
}
STATE = {
    "values": {"run_id": THREAD_ID, "config": {"name": "quickstart"}, "decisions": []},
    "next": ["gate_plan"],
    "tasks": [
        {
            "id": "5c1e0f0a-8f1b-4f0e-9a43-5a0d3f9e2b11",
            "name": "gate_plan",
            "error": None,
            "interrupts": [{"value": GATE, "id": INTERRUPT_ID}],
            "checkpoint": None,
            "state": None,
            "result": None,
        }
    ],
    "interrupts": [{"value": GATE, "id": INTERRUPT_ID}],
    "checkpoint": {
        "thread_id": THREAD_ID,
        "checkpoint_ns": "",
        "checkpoint_id": "1f1e6323-e34c-641f-8012-b74d32e70629",
    },
    "parent_checkpoint": None,
    "metadata": {"step": 4, "source": "loop"},
    "created_at": WHEN,
}
RUN = lg.answer_run(
    {**RUN_SUMMARY, "status": "queued"}, INTERRUPT_ID, WHEN, {"decision": "approve"}
)
OUTPUT = {
    "run_id": THREAD_ID,
    "decisions": [{"gate": "approve_plan", "decision": "approve", "comment": ""}],
    "__interrupt__": [{"value": {**GATE, "kind": "approve_data"}, "id": "9f" * 16}],
}


def json_example(example: Any) -> dict[int, dict[str, Any]]:
    """`responses=` for a route answering `example` as JSON."""
    return {200: {"content": {"application/json": {"example": example}}}}
