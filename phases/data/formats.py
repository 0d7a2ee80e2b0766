"""Source formats: detect one from a file's columns, and normalize its rows to a dataset kind.

Source format -> kind of the normalized records (shapes in phases/data/__init__.py):
alpaca, dolly, prompt_completion -> "prompt_completion"; messages, sharegpt, ultrachat, oasst,
oasst_trees -> "chat"; tool_calling, xlam -> "tool_chat"; preference -> "preference";
kto (prompt/completion/label) -> "kto"; prompt (prompt, optional reference) -> "prompt";
text -> "text". OpenAssistant rows are grouped into conversations before conversion
(phases/data/instruction_rows.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from phases.data import instruction_rows, row_conversion, tool_rows
from phases.data.errors import DataError
from phases.data.loading import Record
from phases.data.row_conversion import RowProblem

CONVERTERS = {
    **row_conversion.CONVERTERS,
    **tool_rows.CONVERTERS,
    **instruction_rows.CONVERTERS,
}

# Required and optional columns per format. The order is the detection precedence: a chat
# column is the most specific signal; preference files also have a "prompt"; "text" is last
# because many files carry a rendered "text" next to their real columns.
# Tool calling comes before plain messages (it adds a "tools" column), OpenAssistant's trees
# before preference and prompt/completion (they also have a "prompt").
FORMAT_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "tool_calling": (("messages", "tools"), ()),
    "messages": (("messages",), ()),
    "sharegpt": (("conversations",), ()),
    "oasst": (("message_id", "parent_id", "role", "text"), ()),
    "oasst_trees": (("message_tree_id", "prompt"), ()),
    "xlam": (("query", "tools", "answers"), ()),
    "preference": (("chosen", "rejected"), ("prompt",)),
    "alpaca": (("instruction", "output"), ("input",)),
    "dolly": (("instruction", "response"), ("context", "category")),
    "kto": (("prompt", "completion", "label"), ()),
    "prompt_completion": (("prompt", "completion"), ()),
    "ultrachat": (("data",), ("id",)),
    "text": (("text",), ()),
    "prompt": (("prompt",), ("reference",)),
}
KIND_OF_FORMAT = {
    "tool_calling": "tool_chat",
    "messages": "chat",
    "sharegpt": "chat",
    "oasst": "chat",
    "oasst_trees": "chat",
    "xlam": "tool_chat",
    "preference": "preference",
    "alpaca": "prompt_completion",
    "dolly": "prompt_completion",
    "prompt_completion": "prompt_completion",
    "kto": "kto",
    "ultrachat": "chat",
    "text": "text",
    "prompt": "prompt",
}
KIND_KEYS = {
    "tool_chat": {"messages", "tools"},
    "chat": {"messages"},
    "prompt_completion": {"prompt", "completion"},
    "preference": {"prompt", "chosen", "rejected"},
    "kto": {"prompt", "completion", "label"},
    "text": {"text"},
    "prompt": {"prompt"},
}
# Key sets of a kind besides the one in KIND_KEYS (a prompt may carry its reference).
_MORE_KIND_KEYS = {"prompt": {"prompt", "reference"}}
STANDARD_COLUMNS = sorted({c for req, opt in FORMAT_COLUMNS.values() for c in req + opt})


@dataclass
class Example:
    """One normalized record and where its row came from."""

    record: dict[str, Any]
    origin: str
    tokens: int = 0

    @cached_property
    def key(self) -> str:
        """The record's canonical text; equal keys are exact duplicates."""
        return json.dumps(self.record, sort_keys=True, ensure_ascii=False)

    @cached_property
    def near_key(self) -> str:
        """`key` ignoring letter case and spacing: rows equal but for those are one example
        where the eval split is concerned (a case-variant of an eval row in training leaks it)."""
        return near_key(self.record)


