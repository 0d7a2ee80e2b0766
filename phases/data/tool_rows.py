"""Tool-calling rows -> normalized `tool_chat` records: TRL's tool-calling format and xLAM.

A `tool_chat` record is `{"messages": [...], "tools": [...]}`: messages in the OpenAI / TRL
shape (assistant turns may carry `tool_calls`, each answered by a `tool` turn), tools as JSON
schemas `{"type": "function", "function": {"name", "description", "parameters"}}`.

- `tool_calling` (TRL): columns `messages` (with assistant `tool_calls` and `tool` turns) and
  `tools`; either may be JSON text (CSV cells, Parquet strings).
- `xlam` (Salesforce xLAM): `query` (the user's request), `tools` (xLAM's tool list, whose
  parameters are `{name: {type, description, default}}`) and `answers` (the calls made).

Each call must name a tool of the row and give a JSON object of arguments; the conversation
runs [system], user, then assistant turns, each tool result right after the call it answers,
and ends with an assistant turn.
"""

from __future__ import annotations

import json
from typing import Any

from phases.data.loading import JsonNumber
from phases.data.row_conversion import RowProblem, optional_text, text_field

TOOL_ROLES = {"system", "developer", "user", "assistant", "tool"}
XLAM_TYPES = {
    "str": "string",
    "string": "string",
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "bool": "boolean",
    "boolean": "boolean",
    "list": "array",
    "dict": "object",
    "set": "array",
    "tuple": "array",
}


def tool_calling(row: dict[str, Any]) -> dict[str, Any]:
    """TRL's tool-calling row -> a `tool_chat` record."""
    tools = normalized_tools(_json_value(row.get("tools"), "tools"), "tools")
    turns = _json_value(row.get("messages"), "messages")
    if not isinstance(turns, list) or not turns:
        raise RowProblem("empty_field", "'messages' has no messages")
    messages = [_message(turn, f"messages[{i}]") for i, turn in enumerate(turns)]
    return {"messages": checked_tool_chat(messages, tools), "tools": tools}


def xlam(row: dict[str, Any]) -> dict[str, Any]:
    """An xLAM row (query / tools / answers) -> a `tool_chat` record ending with the calls."""
    query = text_field(row.get("query"), "query")
    tools = [_xlam_tool(t, f"tools[{i}]") for i, t in enumerate(_list(row, "tools"))]
    if not tools:
        raise RowProblem("empty_field", "'tools' is empty")
    calls = [_call(answer, f"answers[{i}]") for i, answer in enumerate(_list(row, "answers"))]
    if not calls:
        raise RowProblem("empty_field", "'answers' has no calls")
    messages = [
        {"role": "user", "content": query},
        {"role": "assistant", "content": "", "tool_calls": calls},
    ]
    return {"messages": checked_tool_chat(messages, tools), "tools": tools}


def normalized_tools(value: Any, field: str) -> list[dict[str, Any]]:
    """A list of tool schemas in the `{"type": "function", "function": {...}}` shape."""
    if not isinstance(value, list) or not value:
        raise RowProblem("empty_field", f"'{field}' holds no tool schemas")
    tools = []
    for index, tool in enumerate(value):
        function = tool.get("function", tool) if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise RowProblem(
                "invalid_value", f"{field}[{index}] is not a tool schema with a 'name'"
            )
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, dict):
            raise RowProblem(
                "invalid_value", f"{field}[{index}] ('{name}'): 'parameters' is not an object"
            )
        schema = {"name": name.strip(), "description": str(function.get("description") or "")}
        tools.append({"type": "function", "function": {**schema, "parameters": parameters}})
    return tools


