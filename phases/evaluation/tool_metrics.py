"""Tool use, scored on the eval turns whose reference calls a tool.

A reference that calls tools is written `<tool_call>{"name", "arguments"}</tool_call>` (one
block per call, see `reference_text`); an answer's calls are read in any format the model's
template uses (`models.tool_calls.parse_tool_calls`).

- tool_call_parseable: the share of those turns where the answer holds at least one call and
  every call in it could be read (JSON with a tool name and object arguments).
- tool_call_exact: the share where the answer's calls are exactly the reference's: the same
  tool names with the same arguments (compared as parsed JSON: key order and spacing do not
  matter, `1` is not `"1"`), in any order.
- tool_name_accuracy: the share where the answer calls exactly the reference's tools
  (names only, arguments not compared).

Turns whose reference is a plain answer have no tool score (text metrics judge them).
"""

from __future__ import annotations

import json
from typing import Any

from models.tool_calls import ToolCall, format_tool_call, parse_tool_calls
from phases.evaluation.json_metrics import json_equal

TOOL_METRICS = ("tool_call_parseable", "tool_call_exact", "tool_name_accuracy")


def reference_text(message: dict[str, Any]) -> str:
    """An assistant turn as a reference: its text, then one `<tool_call>` block per call."""
    parts = [message.get("content") or ""]
    for call in message.get("tool_calls") or []:
        function = call.get("function") or call
        parts.append(format_tool_call(function["name"], function.get("arguments") or {}))
    return "\n".join(p for p in parts if p)


def reference_calls(reference: str | None) -> list[ToolCall]:
    """The calls a reference makes (none for a plain answer)."""
    if not reference:
        return []
    return parse_tool_calls(reference)[1]


def has_tool_references(references: list[str | None]) -> bool:
    """Whether any reference calls a tool (the tool metrics then apply)."""
    return any(reference_calls(r) for r in references)


def row_tool_scores(prediction: str, reference: str | None) -> dict[str, float]:
    """The three tool scores of one turn, or {} when its reference calls no tool."""
    expected = reference_calls(reference)
    if not expected:
        return {}
    _, got, problems = parse_tool_calls(prediction)
    return {
        "tool_call_parseable": float(bool(got) and not problems),
        "tool_call_exact": float(not problems and _same_calls(got, expected)),
        "tool_name_accuracy": float(
            sorted(c.name for c in got) == sorted(c.name for c in expected)
        ),
    }


def tool_metric_value(name: str, predictions: list[str], references: list[str | None]) -> float:
    """The mean of `name` over the turns whose reference calls a tool (0 when none does)."""
    scores = [row_tool_scores(p, r) for p, r in zip(predictions, references, strict=True)]
    values = [s[name] for s in scores if s]
    return sum(values) / len(values) if values else 0.0


def _same_calls(got: list[ToolCall], expected: list[ToolCall]) -> bool:
    if len(got) != len(expected):
        return False
    remaining = list(expected)
    for call in got:
        match = next((e for e in remaining if _equal(call, e)), None)
        if match is None:
            return False
        remaining.remove(match)
    return True


def _equal(a: ToolCall, b: ToolCall) -> bool:
    return a.name == b.name and json_equal(_json(a.arguments), _json(b.arguments))


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))
