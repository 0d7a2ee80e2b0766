"""Our runs in the shapes of the LangGraph Server API, for its clients (`langgraph-sdk`,
Agent Inbox, anything built on them).

A run is a thread (`thread_id` = run id) of the one graph `finetune_agent`, served by one
assistant. Thread status follows the run's: `awaiting_approval` is `interrupted`, `queued` and
`running` are `busy`, `failed` is `error`, the other ends are `idle`. Each accepted answer to a
gate is a LangGraph run on that thread, with an id derived from the thread and the interrupt
(so asking for it twice names the same run). Only what those clients read is produced.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

GRAPH_ID = "finetune_agent"  # as in langgraph.json
# LangGraph Server derives a graph's default assistant id the same way (uuid5 of the graph id).
ASSISTANT_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
ASSISTANT_ID = str(uuid.uuid5(ASSISTANT_NAMESPACE, GRAPH_ID))
_RUN_NAMESPACE = uuid.uuid5(ASSISTANT_NAMESPACE, "finetune-agent answers")

THREAD_STATUS = {
    "queued": "busy",
    "running": "busy",
    "awaiting_approval": "interrupted",
    "completed": "idle",
    "cancelled": "idle",
    "failed": "error",
}
RUN_STATUSES_OF_THREAD = {
    "busy": ("queued", "running"),
    "interrupted": ("awaiting_approval",),
    "idle": ("completed", "cancelled"),
    "error": ("failed",),
}
ANSWER_STATUS = {  # an answered gate's LangGraph run, by the run's status since
    "queued": "pending",
    "running": "running",
    "awaiting_approval": "success",  # it reached the next gate
    "completed": "success",
    "cancelled": "interrupted",
    "failed": "error",
}


def assistant(created_at: datetime | None = None) -> dict[str, Any]:
    """The one assistant: the `finetune_agent` graph with no configuration of its own."""
    when = _iso(created_at) if created_at else "1970-01-01T00:00:00+00:00"
    return {
        "assistant_id": ASSISTANT_ID,
        "graph_id": GRAPH_ID,
        "name": GRAPH_ID,
        "description": "Fine-tunes a model, asking a human at each gate.",
        "config": {},
        "context": {},
        "metadata": {"created_by": "system"},
        "version": 1,
        "created_at": when,
        "updated_at": when,
    }


def is_our_assistant(assistant_id: str) -> bool:
    """The graph id and the assistant id both name it (as LangGraph Server allows)."""
    return assistant_id in (GRAPH_ID, ASSISTANT_ID)


def thread_of(run: dict[str, Any]) -> dict[str, Any]:
    """A run summary (`RunStore.run_summaries`, or a `RunRecord`'s fields) as a Thread."""
    status = run["status"]
    pending = run.get("pending_interrupt") if status == "awaiting_approval" else None
    interrupts = {}
    if pending:
        interrupts[run.get("current_node") or pending.get("kind", "gate")] = [interrupt(pending)]
    return {
        "thread_id": run["id"],
        "created_at": _iso(run["created_at"]),
        "updated_at": _iso(run["updated_at"]),
        "metadata": thread_metadata(run),
        "status": THREAD_STATUS.get(status, "idle"),
        "values": compact_values(run),
        "interrupts": interrupts,
    }


def thread_metadata(run: dict[str, Any]) -> dict[str, Any]:
    """What a thread search can filter on (Agent Inbox filters by `graph_id`)."""
    return {
        "graph_id": GRAPH_ID,
        "assistant_id": ASSISTANT_ID,
        "name": run["name"],
        "parent_run_id": run.get("parent_run_id"),
    }


def compact_values(run: dict[str, Any]) -> dict[str, Any]:
    """A thread's values in listings: the run's summary (`/threads/{id}/state` has them all)."""
    keys = ("name", "status", "current_node", "error", "model_path", "run_dir")
    return {"run_id": run["id"], **{key: run.get(key) for key in keys}}


def interrupt(pending: dict[str, Any]) -> dict[str, Any]:
    """A stored pending gate (`{"id", **payload}`) as LangGraph's `{"value", "id"}`."""
    value = {key: item for key, item in pending.items() if key != "id"}
    return {"value": value, "id": pending.get("id")}


def thread_state(run: dict[str, Any], snapshot: Any) -> dict[str, Any]:
    """`GET /threads/{id}/state`: the graph state, its next nodes and pending gates. A gate whose
    answer was accepted is not pending any more, even before a worker resumes the run."""
    waiting = run["status"] == "awaiting_approval"
    tasks = []
    for task in snapshot.tasks or ():
        shown = [{"value": i.value, "id": i.id} for i in task.interrupts] if waiting else []
        tasks.append(
            {
                "id": task.id,
                "name": task.name,
                "error": None if task.error is None else str(task.error),
                "interrupts": shown,
                "checkpoint": None,
                "state": None,
                "result": None,
            }
        )
    config = (snapshot.config or {}).get("configurable", {})
    parent = (snapshot.parent_config or {}).get("configurable", {})
    return {
        "values": dict(snapshot.values or {}),
        "next": list(snapshot.next or ()),
        "tasks": tasks,
        "interrupts": [i for task in tasks for i in task["interrupts"]],
        "checkpoint": _checkpoint(run["id"], config),
        "parent_checkpoint": _checkpoint(run["id"], parent) if parent else None,
        "metadata": dict(snapshot.metadata or {}),
        "created_at": snapshot.created_at,
    }


def _checkpoint(thread_id: str, configurable: dict[str, Any]) -> dict[str, Any]:
    return {
        "thread_id": thread_id,
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable.get("checkpoint_id"),
    }


def answer_run_id(thread_id: str, interrupt_id: str) -> str:
    """The LangGraph run id of the answer to one gate."""
    return str(uuid.uuid5(_RUN_NAMESPACE, f"{thread_id}/{interrupt_id}"))


def answer_run(
    run: dict[str, Any], interrupt_id: str, answered_at: datetime, decision: dict[str, Any]
) -> dict[str, Any]:
    """The LangGraph Run that answered `interrupt_id` of `run`."""
    return {
        "run_id": answer_run_id(run["id"], interrupt_id),
        "thread_id": run["id"],
        "assistant_id": ASSISTANT_ID,
        "created_at": _iso(answered_at),
        "updated_at": _iso(run["updated_at"]),
        "status": ANSWER_STATUS.get(run["status"], "success"),
        "metadata": {"interrupt_id": interrupt_id, "decision": decision.get("decision")},
        "multitask_strategy": "reject",
        "kwargs": {"command": {"resume": {interrupt_id: decision}}},
    }


def run_output(run: dict[str, Any], values: dict[str, Any], pending: list[dict[str, Any]]) -> dict:
    """What `runs.wait` / `runs.join` return: the thread's values, plus `__interrupt__` while
    it waits at a gate (as LangGraph Server does)."""
    output = dict(values)
    if run["status"] == "awaiting_approval" and pending:
        output["__interrupt__"] = [interrupt(p) for p in pending]
    if run["status"] == "failed":
        output["__error__"] = {"error": "RunFailed", "message": run.get("error") or "failed"}
    return output


def matches(thread: dict[str, Any], *, metadata: dict | None, values: dict | None) -> bool:
    """A thread search's filters: every given key equals the thread's."""
    for wanted, have in ((metadata, thread["metadata"]), (values, thread["values"])):
        if wanted and any(have.get(key) != value for key, value in wanted.items()):
            return False
    return True


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
