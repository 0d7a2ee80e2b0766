"""A LangGraph `command.resume` value as one of our gate decisions.

Accepted, for the gate pending (or the one named by an `{interrupt_id: value}` map, as
LangGraph's `Command(resume={id: value})` does), where `value` is any of:
- ours: `{"decision": "approve|reject|edit", "edits": {...}, "comment": "..."}`;
- LangChain's human-in-the-loop response: `{"decisions": [{"type": "approve"}]}`,
  `{"type": "reject", "message": "..."}`, `{"type": "edit", "edited_action": {"name": ...,
  "args": {"edits": {...}}}}`;
- Agent Inbox's own: `[{"type": "accept" | "edit" | "response", "args": ...}]`.
Anything else is refused with a message naming the accepted forms.
"""

from __future__ import annotations

import json
import re
from typing import Any

from api.body_limits import loads_typed_json

_INTERRUPT_ID = re.compile(r"^[0-9a-f]{32}$")
FORMS = (
    "give command.resume as {'decision': 'approve'|'reject'|'edit', 'edits': {...}}, "
    "LangChain's {'decisions': [{'type': 'approve'|'reject'|'edit', ...}]}, or Agent Inbox's "
    "[{'type': 'accept'|'response'|'edit', 'args': ...}], optionally inside "
    "{'<interrupt id>': ...}"
)
_TYPES = {"approve": "approve", "accept": "approve", "reject": "reject", "response": "reject"}


class ResumeError(ValueError):
    """A resume value we cannot read as a decision; the message says which forms work."""


def read_resume(resume: Any) -> tuple[str | None, dict[str, Any]]:
    """`(interrupt id or None for the one pending, our decision)`, or `ResumeError`."""
    if isinstance(resume, dict) and resume and all(_INTERRUPT_ID.match(str(k)) for k in resume):
        if len(resume) != 1:
            raise ResumeError("answer one gate at a time: command.resume names several interrupts")
        ((interrupt_id, value),) = resume.items()
        return interrupt_id, decision_of(value)
    return None, decision_of(resume)


def decision_of(value: Any) -> dict[str, Any]:
    """Our decision from any accepted form of one answer."""
    if isinstance(value, dict) and "decision" in value:
        return value
    if isinstance(value, dict) and "decisions" in value:
        return decision_of(_only(value["decisions"], "decisions"))
    if isinstance(value, list):
        return decision_of(_only(value, "the response list"))
    if isinstance(value, dict) and "type" in value:
        return _from_typed(value)
    raise ResumeError(f"cannot read {_excerpt(value)} as a decision: {FORMS}")


def _only(items: Any, where: str) -> Any:
    if not isinstance(items, list) or len(items) != 1:
        raise ResumeError(f"{where} must hold exactly one decision (a gate asks one question)")
    return items[0]


def _from_typed(value: dict[str, Any]) -> dict[str, Any]:
    kind = value.get("type")
    if kind == "edit":
        return _edit(value)
    if kind not in _TYPES:
        raise ResumeError(
            f"decision type {kind!r} is not one of approve, reject, edit (accept and response "
            "are read as approve and reject; a gate cannot be ignored)"
        )
    decision: dict[str, Any] = {"decision": _TYPES[kind]}
    comment = value.get("message", value.get("args"))
    # A message (LangChain's reject carries the reviewer's reason there) and a response's args
    # are the reviewer's answer: refused, not dropped, when they are no text (an accept may
    # carry the action's own args, which say nothing).
    said = "message" in value or kind == "response"
    if said and comment is not None and not isinstance(comment, str):
        raise ResumeError(
            f"a {kind}'s {'message' if 'message' in value else 'args'} is the reviewer's comment: "
            f"text, not {_excerpt(comment)}"
        )
    if isinstance(comment, str) and comment:
        decision["comment"] = comment
    return decision


def _edit(value: dict[str, Any]) -> dict[str, Any]:
    """The edited action's arguments: `edits` (a config patch; JSON text is read), and
    optionally `comment`, `select`, `route`."""
    action = value.get("edited_action") or value.get("args") or {}
    args = action.get("args", action) if isinstance(action, dict) else None
    if not isinstance(args, dict):
        raise ResumeError("an edit carries the action's arguments: {'edits': {<config patch>}}")
    edits = args.get("edits")
    if isinstance(edits, str):
        try:
            edits = loads_typed_json(edits)
        except ValueError as exc:
            raise ResumeError(f"edits is not valid JSON: {exc}") from None
    decision = {"decision": "edit", "edits": edits}
    decision.update({k: args[k] for k in ("comment", "select", "route") if k in args})
    return decision


def _excerpt(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:79] + "…"
