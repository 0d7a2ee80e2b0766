"""`finetune-agent export` and `feedback export` refuse, with exit 2 and a line naming what is
wrong, an output that is the run database (writing it destroyed every run), a folder on the way
that is a file, an empty `--since` (it meant "no date filter") or one out of range in UTC (an
OverflowError), an empty `--model` or MODEL_ID; and say when every served answer was empty
instead of "serve answers first"."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from llmfinetune_agent.cli import app
from llmfinetune_agent.feedback_store import FeedbackStore
from llmfinetune_agent.run_store import RunStore
from llmfinetune_agent.settings import Settings, sqlite_path


def _cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def _serve(output: str, model_id: str = "m1") -> None:
    FeedbackStore(Settings.from_env().database_url).record_interaction(
        model_id=model_id, source="api", prompt="Hi?", output=output
    )


def test_the_run_database_is_never_written_over() -> None:
    _serve("Hello.")
    database = Path(sqlite_path(Settings.from_env().database_url))
    before = database.read_bytes()
    for args in (
        ["export", "runs", str(database)],
        ["export", "interactions", str(database)],
        ["export", "interactions", f"{database}-wal"],
    ):
        refused = _cli(*args)
        assert refused.exit_code == 2, refused.output
        assert f"it is the run database ({database.resolve()})" in refused.output
    assert database.read_bytes() == before
    assert RunStore(Settings.from_env().database_url).list_runs() == ([], 0)


def test_a_file_on_the_way_is_named(tmp_path: Path) -> None:
    a_file = tmp_path / "notes"
    a_file.write_text("mine")
    for out in (a_file / "runs.json", a_file / "deeper" / "runs.json"):
        refused = _cli("export", "runs", str(out))
        assert refused.exit_code == 2
        assert refused.output == f"cannot write {out}: {a_file} is not a folder\n"
    assert a_file.read_text() == "mine"


def test_empty_filters_are_refused_not_dropped(tmp_path: Path) -> None:
    _serve("Hello.")
    out = tmp_path / "rows.jsonl"
    since = _cli("export", "interactions", str(out), "--since", "")
    assert since.exit_code == 2 and "--since '' is not a date" in since.output
    model = _cli("export", "interactions", str(out), "--model", " ")
    assert model.exit_code == 2 and "--model '': give a model's registry id" in model.output
    for far in ("0001-01-01T00:00+05:00", "9999-12-31T23:59-05:00"):  # was an OverflowError
        refused = _cli("export", "interactions", str(out), "--since", far)
        assert refused.exit_code == 2
        assert f"--since '{far}' is out of range: in UTC it falls before" in refused.output
    feedback = _cli("feedback", "export", "", str(out))
    assert feedback.exit_code == 2 and "MODEL_ID '': give the registry id" in feedback.output
    assert not out.exists()
    written = _cli("export", "interactions", str(out), "--model", "m1")
    assert written.exit_code == 0, written.output
    assert json.loads(out.read_text())["messages"][-1] == {"role": "assistant", "content": "Hello."}


def test_only_empty_answers_are_said_to_be_empty(tmp_path: Path) -> None:
    _serve("")
    _serve("  \n")
    refused = _cli("export", "interactions", str(tmp_path / "rows.jsonl"))
    assert refused.exit_code == 2
    assert refused.output == "No interactions to export: the 2 served had empty answers.\n"