def checked_tool_chat(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Messages in a usable order whose calls name the row's tools (RowProblem otherwise)."""
    names = {t["function"]["name"] for t in tools}
    start = 1 if messages and messages[0]["role"] == "system" else 0
    if len(messages) <= start or messages[start]["role"] != "user":
        raise RowProblem("role_order", "the conversation must start with a user message")
    for index, message in enumerate(messages[start + 1 :], start=start + 1):
        _check_turn(messages[index - 1], message, index, names)
    if messages[-1]["role"] != "assistant":
        raise RowProblem(
            "role_order",
            f"'messages' ends with a '{messages[-1]['role']}' message; it must end with the "
            "assistant's reply or call",
        )
    return messages


def _check_turn(previous: dict[str, Any], message: dict[str, Any], index: int, names: set) -> None:
    role, where = message["role"], f"messages[{index}]"
    if role == "system":
        raise RowProblem("role_order", f"{where} is a system message after the first turn")
    if role == "tool" and not (previous.get("tool_calls") or previous["role"] == "tool"):
        raise RowProblem("role_order", f"{where} is a tool result with no call before it")
    if (
        role == previous["role"]
        and role in ("user", "assistant")
        and not previous.get("tool_calls")
    ):
        raise RowProblem("role_order", f"{where} is a second '{role}' message in a row")
    if previous.get("tool_calls") and role != "tool":
        raise RowProblem("role_order", f"{where} follows a tool call, which needs its result first")
    for call in message.get("tool_calls", []):
        name = call["function"]["name"]
        if name not in names:
            raise RowProblem(
                "invalid_value",
                f"{where} calls tool '{name}', which is not in the row's tools ({', '.join(sorted(names))})",
            )
    if role == "assistant" and not (message["content"] or message.get("tool_calls")):
        raise RowProblem("empty_field", f"{where} (assistant) has neither content nor tool calls")


def _message(turn: Any, where: str) -> dict[str, Any]:
    if not isinstance(turn, dict):
        raise RowProblem("invalid_value", f"{where} is {type(turn).__name__}, expected an object")
    role = str(turn.get("role", "")).strip().lower()
    if role not in TOOL_ROLES:
        raise RowProblem(
            "invalid_value",
            f"{where}.role is {turn.get('role')!r}; expected one of {', '.join(sorted(TOOL_ROLES))}",
        )
    role = "system" if role == "developer" else role
    content = turn.get("content")
    if role == "tool" and isinstance(content, dict | list):  # a structured result: its JSON
        content = json.dumps(content, ensure_ascii=False)
    message: dict[str, Any] = {"role": role, "content": optional_text(content, f"{where}.content")}
    if role in ("user", "system") and not message["content"]:
        raise RowProblem("empty_field", f"{where} ({role}) has empty content")
    if role == "assistant" and turn.get("tool_calls"):
        calls = _json_value(turn["tool_calls"], f"{where}.tool_calls")
        if not isinstance(calls, list):
            raise RowProblem("invalid_value", f"{where}.tool_calls is not a list")
        message["tool_calls"] = [_call(c, f"{where}.tool_calls[{i}]") for i, c in enumerate(calls)]
    if role == "tool" and isinstance(turn.get("name"), str) and turn["name"].strip():
        message["name"] = turn["name"].strip()
    return message


def _call(call: Any, where: str) -> dict[str, Any]:
    """One call as `{"type": "function", "function": {"name", "arguments": {...}}}`."""
    function = call.get("function", call) if isinstance(call, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise RowProblem("invalid_value", f"{where} is not a call with a tool 'name'")
    arguments = function.get("arguments", function.get("parameters", {}))
    if isinstance(arguments, str):
        arguments = _json_value(arguments, f"{where}.arguments") if arguments.strip() else {}
    if not isinstance(arguments, dict):
        raise RowProblem("invalid_value", f"{where}.arguments of '{name}' is not a JSON object")
    return {"type": "function", "function": {"name": name.strip(), "arguments": arguments}}


def _xlam_tool(tool: Any, where: str) -> dict[str, Any]:
    """An xLAM tool (`parameters: {name: {type, description, default}}`) as a JSON schema."""
    if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
        raise RowProblem("invalid_value", f"{where} is not a tool with a 'name'")
    given = tool.get("parameters") or {}
    if not isinstance(given, dict):
        raise RowProblem("invalid_value", f"{where}.parameters is not an object")
    if given.get("type") == "object":  # already a JSON schema
        return normalized_tools([tool], where.split("[")[0])[0]
    properties, required = {}, []
    for name, spec in given.items():
        spec = spec if isinstance(spec, dict) else {"type": str(spec)}
        type_text = str(spec.get("type", "string"))
        base = type_text.split(",")[0].split("[")[0].strip().lower()
        properties[name] = {
            "type": XLAM_TYPES.get(base, "string"),
            "description": str(spec.get("description", "")),
        }
        if "optional" not in type_text.lower() and "default" not in spec:
            required.append(name)
    parameters = {"type": "object", "properties": properties, "required": required}
    function = {
        "name": tool["name"],
        "description": str(tool.get("description") or ""),
        "parameters": parameters,
    }
    return {"type": "function", "function": function}


def _list(row: dict[str, Any], field: str) -> list[Any]:
    value = _json_value(row.get(field), field)
    if not isinstance(value, list):
        raise RowProblem("invalid_value", f"'{field}' is {type(value).__name__}, expected a list")
    return value


def _json_value(value: Any, field: str) -> Any:
    """A value that may arrive as JSON text (a CSV cell, xLAM's columns)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RowProblem("empty_field", f"'{field}' is missing")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise RowProblem(
                "invalid_value", f"'{field}' is not valid JSON (column {exc.colno}: {exc.msg})"
            ) from None
    return _plain(value)


def _plain(value: Any) -> Any:
    """Numbers the reader kept as text (`JsonNumber`) back to JSON numbers inside arguments and
    schemas, which are JSON values rather than text fields."""
    if isinstance(value, JsonNumber):
        return json.loads(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


CONVERTERS = {"tool_calling": tool_calling, "xlam": xlam}
