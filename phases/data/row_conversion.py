"""Turn one raw row of a known source format into a normalized record, or say why it is unusable.

Every text field is stripped of surrounding whitespace and its line endings made "\\n"; values
keep their text otherwise (no type is inferred): a JSON number or boolean in a text field becomes
the text it was written with (`1e3` -> "1e3", `true` -> "true"), while JSON null counts as
missing. A row that cannot be used raises `RowProblem(reason, detail)`, which the caller counts
and reports. Reasons: "empty_field", "invalid_value", "role_order" (see REASON_TEXT in phases.data.report).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from phases.data.loading import json_loads

Converter = Callable[[dict[str, Any]], dict[str, Any]]

OPENAI_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "model": "assistant",
}


class RowProblem(Exception):
    """Why one row is dropped: a reason key for counting and a detail for the user."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def text_field(value: Any, name: str) -> str:
    """A required text value, cleaned; RowProblem when missing, empty or not text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise RowProblem("empty_field", f"'{name}' is missing")
    if isinstance(value, bool):  # JSON true/false in a text field: the text as written
        value = "true" if value else "false"
    if not isinstance(value, str):
        raise RowProblem("invalid_value", f"'{name}' is {type(value).__name__}, expected text")
    text = value.replace("\r\n", "\n").strip()
    if not text:
        raise RowProblem("empty_field", f"'{name}' is empty")
    if "\x00" in text or "\ufffd" in text:
        raise RowProblem(
            "invalid_value",
            f"'{name}' holds NUL or U+FFFD replacement characters (text was mis-decoded "
            "before it was saved)",
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON "\ud800" escape
        raise RowProblem("invalid_value", f"'{name}' holds an unpaired surrogate") from None
    return text


def optional_text(value: Any, name: str) -> str:
    """An optional text value: "" when missing or blank, else as `text_field`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return text_field(value, name)


def alpaca(row: dict[str, Any]) -> dict[str, Any]:
    """instruction (+ "\\n\\n" + input when present) -> prompt; output -> completion."""
    return instruction_pair(row, extra="input", answer="output")


def instruction_pair(row: dict[str, Any], *, extra: str, answer: str) -> dict[str, Any]:
    """An instruction, its optional `extra` field after a blank line, and the `answer` field."""
    prompt = text_field(row.get("instruction"), "instruction")
    more = optional_text(row.get(extra), extra)
    if more:
        prompt = f"{prompt}\n\n{more}"
    return {"prompt": prompt, "completion": text_field(row.get(answer), answer)}


def prompt_completion(row: dict[str, Any]) -> dict[str, Any]:
    """prompt/completion as they are."""
    return {
        "prompt": text_field(row.get("prompt"), "prompt"),
        "completion": text_field(row.get("completion"), "completion"),
    }


_LABELS = {"true": True, "1": True, "false": False, "0": False}


def kto(row: dict[str, Any]) -> dict[str, Any]:
    """prompt/completion/label: one reply marked desirable (true) or undesirable (false)."""
    label = row.get("label")
    label = _LABELS.get(str(label).strip().lower()) if not isinstance(label, bool) else label
    if label is None:
        raise RowProblem(
            "invalid_value", f"'label' is {row.get('label')!r}; expected true or false"
        )
    return {**prompt_completion(row), "label": label}


def prompt_only(row: dict[str, Any]) -> dict[str, Any]:
    """A prompt for RL (GRPO, RLOO), with the optional reference its rewards may compare to."""
    record = {"prompt": text_field(row.get("prompt"), "prompt")}
    reference = optional_text(row.get("reference"), "reference")
    return {**record, "reference": reference} if reference else record


def plain_text(row: dict[str, Any]) -> dict[str, Any]:
    """A single text column."""
    return {"text": text_field(row.get("text"), "text")}


def openai_messages(row: dict[str, Any]) -> dict[str, Any]:
    """OpenAI chat: messages=[{role, content}], possibly a JSON string (CSV)."""
    turns = _turn_list(row.get("messages"), "messages")
    messages = [
        _turn(t, f"messages[{i}]", "role", "content", OPENAI_ROLES) for i, t in enumerate(turns)
    ]
    return {"messages": checked_chat(messages, "messages")}


def sharegpt(row: dict[str, Any]) -> dict[str, Any]:
    """ShareGPT: conversations=[{from: human|gpt|system, value}] -> chat messages."""
    turns = _turn_list(row.get("conversations"), "conversations")
    messages = []
    for i, turn in enumerate(turns):
        keys = (
            ("from", "value") if isinstance(turn, dict) and "from" in turn else ("role", "content")
        )
        messages.append(_turn(turn, f"conversations[{i}]", *keys, SHAREGPT_ROLES))
    return {"messages": checked_chat(messages, "conversations")}


def preference(row: dict[str, Any]) -> dict[str, Any]:
    """prompt/chosen/rejected; chosen and rejected may be chats (their final assistant reply is
    used, and a missing prompt is taken from the last user turn of `chosen`)."""
    chosen, chosen_chat = _reply(row.get("chosen"), "chosen")
    rejected, _ = _reply(row.get("rejected"), "rejected")
    prompt_value = row.get("prompt")
    if isinstance(prompt_value, list):
        prompt = _last_user(_chat_or_raise(prompt_value, "prompt"), "prompt")
    elif optional_text(prompt_value, "prompt") or chosen_chat is None:
        prompt = text_field(prompt_value, "prompt")
    else:
        prompt = _last_user(chosen_chat[:-1], "chosen")
    if chosen == rejected:
        raise RowProblem("invalid_value", "'chosen' and 'rejected' are identical")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


