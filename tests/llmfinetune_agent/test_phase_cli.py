"""`data inspect`, `train` and `evaluate`: the phases from the command line, without the graph."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmfinetune_agent.cli import app

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "quickstart-tiny.json"
QUICKSTART_DATA = REPO / "configs" / "data" / "quickstart" / "train.jsonl"


def cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_data_inspect_reports_format_counts_and_samples() -> None:
    result = cli("data", "inspect", QUICKSTART_DATA)
    assert result.exit_code == 0, result.output
    assert "format: messages (normalized as chat)" in result.output
    assert "Read 160 rows" in result.output and "144 train, 16 eval" in result.output
    samples = result.output.split("samples:")[1].strip().splitlines()
    assert len(samples) == 3 and all(json.loads(s)["messages"] for s in samples)


def test_data_inspect_names_the_file_and_line_of_bad_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "c", \n')
    result = cli("data", "inspect", bad)
    assert result.exit_code == 2
    assert "bad.jsonl" in result.output and "line 2" in result.output
    assert "Traceback" not in result.output


def test_data_inspect_rejects_an_unknown_format() -> None:
    result = cli("data", "inspect", QUICKSTART_DATA, "--format", "csvish")
    assert result.exit_code == 2 and "format" in result.output


def test_train_stops_on_bad_input_before_loading_a_model(tmp_path: Path) -> None:
    config = json.loads(QUICKSTART.read_text())
    config["data"]["train"] = str(QUICKSTART_DATA)
    config["training"]["method"] = "dpo"  # chat data cannot train DPO
    path = tmp_path / "dpo-on-chat.json"
    path.write_text(json.dumps(config))
    result = cli("train", path, "--output", tmp_path / "out")
    assert result.exit_code == 2
    assert "preference" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out" / "training" / "model").exists()


@pytest.mark.slow
def test_a_format_copier_fails_its_thresholds_and_is_diagnosed(tmp_path: Path) -> None:
    """The tiny model learns the JSON shape of the quickstart but not to read the input: ROUGE
    rewards that, exact match does not, and the debugger names it."""
    from phases.diagnosis import diagnose_run

    out = tmp_path / "out"
    trained = cli("train", QUICKSTART, "--output", out)
    assert trained.exit_code == 0, trained.output
    evaluated = cli("evaluate", QUICKSTART, "--model", out / "training" / "model", "--output", out)
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads((out / "evaluation" / "evaluation_report.json").read_text())
    base, tuned = report["base"]["metrics"], report["tuned"]["metrics"]
    assert tuned["rougeL"] - base["rougeL"] >= 0.4, (base, tuned)  # ROUGE rewards the shape
    assert tuned["json_valid"] >= 0.8 and tuned["exact_match"] < 0.8
    assert report["passed"] is False
    assert [c["metric"] for c in report["checks"] if not c["passed"]] == ["exact_match"]
    found = diagnose_run(
        config=json.loads(QUICKSTART.read_text()),
        evaluation={"base": base, "tuned": tuned},
        predictions=report["tuned"]["predictions"],
    )
    kinds = {d.kind for d in found if d.severity == "error"}
    assert kinds & {"ignores_input", "format_only"}, [d.kind for d in found]
