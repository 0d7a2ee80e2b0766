"""Tool calls written by a model: read them out of its text, and write them in one canonical form.

A model asks for a tool in the format its chat template taught it; `parse_tool_calls` reads
the common ones:

    <tool_call>{"name": "calculator", "arguments": {"expression": "2+3"}}</tool_call>   (Hermes, Qwen)
    [TOOL_CALLS] [{"name": "calculator", "arguments": {...}}]                           (Mistral)
    <|python_tag|>{"name": "calculator", "parameters": {...}}                           (Llama 3.x)
    {"name": "calculator", "parameters": {...}}            (a whole reply that is one call: Llama 3.x)

    text, calls, problems = parse_tool_calls(reply)
    # calls: [ToolCall(name="calculator", arguments={"expression": "2+3"})]

`format_tool_call` writes a call the way the fallback rendering and the evaluation's references
do (`<tool_call>{json}</tool_call>`). Nothing here imports torch or transformers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"
MISTRAL_MARKER = "[TOOL_CALLS]"
PYTHON_TAG = "<|python_tag|>"
# Where a call may begin in a reply: a streaming reader holds text back from these on.
CALL_MARKERS = (TOOL_CALL_OPEN, MISTRAL_MARKER, PYTHON_TAG)

_BLOCK = re.compile(
    re.escape(TOOL_CALL_OPEN) + r"(.*?)(?:" + re.escape(TOOL_CALL_CLOSE) + r"|$)", re.S
)


@dataclass(frozen=True)
class ToolCall:
    """One call: the tool's name and its arguments (a JSON object)."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """`{"name": ..., "arguments": {...}}`."""
        return {"name": self.name, "arguments": self.arguments}


def format_tool_call(name: str, arguments: dict[str, Any]) -> str:
    """One call as `<tool_call>{"name": ..., "arguments": ...}</tool_call>`."""
    body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"{TOOL_CALL_OPEN}{body}{TOOL_CALL_CLOSE}"


def parse_tool_calls(text: str) -> tuple[str, list[ToolCall], list[str]]:
    """(the reply's text without its calls, the calls, a problem per call that could not be
    read). A reply with no call marker and no call-shaped JSON has no calls and no problems."""
    if TOOL_CALL_OPEN in text:
        return _tagged_blocks(text)
    for marker in (MISTRAL_MARKER, PYTHON_TAG):
        if marker in text:
            before, _, after = text.partition(marker)
            calls, problems = _json_calls(after.strip(), marker)
            return before.strip(), calls, problems
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        calls, problems = _json_calls(stripped, "the reply", whole_reply=True)
        if calls and not problems:  # plain JSON that is not a call stays text
            return "", calls, []
    return stripped, [], []


def shown_length(reply_so_far: str) -> int:
    """How many leading characters of a reply being written are surely text, not part of a
    call: a streaming reader shows those and holds the rest back until the reply ends."""
    stripped = reply_so_far.lstrip()
    if stripped[:1] in ("{", "["):  # a reply that is one JSON call (or Mistral's marker)
        return 0
    starts = [reply_so_far.find(m) for m in CALL_MARKERS if m in reply_so_far]
    if starts:
        return min(starts)
    for keep in range(max(map(len, CALL_MARKERS)) - 1, 0, -1):
        tail = reply_so_far[-keep:]
        if len(tail) == keep and any(m.startswith(tail) for m in CALL_MARKERS):
            return len(reply_so_far) - keep
    return len(reply_so_far)


def _tagged_blocks(text: str) -> tuple[str, list[ToolCall], list[str]]:
    calls: list[ToolCall] = []
    problems: list[str] = []
    kept: list[str] = []  # text outside calls, and calls that could not be read (shown as is)
    position = 0
    for number, match in enumerate(_BLOCK.finditer(text), start=1):
        kept.append(text[position : match.start()])
        position = match.end()
        call, problem = None, f"tool call {number} is not closed with {TOOL_CALL_CLOSE}"
        if match.group(0).endswith(TOOL_CALL_CLOSE):
            call, problem = _call_from_json(match.group(1).strip(), f"tool call {number}")
        if call:
            calls.append(call)
        else:
            problems.append(problem)
            kept.append(match.group(0))
    kept.append(text[position:])
    return "".join(kept).strip(), calls, problems


def _json_calls(
    body: str, where: str, *, whole_reply: bool = False
) -> tuple[list[ToolCall], list[str]]:
    """Calls from a JSON object or a list of them (several may follow one another). For a
    `whole_reply` each must look like a call (`name` with `arguments` or `parameters`, or
    OpenAI's `function`): an answer that happens to be JSON, `{"name": "Ann"}`, is not one."""
    decoder, index, values = json.JSONDecoder(), 0, []
    body = body.strip()
    while index < len(body):
        try:
            value, end = decoder.raw_decode(body, index)
        except json.JSONDecodeError as exc:
            return [], [f"{where}: not valid JSON at character {exc.pos} ({exc.msg})"]
        values.extend(value if isinstance(value, list) else [value])
        index = end
        while index < len(body) and body[index] in " \t\r\n;,":
            index += 1
    calls, problems = [], []
    for number, value in enumerate(values, start=1):
        if whole_reply and not _call_shaped(value):
            return [], [f"{where}: JSON that is not a call"]
        call, problem = _call_from_value(value, f"{where}, call {number}")
        if call:
            calls.append(call)
        else:
            problems.append(problem)
    return calls, problems


def _call_shaped(value: Any) -> bool:
    keys = set(value) if isinstance(value, dict) else set()
    return "function" in keys or ("name" in keys and bool(keys & {"arguments", "parameters"}))


def _call_from_json(body: str, where: str) -> tuple[ToolCall | None, str]:
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        return None, f"{where}: not valid JSON at character {exc.pos} ({exc.msg})"
    return _call_from_value(value, where)


def _call_from_value(value: Any, where: str) -> tuple[ToolCall | None, str]:
    """A call from `{"name", "arguments" | "parameters"}` (or OpenAI's `{"function": {...}}`)."""
    if isinstance(value, dict) and isinstance(value.get("function"), dict):
        value = value["function"]
    if not isinstance(value, dict):
        return None, f"{where}: expected a JSON object with 'name' and 'arguments'"
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        return None, f"{where}: no tool 'name'"
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):  # OpenAI sends arguments as a JSON string
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            return None, f"{where}: 'arguments' of {name!r} is not valid JSON"
    if not isinstance(arguments, dict):
        return None, f"{where}: 'arguments' of {name!r} must be a JSON object"
    return ToolCall(name.strip(), arguments), ""
