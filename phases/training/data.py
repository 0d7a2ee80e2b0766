"""Read a normalized jsonl file and turn it into the records TRL's trainers expect.

Everything here is checked before any model is loaded, so a wrong file fails in
milliseconds with a message naming the file, line, kind and method.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from phases.training.config import METHODS, RLTraining, methods_for_kind

RL_METHODS = tuple(name for name, model in METHODS.items() if issubclass(model, RLTraining))

# The fields that identify a kind, checked in this order (a preference row also has "prompt").
_KIND_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("preference", ("prompt", "chosen", "rejected")),
    ("tool_chat", ("messages", "tools")),
    ("chat", ("messages",)),
    ("kto", ("prompt", "completion", "label")),
    ("prompt_completion", ("prompt", "completion")),
    ("text", ("text",)),
    ("prompt", ("prompt",)),
)
# RL methods read the reference of a prompt/completion row as the column `reference`: TRL hands
# every dataset column to the reward functions except `prompt` and `completion`.
REFERENCE_COLUMN = "reference"


class TrainingInputError(ValueError):
    """The training data cannot be used as given; the message says where and what to do."""


@dataclass
class TrainingData:
    """Rows of one normalized file, ready for a TRL trainer."""

    path: Path
    kind: str
    records: list[dict]


def detect_kind(row: dict) -> str | None:
    """The normalized kind of one row, or None when its fields match no kind."""
    for kind, fields in _KIND_FIELDS:
        if all(field in row for field in fields):
            return kind
    return None


def read_rows(path: Path) -> tuple[str, list[dict]]:
    """Read a normalized jsonl file; return its kind and rows. Raises TrainingInputError."""
    path = Path(path)
    if not path.is_file():
        raise TrainingInputError(f"Training data file not found: {path}")
    rows: list[dict] = []
    kind: str | None = None
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = _parse_line(path, line_number, line)
            row_kind = detect_kind(row)
            if row_kind is None:
                raise TrainingInputError(
                    f"{path}, line {line_number}: fields {sorted(row)} match no data kind; expected "
                    "one of chat (messages), tool_chat (messages, tools), prompt_completion "
                    "(prompt, completion), preference (prompt, chosen, rejected), kto (prompt, "
                    "completion, label), prompt (prompt, optional reference columns) or text "
                    "(text). "
                    "Run the data phase first."
                )
            if kind is not None and row_kind != kind:
                raise TrainingInputError(
                    f"{path}, line {line_number}: a '{row_kind}' row in a '{kind}' file; "
                    "all rows of one file must have the same kind."
                )
            kind = row_kind
            rows.append(row)
    if kind is None:
        raise TrainingInputError(f"{path} is empty: there is nothing to train on.")
    return kind, rows


def kind_advice(kind: str, method: str) -> str | None:
    """None when `method` can train on data of `kind`; else what it learns from and what to
    do instead."""
    allowed = METHODS[method].data_kinds
    if kind in allowed:
        return None
    others = " or ".join(f"'{m}'" for m in methods_for_kind(kind))
    return (
        f"it learns from {', '.join(allowed)} data. Give it such data, or use method {others} "
        f"for '{kind}' data."
    )


def check_kind(path: Path, kind: str, method: str) -> None:
    """Raise TrainingInputError unless `method` can train on data of `kind`."""
    if advice := kind_advice(kind, method):
        raise TrainingInputError(
            f"{path} holds '{kind}' data, which training method '{method}' cannot use: {advice}"
        )


def load_training_data(path: Path, method: str) -> TrainingData:
    """Read, validate and convert one normalized file for `method`."""
    kind, rows = read_rows(path)
    check_kind(path, kind, method)
    records = [_to_trl_record(path, line, kind, row) for line, row in enumerate(rows, start=1)]
    if method in RL_METHODS and kind in ("prompt_completion", "chat"):
        records = [{"prompt": r["prompt"], REFERENCE_COLUMN: _reply(r)} for r in records]
    return TrainingData(path=Path(path), kind=kind, records=records)


def _reply(record: dict) -> str:
    """The reference answer of a prompt/completion record (a chat's is its last reply)."""
    completion = record["completion"]
    return completion[-1]["content"] if isinstance(completion, list) else completion


def _parse_line(path: Path, line_number: int, line: str) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise TrainingInputError(
            f"{path}, line {line_number}: not valid JSON ({error.msg})."
        ) from None
    if not isinstance(row, dict):
        raise TrainingInputError(f"{path}, line {line_number}: expected a JSON object.")
    return row


def _to_trl_record(path: Path, row_number: int, kind: str, row: dict) -> dict:
    """One row in the shape TRL reads: only the fields of its kind, strings checked."""
    if kind == "chat":
        return _chat_to_prompt_completion(path, row_number, row["messages"])
    if kind == "tool_chat":
        return checked_tool_record(f"{path}, row {row_number}", row)
    if kind == "kto" and not isinstance(row["label"], bool):
        raise TrainingInputError(
            f"{path}, row {row_number}: field 'label' must be true (desirable) or false "
            f"(undesirable), got {row['label']!r}."
        )
    if kind == "prompt":
        if not isinstance(row["prompt"], str):
            raise TrainingInputError(f"{path}, row {row_number}: field 'prompt' must be a string.")
        return dict(row)  # every other column is offered to the reward functions
    fields = dict(_KIND_FIELDS)[kind]
    for field in fields:
        if field != "label" and not isinstance(row[field], str):
            raise TrainingInputError(
                f"{path}, row {row_number}: field '{field}' must be a string, "
                f"got {type(row[field]).__name__}."
            )
    return {field: row[field] for field in fields}


def _chat_to_prompt_completion(path: Path, row_number: int, messages: object) -> dict:
    """A chat becomes a conversational prompt/completion pair: prompt = all turns but the last,
    completion = the final assistant reply. TRL then masks the loss to the completion through
    the difference of two chat-template renderings, which works with any chat template (it needs
    no {% generation %} markers, unlike assistant_only_loss)."""
    where = f"{path}, row {row_number}"
    if not isinstance(messages, list) or len(messages) < 2:
        raise TrainingInputError(f"{where}: 'messages' must be a list of at least two turns.")
    clean = []
    for turn in messages:
        if not isinstance(turn, dict) or not isinstance(turn.get("content"), str):
            raise TrainingInputError(f"{where}: every message needs a string 'content'.")
        if turn.get("role") not in ("system", "user", "assistant"):
            raise TrainingInputError(
                f"{where}: message role {turn.get('role')!r} is not system, user or assistant."
            )
        clean.append({"role": turn["role"], "content": turn["content"]})
    if clean[-1]["role"] != "assistant":
        raise TrainingInputError(f"{where}: the last message must be the assistant reply.")
    return {"prompt": clean[:-1], "completion": clean[-1:]}


def checked_tool_record(where: str, row: dict) -> dict:
    """A tool-calling conversation as the data phase wrote it: messages (roles system, user,
    assistant, tool; assistant turns may carry `tool_calls`) and tool schemas. It is tokenized
    once the model's tokenizer is loaded (`tool_chat_records`), every assistant turn trained."""
    messages, tools = row["messages"], row["tools"]
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise TrainingInputError(f"{where}: 'tools' must be a list of JSON schemas.")
    if not isinstance(messages, list) or len(messages) < 2:
        raise TrainingInputError(f"{where}: 'messages' must be a list of at least two turns.")
    for index, turn in enumerate(messages):
        role = turn.get("role") if isinstance(turn, dict) else None
        if role not in ("system", "user", "assistant", "tool"):
            raise TrainingInputError(
                f"{where}: messages[{index}] has role {role!r}; expected system, user, "
                "assistant or tool."
            )
        if not isinstance(turn.get("content"), str) or not isinstance(
            turn.get("tool_calls", []), list
        ):
            raise TrainingInputError(
                f"{where}: messages[{index}] needs a string 'content' (and a list 'tool_calls')."
            )
    if messages[-1]["role"] != "assistant":
        raise TrainingInputError(f"{where}: the last message must be the assistant's.")
    return {"messages": messages, "tools": tools}


def tool_chat_records(data: TrainingData, tokenizer) -> TrainingData:
    """Tool-calling conversations tokenized with the model's chat template (natively with
    `tools=` when the template supports tools), with the loss on every assistant turn: the
    calls as much as the answers. TRL trains on the `input_ids` / `completion_mask` as given."""
    from models.tool_chat import tokenize_tool_chat

    records = [tokenize_tool_chat(tokenizer, r["messages"], r["tools"]) for r in data.records]
    return TrainingData(path=data.path, kind=data.kind, records=records)


def text_lengths(records: list[dict]) -> list[int]:
    """Characters per record (a cheap stand-in for tokens, used before tokenizing)."""
    return [len(json.dumps(record, ensure_ascii=False)) for record in records]
