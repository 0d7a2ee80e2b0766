"""`finetune-agent data inspect` bad input: an empty FILE (it read the current folder) or
`--tokenizer` (it fell back to the approximation) is refused, a broken link is named as one,
and `--tokenizer` counts tokens the way a run does (chat rows through the chat template), so
the rows it reports kept over max_length are the rows a run keeps."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from llmfinetune_agent.cli import app

CHAT = [
    {
        "messages": [
            {"role": "user", "content": "hello there"},
            {"role": "assistant", "content": "hi"},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "what is up"},
            {"role": "assistant", "content": "nothing much at all"},
        ]
    },
]


def _inspect(*args: str):
    result = CliRunner().invoke(app, ["data", "inspect", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_empty_file_and_tokenizer_are_refused(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "rows.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    monkeypatch.chdir(tmp_path)  # '' was this folder, and its rows were inspected
    refused = _inspect("")
    assert refused.exit_code == 2
    assert refused.stderr == "error: FILE '': give a data file or a folder of them\n"
    refused = _inspect("rows.jsonl", "--tokenizer", "")
    assert refused.exit_code == 2
    assert refused.stderr == "error: --tokenizer '': give a model reference, or leave it out\n"


def test_a_broken_link_is_named_as_one(tmp_path: Path) -> None:
    link = tmp_path / "rows.jsonl"
    link.symlink_to(tmp_path / "moved.jsonl")
    refused = _inspect(str(link))
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"error: {link}: a symbolic link to {tmp_path / 'moved.jsonl'}, which does not exist "
        "(or the links loop); link a data file or a folder of them.\n"
    )


def test_the_tokenizer_counts_chat_rows_as_a_run_does(tiny_model_dir, tmp_path: Path) -> None:
    from models import load_tokenizer
    from phases.data import tokenizer_token_counter

    rows = tmp_path / "chat.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in CHAT))
    count = tokenizer_token_counter(load_tokenizer(str(tiny_model_dir)))
    lengths = [count.count_chat(r["messages"]) for r in CHAT]
    # A limit between the two rows' templated lengths: the run drops the longer one.
    limit = max(lengths) - 1
    assert min(lengths) <= limit
    result = _inspect(
        str(rows),
        "--tokenizer",
        str(tiny_model_dir),
        "--max-length",
        str(limit),
        "--eval-fraction",
        "0",
    )
    assert result.exit_code == 0, result.output
    assert "(chat rows with its chat template)" in result.output
    assert "Dropped 1: 1 longer than max_length tokens." in result.output
    assert f"max {min(lengths)} (max_length {limit})" in result.output
