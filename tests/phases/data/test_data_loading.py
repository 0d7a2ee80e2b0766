"""Loading CSV, TSV, JSON, JSONL and directories, and the error each kind of bad file gives."""

import json
import os
import threading
from pathlib import Path

import pytest
from data_test_files import write_rows

from phases.data import DataError, load_records, read_jsonl


def _error(path: Path) -> str:
    with pytest.raises(DataError) as info:
        load_records(path)
    return str(info.value)


def test_records_remember_file_and_starting_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('prompt,completion\n"multi\nline",one\n\nb,two\n', encoding="utf-8")
    records = load_records(path)
    assert [r.fields for r in records] == [
        {"prompt": "multi\nline", "completion": "one"},
        {"prompt": "b", "completion": "two"},
    ]
    assert [r.line for r in records] == [2, 5]
    assert records[1].origin == f"{path} line 5"


def test_tsv_and_utf8_with_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_bytes("\ufefftext\tid\ncafé, déjà\t1\n".encode())
    assert [r.fields for r in load_records(path)] == [{"text": "café, déjà", "id": "1"}]


def test_a_semicolon_separated_csv_is_read(tmp_path: Path) -> None:
    """Spreadsheets in locales with a decimal comma save CSV with semicolons."""
    path = tmp_path / "s.csv"
    path.write_text('prompt;completion\nHalf of 7?;3,5\n"a;b";c\n', encoding="utf-8")
    assert [r.fields for r in load_records(path)] == [
        {"prompt": "Half of 7?", "completion": "3,5"},
        {"prompt": "a;b", "completion": "c"},
    ]
    commas = tmp_path / "c.csv"
    commas.write_text('"note;x",text\na;b,c\n', encoding="utf-8")
    assert [r.fields for r in load_records(commas)] == [{"note;x": "a;b", "text": "c"}]


def test_json_rows_get_the_line_where_each_object_starts(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(
        '{"meta": 1,\n "data": [\n  {"text": "a"},\n\n  {"text": "b"}\n]}', encoding="utf-8"
    )
    assert [r.line for r in load_records(path)] == [3, 5]


def test_json_lines_saved_as_json_are_read_as_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"text": "a"}\n{"text": "b"}\n', encoding="utf-8")
    assert [(r.fields["text"], r.line) for r in load_records(path)] == [("a", 1), ("b", 2)]


def test_read_jsonl_returns_the_objects(tmp_path: Path) -> None:
    rows = [{"prompt": "p\u2028x", "completion": "c"}, {"prompt": "q", "completion": "d"}]
    path = tmp_path / "n.jsonl"
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    assert read_jsonl(path) == rows


def test_a_pipe_or_a_device_is_refused_not_read_forever(tmp_path: Path) -> None:
    """`--data` or `data.train` naming a FIFO (reading waits for a writer) or a device
    (/dev/zero never ends; /dev/null stands for it here, so a regression cannot eat memory):
    refused by what it is, read in a thread so a regression cannot hang the tests."""
    pipe = tmp_path / "pipe.jsonl"
    os.mkfifo(pipe)
    (tmp_path / "device.jsonl").symlink_to("/dev/null")
    messages: list[str] = []

    def load_both() -> None:
        messages.extend(_error(tmp_path / name) for name in ("pipe.jsonl", "device.jsonl"))

    worker = threading.Thread(target=load_both, daemon=True)
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():  # blocked opening the pipe: give it a writer so the thread can end
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a data path that is a pipe waited for a writer")
    for name, message in zip(("pipe.jsonl", "device.jsonl"), messages, strict=True):
        assert message == (
            f"{tmp_path / name}: not a regular file (a pipe, a socket or a device); give a data "
            "file or a folder of them."
        )


def test_missing_file_is_named_with_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("", encoding="utf-8")
    message = _error(tmp_path / "trian.jsonl")
    assert f"{tmp_path / 'trian.jsonl'}: no such file or directory" in message
    assert "Did you mean: train.jsonl?" in message
    assert "no such file or directory" in _error(tmp_path / "nowhere" / "data")


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"text": "a"},\n  {"text": "b",}\n]', encoding="utf-8")
    message = _error(path)
    assert "bad.json line 3, column 16: invalid JSON" in message


def test_json_nested_past_pythons_limit_is_invalid_json(tmp_path: Path) -> None:
    deep = "[" * 5000 + "]" * 5000  # json.loads recurses per level: a RecursionError before
    path = tmp_path / "deep.jsonl"
    path.write_text('{"text": "a"}\n{"prompt": "a", "completion": ' + deep + "}\n")
    message = _error(path)
    assert "deep.jsonl line 2, column 1: invalid JSON: nested too deeply to read" in message
    path = tmp_path / "deep.json"
    path.write_text(deep)
    assert "invalid JSON: nested too deeply to read" in _error(path)


def test_invalid_jsonl_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": "b"\n', encoding="utf-8")
    assert "bad.jsonl line 3, column 13: invalid JSON" in _error(path)
    path.write_text('{"text": "a"}\n["text"]\n', encoding="utf-8")
    assert "bad.jsonl line 2: expected a JSON object, found a list" in _error(path)


def test_json_that_is_not_a_list_of_objects(tmp_path: Path) -> None:
    path = tmp_path / "obj.json"
    path.write_text('{"name": "x", "size": 3}', encoding="utf-8")
    message = _error(path)
    assert "obj.json" in message and "keys: name, size" in message and '"data"' in message
    path.write_text('[{"text": "a"},\n "oops"]', encoding="utf-8")
    assert "obj.json line 2: item 2 is a string" in _error(path)


def test_csv_parse_errors_name_row_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text('prompt,completion\na,b\nc,"d"e\n', encoding="utf-8")
    message = _error(path)
    assert "bad.csv row 2 (line 3): cannot parse the CSV" in message and "double quotes" in message
    path.write_text("prompt,completion\na,b\nc,d,e\n", encoding="utf-8")
    assert "bad.csv row 2 (line 3): expected 2 fields (prompt, completion) but found 3" in _error(
        path
    )
    path.write_text("text,text\na,b\n", encoding="utf-8")
    assert "bad.csv line 1: the header names column(s) ['text'] more than once" in _error(path)


def test_bytes_that_are_not_utf8_name_line_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("text\nok\ncaf\xe9\n".encode("latin-1"))
    message = _error(path)
    assert "latin.csv line 3, column 4 (byte offset 11): byte 0xe9 is not valid UTF-8" in message
    path.write_bytes("text\nx\n".encode("utf-16"))
    assert "UTF-16" in _error(path)


def test_unsupported_file_type(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("hello", encoding="utf-8")
    assert "data.txt: unsupported file type '.txt'" in _error(path)


def test_directory_is_read_sorted_and_not_recursively(tmp_path: Path) -> None:
    write_rows(tmp_path, "b", [{"text": "from b"}], "jsonl")
    write_rows(tmp_path, "a", [{"text": "from a 1"}, {"text": "from a 2"}], "csv")
    (tmp_path / "notes.md").write_text("ignored", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    write_rows(tmp_path / "sub", "c", [{"text": "nested"}], "jsonl")
    records = load_records(tmp_path)
    assert [r.fields["text"] for r in records] == ["from a 1", "from a 2", "from b"]
    assert [Path(r.source).name for r in records] == ["a.csv", "a.csv", "b.jsonl"]


def test_directory_without_data_files(tmp_path: Path) -> None:
    (tmp_path / "readme.md").write_text("x", encoding="utf-8")
    message = _error(tmp_path)
    assert str(tmp_path) in message and "no data files" in message and "readme.md" in message
