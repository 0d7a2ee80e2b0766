"""The interrupt payload every gate sends, in one shape for every reader.

`{"kind", "message", "summary", "details", "options", "default"}` is ours (the API, the CLI, the
dashboard read it); `action_requests` and `review_configs` are LangChain's human-in-the-loop
request (`langchain.agents.middleware.HumanInTheLoopMiddleware`), so LangGraph's approval UIs
(Agent Inbox, `langgraph-sdk` clients) can show and answer any gate without knowing its kind.

The gate's one action is "continue the run"; its only argument is `edits`, the config patch to
apply first (empty: none). Approving continues as is, editing the arguments is our `edit`
decision with that patch, rejecting is `reject` (its message becomes the comment).
"""

from __future__ import annotations

import math
from typing import Any

SUMMARY_TEXT_WIDTH = 120  # a summary value is one short line


def gate_payload(
    kind: str,
    message: str,
    details: dict[str, Any],
    *,
    options: list[str],
    default: str,
    summary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The interrupt value of a gate. `summary` holds the few facts to decide on, each a
    number, a bool or a short text; without one, the scalar fields of `details` are used (so a
    new gate kind reads well everywhere without code of its own)."""
    facts = summary if summary is not None else scalar_summary(details)
    return {
        "kind": kind,
        "message": message,
        "summary": facts,
        "details": details,
        "options": options,
        "default": default,
        "action_requests": [
            {"name": kind, "args": {"edits": {}}, "description": describe(message, facts)}
        ],
        "review_configs": [{"action_name": kind, "allowed_decisions": list(options)}],
    }


def scalar_summary(details: dict[str, Any]) -> dict[str, Any]:
    """The fields of `details` that are a number, a bool or a short text."""
    return {
        key: value
        for key, value in details.items()
        if isinstance(value, (bool, int, float))
        or (isinstance(value, str) and len(value) <= SUMMARY_TEXT_WIDTH)
    }


def describe(message: str, summary: dict[str, Any]) -> str:
    """Markdown for a reviewer: the gate's message, then one bullet per summary fact."""
    lines = [message, ""] if summary else [message]
    lines += [
        f"- **{key.replace('_', ' ')}**: {_readable(value)}" for key, value in summary.items()
    ]
    return "\n".join(lines)


def _readable(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return "—" if value is None else str(value)
