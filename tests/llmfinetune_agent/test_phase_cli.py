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


def small_config(tmp_path: Path, model: Path, **sections: dict) -> Path:
    """The quickstart on 20 rows of a local tiny model, with `sections` merged in."""
    config = json.loads(QUICKSTART.read_text())
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(QUICKSTART_DATA.read_text().splitlines(True)[:20]))
    config["data"]["train"] = str(rows)
    config["model"]["name_or_path"] = str(model)
    config["training"].update({"max_steps": 1, "batch_size": 4})
    for name, values in sections.items():
        config[name].update(values)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def test_train_refuses_an_output_path_that_is_a_file(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("")
    result = cli("train", QUICKSTART, "--output", taken)
    assert result.exit_code == 2, result.output
    assert f"--output {taken}: cannot create the directory (File exists)" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_evaluate_refuses_an_empty_model_reference(tmp_path: Path) -> None:
    result = cli("evaluate", QUICKSTART, "--model", "", "--output", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert "the model reference is empty" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_evaluate_checks_the_tuned_model_before_evaluating_the_base(
    tmp_path: Path, tiny_model_dir: Path, _isolated_home: Path
) -> None:
    missing = tmp_path / "no-such-model"
    result = cli("evaluate", small_config(tmp_path, tiny_model_dir), "--model", missing)
    assert result.exit_code == 2, result.output
    assert f"model path not found: '{missing}'" in result.output
    assert not list(_isolated_home.rglob("eval_cache")), "the base model was evaluated first"


def test_evaluate_without_eval_rows_names_the_setting(tmp_path: Path, tiny_model_dir: Path) -> None:
    config = small_config(tmp_path, tiny_model_dir, data={"eval_fraction": 0.0})
    result = cli("evaluate", config, "--model", tiny_model_dir, "--output", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert f"{config}: no eval rows to evaluate on" in result.output
    assert "data.eval_fraction" in result.output


def test_train_refuses_lora_target_modules_the_model_lacks(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    lora = {"lora": {"r": 2, "target_modules": ["nope_proj"]}}
    config = small_config(tmp_path, tiny_model_dir, training=lora)
    result = cli("train", config, "--output", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert "training.lora.target_modules ['nope_proj']: no layer of model" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


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
