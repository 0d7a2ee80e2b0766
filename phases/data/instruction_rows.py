"""Instruction datasets -> normalized records: Dolly, UltraChat and OpenAssistant.

- `dolly` (databricks-dolly-15k): instruction, optional context, response -> prompt/completion
  (the context after the instruction, as Alpaca's input).
- `ultrachat` (UltraChat): `data`, a list of texts alternating user and assistant -> chat.
- `oasst` (OpenAssistant message rows: message_id, parent_id, role prompter|assistant, text):
  the rows of a file form message trees; each path from a first prompt to a leaf is one chat,
  cut after its last assistant reply. `oasst_trees` (OpenAssistant's trees export: one tree per
  row, `prompt` with nested `replies`) is flattened the same way.

OpenAssistant rows are grouped before conversion (`EXPANDERS`): the unit counted in the report
is then one path (conversation), and a path through a deleted message, or a message whose
parent is missing from the file, is dropped with that reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from phases.data.loading import Record, json_loads
from phases.data.row_conversion import RowProblem, checked_chat, instruction_pair, text_field

OASST_ROLES = {"prompter": "user", "assistant": "assistant", "user": "user"}
Expander = Callable[[list[Record]], tuple[list[Record], list[tuple[Record, str, str]]]]


def dolly(row: dict[str, Any]) -> dict[str, Any]:
    """instruction (+ "\\n\\n" + context when present) -> prompt; response -> completion."""
    return instruction_pair(row, extra="context", answer="response")


def ultrachat(row: dict[str, Any]) -> dict[str, Any]:
    """`data` = [user, assistant, user, assistant, ...] -> chat messages (a last unanswered
    user text is left out)."""
    turns = row.get("data")
    if isinstance(turns, str):
        try:
            turns = json_loads(turns)
        except json.JSONDecodeError as exc:
            raise RowProblem("invalid_value", f"'data' is not valid JSON ({exc.msg})") from None
    if not isinstance(turns, list):
        raise RowProblem(
            "invalid_value", f"'data' is {type(turns).__name__}, expected a list of texts"
        )
    turns = turns[: len(turns) // 2 * 2]
    if not turns:
        raise RowProblem("empty_field", "'data' has no user/assistant pair")
    roles = ("user", "assistant")
    messages = [
        {"role": roles[i % 2], "content": text_field(text, f"data[{i}]")}
        for i, text in enumerate(turns)
    ]
    return {"messages": checked_chat(messages, "data")}


def oasst_path(row: dict[str, Any]) -> dict[str, Any]:
    """One flattened OpenAssistant path (built by the expanders) -> chat messages."""
    messages = [
        {"role": OASST_ROLES[m["role"]], "content": text_field(m["text"], f"path[{i}].text")}
        for i, m in enumerate(row["path"])
    ]
    return {"messages": checked_chat(messages, "path")}


def expand_oasst_messages(rows: list[Record]) -> tuple[list[Record], list[tuple[Record, str, str]]]:
    """Message rows -> one record per root-to-leaf path (`{"path": [messages]}`), and the rows
    that cannot start or join a path, with a reason."""
    by_id = {str(r.fields.get("message_id")): r for r in rows}
    children: dict[str, list[Record]] = {}
    roots, dropped = [], []
    for row in rows:
        parent = row.fields.get("parent_id")
        if parent in (None, ""):
            roots.append(row)
        elif str(parent) in by_id:
            children.setdefault(str(parent), []).append(row)
        else:
            dropped.append((row, "invalid_value", f"parent_id {parent!r} is not in the file"))
    paths: list[Record] = []
    for root in roots:
        paths += _paths(root, lambda r: children.get(str(r.fields.get("message_id")), []))
    return paths, dropped


def expand_oasst_trees(rows: list[Record]) -> tuple[list[Record], list[tuple[Record, str, str]]]:
    """Tree rows (`prompt` with nested `replies`) -> one record per root-to-leaf path."""
    paths, dropped = [], []
    for row in rows:
        prompt = row.fields.get("prompt")
        if isinstance(prompt, str):  # a CSV cell or a Parquet string column: the tree as JSON
            try:
                prompt = json_loads(prompt)
            except json.JSONDecodeError:
                prompt = None
        if not isinstance(prompt, dict):
            dropped.append((row, "invalid_value", "'prompt' is not a message tree object"))
            continue
        node = Record(prompt, row.source, row.line)
        paths += _paths(node, lambda r: [Record(c, r.source, r.line) for c in _replies(r.fields)])
    return paths, dropped


def _replies(message: dict[str, Any]) -> list[dict[str, Any]]:
    replies = message.get("replies") or []
    return [r for r in replies if isinstance(r, dict)] if isinstance(replies, list) else []


def _paths(root: Record, children_of: Callable[[Record], list[Record]]) -> list[Record]:
    """Every root-to-leaf path as a record `{"path": [...]}` at the leaf's line, cut after its
    last assistant message; `{"problem": ...}` for a path that cannot be a conversation."""
    out: list[Record] = []
    stack = [(root, [root])]
    while stack:
        node, path = stack.pop()
        kids = sorted(children_of(node), key=lambda r: _rank(r.fields))
        if kids:
            stack += [(kid, [*path, kid]) for kid in reversed(kids)]
            continue
        out.append(Record(_path_fields(path), node.source, node.line))
    return out


def _path_fields(path: list[Record]) -> dict[str, Any]:
    messages = [r.fields for r in path]
    deleted = next((m for m in messages if m.get("deleted") in (True, "true", "True")), None)
    if deleted is not None:
        return {"problem": f"message {deleted.get('message_id', '?')} is marked deleted"}
    bad_role = next((m for m in messages if m.get("role") not in OASST_ROLES), None)
    if bad_role is not None:
        return {"problem": f"role {bad_role.get('role')!r} is not prompter or assistant"}
    while messages and OASST_ROLES[messages[-1]["role"]] != "assistant":
        messages = messages[:-1]  # a prompt nobody answered
    if not messages:
        return {"problem": "the path has no assistant reply"}
    return {"path": [{"role": m["role"], "text": m.get("text")} for m in messages]}


def _rank(message: dict[str, Any]) -> float:
    rank = message.get("rank")
    try:
        return float(rank)
    except (TypeError, ValueError):
        return float("inf")


def _converted_path(row: dict[str, Any]) -> dict[str, Any]:
    if "problem" in row:
        reason = "role_order" if "assistant reply" in row["problem"] else "invalid_value"
        raise RowProblem(reason, row["problem"])
    return oasst_path(row)


CONVERTERS = {
    "dolly": dolly,
    "ultrachat": ultrachat,
    "oasst": _converted_path,
    "oasst_trees": _converted_path,
}
EXPANDERS: dict[str, Expander] = {
    "oasst": expand_oasst_messages,
    "oasst_trees": expand_oasst_trees,
}
