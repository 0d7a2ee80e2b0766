"""Read CSV, TSV, JSON, JSONL and Parquet files (or a directory of them, or a folder written by
`datasets`' save_to_disk) into records that remember where they came from, so every later
message can point at a file and a line (or row).

A directory is read non-recursively: its `.csv`, `.tsv`, `.json`, `.jsonl` and `.parquet`
files, sorted by name (hidden files skipped). Text files must be UTF-8 (a byte-order mark is
accepted). Parquet and saved datasets are read in phases/data/arrow_tables.py.

Values stay text: nothing here infers types. A CSV cell is always the string as written
("007", "2024-01-05", "true", "null" and "1e3" stay exactly that), and a JSON number is kept as
the text it was written with (`JsonNumber`), so `1e3` or `1.50` in a text field becomes "1e3"
or "1.50", never 1000.0 or 1.5.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import difflib
import io
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phases.data.arrow_tables import is_saved_dataset, load_parquet, load_saved_dataset
from phases.data.errors import DataError

DATA_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet")
# Keys under which a JSON object commonly holds its list of rows, tried in this order.
ROW_LIST_KEYS = ("data", "examples", "rows", "records", "train", "items", "instances")
# Column names that hold a record's own list, never the file's list of rows.
_RECORD_LIST_COLUMNS = {"messages", "conversations", "chosen", "rejected", "prompt"}
_QUOTING_HINT = (
    "A field containing the delimiter, a double quote or a line break must be wrapped in "
    'double quotes, with inner quotes doubled ("").'
)
_WHITESPACE = re.compile(r"[ \t\n\r]*")


class JsonNumber(str):
    """A JSON number kept as the text it was written with: `1.50` stays "1.50", `1e3` "1e3".
    Being a `str`, it is usable wherever a text field is expected."""


def json_loads(text: str) -> Any:
    """`json.loads`, with every number kept as its written text (`JsonNumber`), not a float.
    JSON nested too deep for Python's parser is a JSONDecodeError like any other bad JSON."""
    try:
        return json.loads(text, parse_int=JsonNumber, parse_float=JsonNumber)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply to read", text, 0) from None


@dataclass(frozen=True)
class Record:
    """One raw row as read from a file, with its origin (file and starting line)."""

    fields: dict[str, Any]
    source: str
    line: int
    unit: str = "line"
    """What `line` counts: "line" in a text file, "row" in Parquet or a saved dataset."""

    @property
    def origin(self) -> str:
        """Where the row is, for messages: `path line N` (or `path row N`)."""
        return f"{self.source} {self.unit} {self.line}"


def load_records(path: str | Path) -> list[Record]:
    """Read every row of a data file, or of each data file in a directory (sorted by name)."""
    path = Path(path)
    if path.is_dir() and is_saved_dataset(path):
        return _rows_as_records(load_saved_dataset(path), path)
    if path.is_dir():
        return [record for file in data_files(path) for record in load_file(path=file)]
    return load_file(path=path)


def _rows_as_records(rows: list[dict[str, Any]], path: Path) -> list[Record]:
    """Arrow rows as records `row N`, their numbers kept as the text they print as."""
    return [
        Record(_text_values(row), str(path), number, "row")
        for number, row in enumerate(rows, start=1)
    ]