def near_key(record: dict[str, Any]) -> str:
    """A record's canonical text with every string lower-cased and its whitespace collapsed;
    the data check and the debugger's leakage check compare rows by it."""

    def fold(value: Any) -> Any:
        if isinstance(value, str):
            return " ".join(value.lower().split())
        if isinstance(value, dict):
            return {k: fold(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fold(v) for v in value]
        return value

    return json.dumps(fold(record), sort_keys=True, ensure_ascii=False)


@dataclass
class DroppedRow:
    """A row left out, where it was and why."""

    origin: str
    reason: str
    detail: str


@dataclass
class Normalized:
    """The rows of one data source (file or directory) after normalization."""

    kind: str
    formats: dict[str, str]  # file -> detected (or forced) source format
    examples: list[Example]
    dropped: list[DroppedRow] = field(default_factory=list)
    rows_read: int = 0

    @property
    def format(self) -> str:
        """The source format, or the formats joined by "+" when files differ."""
        return "+".join(sorted(set(self.formats.values())))


def format_help() -> str:
    """The formats and their columns, for error messages."""
    parts = []
    for name, (required, optional) in FORMAT_COLUMNS.items():
        cols = ", ".join(required) + "".join(f", optional {c}" for c in optional)
        parts.append(f"{name} ({cols})")
    return "; ".join(parts)


def detect_format(columns: Iterable[str], *, source: str = "the data") -> str:
    """The source format whose required columns are all present, by FORMAT_COLUMNS precedence."""
    present = set(columns)
    for name, (required, _) in FORMAT_COLUMNS.items():
        if present.issuperset(required):
            return name
    found = ", ".join(sorted(present)) or "none"
    raise DataError(
        f"{source}: cannot tell the data format from its columns ({found}). Expected one of: "
        f"{format_help()}. Rename the columns, or map yours with data.columns, e.g. "
        '{"prompt": "question", "completion": "answer"}.'
    )


def normalize(
    records: list[Record], format: str = "auto", columns: Mapping[str, str] | None = None
) -> Normalized:
    """Map columns, detect (or force) each file's format, and convert every row; unusable rows
    are kept out with a reason. DataError when files disagree on the dataset kind."""
    if not records:
        raise DataError("no rows to normalize: the data is empty.")
    if format != "auto" and format not in FORMAT_COLUMNS:
        raise DataError(
            f"unknown data format '{format}'; use auto or one of {list(FORMAT_COLUMNS)}."
        )
    _check_mapping(columns or {})
    by_source: dict[str, list[Record]] = {}
    for record in records:
        by_source.setdefault(record.source, []).append(record)
    formats, examples, dropped, rows_read = {}, [], [], 0
    for source, rows in by_source.items():
        rows = _mapped(rows, columns or {}, source)
        fmt = _source_format(rows, format, source)
        formats[source] = fmt
        if fmt in instruction_rows.EXPANDERS:  # rows that form conversations together
            rows, unusable = instruction_rows.EXPANDERS[fmt](rows)
            dropped += [DroppedRow(r.origin, reason, detail) for r, reason, detail in unusable]
            rows_read += len(unusable)
        rows_read += len(rows)
        convert = CONVERTERS[fmt]
        for row in rows:
            try:
                examples.append(Example(convert(row.fields), row.origin))
            except RowProblem as problem:
                dropped.append(DroppedRow(row.origin, problem.reason, problem.detail))
    kinds = {KIND_OF_FORMAT[f] for f in formats.values()}
    if len(kinds) > 1:
        listing = "; ".join(f"{s}: {f} -> {KIND_OF_FORMAT[f]}" for s, f in formats.items())
        raise DataError(f"the files hold different kinds of data ({listing}); use one kind.")
    return Normalized(kinds.pop(), formats, examples, dropped, rows_read=rows_read)


def dataset_kind(records: list[dict[str, Any]]) -> str:
    """The kind ("chat", "tool_chat", "prompt_completion", "preference", "text") of normalized
    records."""
    if not records:
        raise DataError("no records: cannot tell the dataset kind of an empty list.")
    kinds = {frozenset(v): k for k, v in [*KIND_KEYS.items(), *_MORE_KIND_KEYS.items()]}
    kind = kinds.get(frozenset(records[0]))
    for index, record in enumerate(records, start=1):
        if kinds.get(frozenset(record)) != kind or kind is None:
            raise DataError(
                f"record {index} has keys {sorted(record)}; normalized records have exactly one "
                f"of these key sets: {', '.join(str(sorted(v)) for v in KIND_KEYS.values())}"
                + (f" (the first record is '{kind}')" if kind else "")
                + "."
            )
    return kind


def _check_mapping(columns: Mapping[str, str]) -> None:
    unknown = sorted(set(columns) - set(STANDARD_COLUMNS))
    if unknown:
        raise DataError(
            f"data.columns maps unknown standard name(s) {unknown}; the keys must be standard "
            f"names ({', '.join(STANDARD_COLUMNS)}) and the values your column names."
        )


def _mapped(rows: list[Record], columns: Mapping[str, str], source: str) -> list[Record]:
    """Rows with the user's column names renamed to the standard ones."""
    if not columns:
        return rows
    present = _columns(rows)
    missing = {
        std: user for std, user in columns.items() if user not in present and std not in present
    }
    if missing:
        pairs = ", ".join(f"{std} <- '{user}'" for std, user in missing.items())
        raise DataError(
            f"{source}: data.columns maps {pairs}, but the file has no such column; its columns "
            f"are: {', '.join(sorted(present)) or 'none'}."
        )
    renamed = []
    for row in rows:
        fields = dict(row.fields)
        for std, user in columns.items():
            if user in fields and user != std:
                fields[std] = fields.pop(user)
        renamed.append(Record(fields, row.source, row.line))
    return renamed


def _source_format(rows: list[Record], format: str, source: str) -> str:
    present = _columns(rows)
    if format == "auto":
        return detect_format(present, source=source)
    missing = [c for c in FORMAT_COLUMNS[format][0] if c not in present]
    if missing:
        raise DataError(
            f"{source}: data.format is '{format}', which needs column(s) "
            f"{', '.join(FORMAT_COLUMNS[format][0])}; missing {', '.join(missing)}. The file's "
            f"columns are: {', '.join(sorted(present)) or 'none'}. Map yours with data.columns."
        )
    return format


def _columns(rows: list[Record]) -> set[str]:
    present: set[str] = set()
    for row in rows:
        present.update(row.fields)
    return present