CONVERTERS: dict[str, Converter] = {
    "messages": openai_messages,
    "sharegpt": sharegpt,
    "preference": preference,
    "alpaca": alpaca,
    "prompt_completion": prompt_completion,
    "kto": kto,
    "prompt": prompt_only,
    "text": plain_text,
}


def checked_chat(messages: list[dict[str, str]], field: str) -> list[dict[str, str]]:
    """Messages whose roles run [system], user, assistant, user, ..., assistant."""
    messages = [
        m
        for i, m in enumerate(messages)
        if not (i == 0 and m["role"] == "system" and not m["content"])
    ]
    if not messages:
        raise RowProblem("empty_field", f"'{field}' has no messages")
    start = 1 if messages[0]["role"] == "system" else 0
    for i, message in enumerate(messages):
        if not message["content"]:
            raise RowProblem("empty_field", f"{field}[{i}] ({message['role']}) has empty content")
        if i < start:
            continue
        expected = "user" if (i - start) % 2 == 0 else "assistant"
        if message["role"] != expected:
            raise RowProblem(
                "role_order",
                f"{field}[{i}] is a '{message['role']}' message where '{expected}' was expected; "
                "after an optional first system message, turns must alternate user, assistant",
            )
    if messages[-1]["role"] != "assistant":
        raise RowProblem(
            "role_order",
            f"'{field}' ends with a '{messages[-1]['role']}' message; it must end with the "
            "assistant's reply",
        )
    return messages


def _turn_list(value: Any, field: str) -> list[Any]:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RowProblem("empty_field", f"'{field}' is missing")
    if isinstance(value, str):  # CSV cells and some JSON exports hold the list as JSON text
        try:
            value = json_loads(value)
        except json.JSONDecodeError as exc:
            raise RowProblem(
                "invalid_value", f"'{field}' is not valid JSON (column {exc.colno}: {exc.msg})"
            ) from None
    if not isinstance(value, list):
        raise RowProblem("invalid_value", f"'{field}' is {type(value).__name__}, expected a list")
    return value


def _turn(
    turn: Any, where: str, role_key: str, text_key: str, roles: dict[str, str]
) -> dict[str, str]:
    if not isinstance(turn, dict):
        raise RowProblem("invalid_value", f"{where} is {type(turn).__name__}, expected an object")
    role = turn.get(role_key)
    if not isinstance(role, str) or role.strip().lower() not in roles:
        raise RowProblem(
            "invalid_value",
            f"{where}.{role_key} is {role!r}; expected one of {', '.join(sorted(set(roles)))}",
        )
    content = turn.get(text_key)
    if isinstance(content, list):  # OpenAI content parts: [{"type": "text", "text": ...}]
        content = _joined_text_parts(content, f"{where}.{text_key}")
    content = optional_text(content, f"{where}.{text_key}")
    return {"role": roles[role.strip().lower()], "content": content}


def _joined_text_parts(parts: list[Any], where: str) -> str:
    texts = []
    for part in parts:
        if not (isinstance(part, dict) and part.get("type") == "text"):
            raise RowProblem(
                "invalid_value", f"{where} has a non-text part; only text is supported"
            )
        texts.append(part.get("text"))
    if not all(isinstance(t, str) for t in texts):
        raise RowProblem("invalid_value", f"{where} has a text part without a string 'text'")
    return "\n".join(texts)


def _reply(value: Any, field: str) -> tuple[str, list[dict[str, str]] | None]:
    """The reply text of `chosen`/`rejected`, and the chat it came from (None for plain text)."""
    chat = _as_chat(value, field)
    if chat is None:
        return text_field(value, field), None
    if not chat or chat[-1]["role"] != "assistant":
        raise RowProblem("role_order", f"'{field}' does not end with an assistant message")
    if not chat[-1]["content"]:
        raise RowProblem("empty_field", f"'{field}' ends with an empty assistant message")
    return chat[-1]["content"], chat


def _as_chat(value: Any, field: str) -> list[dict[str, str]] | None:
    """A list of role/content dicts (also from JSON text); None when `value` is plain text."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            parsed = json_loads(value)
        except json.JSONDecodeError:
            return None
        is_chat = (
            isinstance(parsed, list)
            and parsed
            and all(isinstance(m, dict) and "role" in m and "content" in m for m in parsed)
        )
        return _chat_or_raise(parsed, field) if is_chat else None
    if isinstance(value, list):
        return _chat_or_raise(value, field)
    return None


def _chat_or_raise(value: list[Any], field: str) -> list[dict[str, str]]:
    return [_turn(t, f"{field}[{i}]", "role", "content", OPENAI_ROLES) for i, t in enumerate(value)]


def _last_user(chat: list[dict[str, str]], field: str) -> str:
    users = [m["content"] for m in chat if m["role"] == "user" and m["content"]]
    if not users:
        raise RowProblem(
            "empty_field", f"no prompt: 'prompt' is missing and '{field}' has no user message"
        )
    return users[-1]