def _text_values(value: Any) -> Any:
    """Numbers as `JsonNumber` text ("7", "1.5"), NaN as missing, nested values too."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, int | float):
        return JsonNumber(repr(value) if isinstance(value, float) else str(value))
    if isinstance(value, dict):
        return {key: _text_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_text_values(item) for item in value]
    return str(value)


def data_files(directory: Path) -> list[Path]:
    """The data files directly inside `directory`, sorted by name; DataError when there are none."""
    files = sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and p.suffix.lower() in DATA_SUFFIXES and not p.name.startswith(".")
    )
    if not files:
        found = sorted(p.name for p in directory.iterdir())
        listing = ", ".join(found[:10]) + (" ..." if len(found) > 10 else "") or "nothing"
        raise DataError(
            f"{directory}: the directory holds no data files (.csv, .tsv, .json, .jsonl, "
            f".parquet) and is not a saved dataset (save_to_disk); found: {listing}. "
            "Sub-directories are not searched."
        )
    return files


def load_file(*, path: Path) -> list[Record]:
    """Read one CSV, TSV, JSON, JSONL or Parquet file into records."""
    suffix = path.suffix.lower()
    if suffix not in DATA_SUFFIXES:
        _check_exists(path)
        raise DataError(
            f"{path}: unsupported file type '{suffix or '(none)'}'; "
            "use .csv, .tsv, .json, .jsonl or .parquet (or a save_to_disk folder)."
        )
    if suffix == ".parquet":
        _check_exists(path)
        return _rows_as_records(load_parquet(path), path)
    text = read_text(path)
    if suffix in (".csv", ".tsv"):
        return _parse_csv(path, text, delimiter="\t" if suffix == ".tsv" else _csv_delimiter(text))
    if suffix == ".json":
        return _parse_json(path, text)
    return _parse_jsonl(path, text)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL file (e.g. a normalized `train.jsonl`) into a list of objects."""
    path = Path(path)
    return [record.fields for record in _parse_jsonl(path, read_text(path))]


def read_text(path: Path) -> str:
    """The file's text, decoded as UTF-8; DataError naming the byte offset when it is not."""
    _check_exists(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{path}: the file is UTF-16 encoded; re-save it as UTF-8.")
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        line = data.count(b"\n", 0, offset) + 1
        column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
        raise DataError(
            f"{path} line {line}, column {column} (byte offset {offset}): byte "
            f"0x{data[offset]:02x} is not valid UTF-8. Re-save the file as UTF-8 "
            "(e.g. from Excel: 'CSV UTF-8')."
        ) from None


def _check_exists(path: Path) -> None:
    if path.is_file() or path.is_dir():
        return
    if path.exists():  # reading a pipe waits for a writer, /dev/zero never ends: both hang
        raise DataError(
            f"{path}: not a regular file (a pipe, a socket or a device); give a data file "
            "or a folder of them."
        )
    if path.is_symlink():  # it is there, but what it points at is not (or it loops)
        raise DataError(
            f"{path}: a symbolic link to {os.readlink(path)}, which does not exist (or the "
            "links loop); link a data file or a folder of them."
        )
    hint = ""
    if path.parent.is_dir():
        names = [p.name for p in path.parent.iterdir()]
        close = difflib.get_close_matches(path.name, names, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise DataError(f"{path}: no such file or directory.{hint}")


def _csv_delimiter(text: str) -> str:
    """`;` for a .csv whose header line has semicolons and no comma (spreadsheets in locales
    with a decimal comma save CSV that way), else `,`."""
    header = text.lstrip("\ufeff").split("\n", 1)[0]
    return ";" if ";" in header and "," not in header else ","


def _parse_csv(path: Path, text: str, *, delimiter: str) -> list[Record]:
    # Long completions exceed csv's default 128 KiB field limit.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DataError(f"{path} line {reader.line_num}: cannot parse the header: {exc}.") from None
    if header is None:
        return []
    header = [name.strip() for name in header]
    repeated = sorted({n for n in header if n and header.count(n) > 1})
    if repeated:
        raise DataError(f"{path} line 1: the header names column(s) {repeated} more than once.")
    records, row_number = [], 0
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return records
        except csv.Error as exc:
            raise DataError(
                f"{path} row {row_number + 1} (line {line}): cannot parse the CSV: {exc}. "
                + _QUOTING_HINT
            ) from None
        if not row:  # a blank line
            continue
        row_number += 1
        if len(row) != len(header):
            raise DataError(
                f"{path} row {row_number} (line {line}): expected {len(header)} fields "
                f"({', '.join(header)}) but found {len(row)}. " + _QUOTING_HINT
            )
        records.append(Record(dict(zip(header, row, strict=True)), str(path), line))


def _parse_jsonl(path: Path, text: str) -> list[Record]:
    records = []
    # Split on "\n" only: str.splitlines would also split on U+2028 inside JSON strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json_loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path} line {number}, column {exc.colno}: invalid JSON: {exc.msg}. "
                "A JSONL file holds one complete JSON object per line."
            ) from None
        if not isinstance(value, dict):
            raise DataError(
                f"{path} line {number}: expected a JSON object, found {_json_type(value)}."
            )
        records.append(Record(value, str(path), number))
    return records


def _parse_json(path: Path, text: str) -> list[Record]:
    try:
        data = json_loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" and _first_line_is_object(text):
            return _parse_jsonl(path, text)  # JSON Lines saved with a .json name
        raise DataError(
            f"{path} line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}."
        ) from None
    rows, key = _row_list(path, data)
    lines = _item_lines(text, key, len(rows))
    records = []
    for index, (item, line) in enumerate(zip(rows, lines, strict=True), start=1):
        if not isinstance(item, dict):
            where = f"item {index}" + (f' of "{key}"' if key else "")
            raise DataError(
                f"{path} line {line}: {where} is {_json_type(item)}; every row must be a JSON "
                'object such as {"prompt": "...", "completion": "..."}.'
            )
        records.append(Record(item, str(path), line))
    return records


def _row_list(path: Path, data: Any) -> tuple[list[Any], str | None]:
    """The list of rows in a parsed JSON document and the key holding it (None: top level)."""
    if isinstance(data, list):
        return data, None
    if isinstance(data, dict):
        for key in ROW_LIST_KEYS:
            if isinstance(data.get(key), list):
                return data[key], key
        lists = [
            k
            for k, v in data.items()
            if isinstance(v, list) and v and k not in _RECORD_LIST_COLUMNS
            if all(isinstance(item, dict) for item in v)
        ]
        if len(lists) == 1:
            return data[lists[0]], lists[0]
        keys = ", ".join(list(data)[:10]) or "none"
        raise DataError(
            f"{path}: expected a JSON list of objects, or an object holding that list under a "
            f'key such as "data"; found an object with keys: {keys}.'
        )
    raise DataError(f"{path}: expected a JSON list of objects, found {_json_type(data)}.")


def _item_lines(text: str, key: str | None, count: int) -> list[int]:
    """The line on which each row of the row list starts (best effort: 1 when unknown)."""
    newlines = [m.start() for m in re.finditer("\n", text)]
    try:
        start = _skip(text, 0) if key is None else _value_offset(text, key)
        offsets = _array_item_offsets(text, start)
    except (ValueError, IndexError):
        offsets = []
    if len(offsets) != count:  # e.g. a repeated key; positions are then unknown
        return [1] * count
    return [bisect.bisect_left(newlines, offset) + 1 for offset in offsets]


def _skip(text: str, index: int) -> int:
    return _WHITESPACE.match(text, index).end()


def _array_item_offsets(text: str, index: int) -> list[int]:
    decoder, offsets = json.JSONDecoder(), []
    if text[index] != "[":
        raise ValueError("not an array")
    index = _skip(text, index + 1)
    if text[index] == "]":
        return offsets
    while True:
        offsets.append(index)
        _, index = decoder.raw_decode(text, index)
        index = _skip(text, index)
        if text[index] == "]":
            return offsets
        index = _skip(text, index + 1)  # past the comma


def _value_offset(text: str, wanted: str) -> int:
    decoder = json.JSONDecoder()
    index = _skip(text, 0)
    if text[index] != "{":
        raise ValueError("not an object")
    while True:
        key, index = decoder.raw_decode(text, _skip(text, index + 1))
        index = _skip(text, _skip(text, index) + 1)  # past the colon
        if key == wanted:
            return index
        _, index = decoder.raw_decode(text, index)
        index = _skip(text, index)  # at the comma or the closing brace


def _first_line_is_object(text: str) -> bool:
    first = next((line for line in text.split("\n") if line.strip()), "")
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, JsonNumber):
        return "a number"
    return names.get(type(value), "a number")
