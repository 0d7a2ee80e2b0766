"""A model folder with a broken config.json or truncated weights is bad input: the loaders raise
`ModelLoadError` naming the file, the CLI exits 2 with that message, and a run fails as
"bad input" — never a transformers or safetensors traceback."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmfinetune_agent.cli import app
from models.inspection import count_parameters
from models.loading import ModelLoadError, load_model, load_model_and_tokenizer

REPO = Path(__file__).resolve().parents[2]
ROWS = REPO / "configs" / "data" / "quickstart" / "train.jsonl"

# What each broken folder's error must say, after "<folder>/": the file and the reason.
EXPECTED = {
    "config-list": r"config\.json: it holds a JSON list, not an object of model settings",
    "config-bad-field": (
        r"config\.json: Validation error for field 'hidden_size': .*expected int, got str"
    ),
    "truncated-weights": r"model\.safetensors: .*invalid header length.*truncated or corrupt",
}


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, Path]:
    """Copies of the tiny Llama, each broken in one way that a user can cause."""
    root = tmp_path_factory.mktemp("broken-models")
    folders = {name: root / name for name in EXPECTED}
    for folder in folders.values():
        shutil.copytree(tiny_model_dir, folder)
    (folders["config-list"] / "config.json").write_text("[]")
    bad_field = {"model_type": "llama", "hidden_size": "abc"}
    (folders["config-bad-field"] / "config.json").write_text(json.dumps(bad_field))
    weights = folders["truncated-weights"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return folders


def message_pattern(folder: Path, name: str) -> str:
    return f"cannot load model (weights )?{re.escape(str(folder))}/{EXPECTED[name]}"


def run_config(tmp_path: Path, **model: str) -> Path:
    """The quickstart config on 20 rows, one epoch, no debugger: fails or passes fast."""
    config = json.loads((REPO / "configs" / "quickstart-tiny.json").read_text())
    (tmp_path / "rows.jsonl").write_text("".join(ROWS.read_text().splitlines(True)[:20]))
    config["data"]["train"] = str(tmp_path / "rows.jsonl")
    config["model"].update(model)
    config["training"].update({"epochs": 1})
    config["debugger"]["enabled"] = False
    config["hitl"]["training_checkpoints"] = []
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.mark.parametrize("name", list(EXPECTED))
def test_loading_a_broken_folder_names_the_file(broken: dict[str, Path], name: str) -> None:
    with pytest.raises(ModelLoadError, match=message_pattern(broken[name], name)):
        load_model_and_tokenizer(str(broken[name]))


@pytest.mark.parametrize("name", ["config-list", "config-bad-field"])
def test_counting_parameters_of_a_broken_config_names_the_file(
    broken: dict[str, Path], name: str
) -> None:
    with pytest.raises(ModelLoadError, match=message_pattern(broken[name], name)):
        count_parameters(str(broken[name]))


def test_truncated_adapter_weights_name_the_file(tmp_path: Path, tiny_model_dir: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    adapter = tmp_path / "adapter"
    get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(adapter)
    settings = json.loads((adapter / "adapter_config.json").read_text())
    settings["base_model_name_or_path"] = str(tiny_model_dir)
    (adapter / "adapter_config.json").write_text(json.dumps(settings))
    weights = adapter / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match=f"cannot load model weights {weights}: "):
        load_model(str(adapter))


def test_a_folder_without_tokenizer_files_names_them(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Not transformers' advice to install sentencepiece or tiktoken, which would not help."""
    folder = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_model_dir, folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    result = cli("train", str(run_config(tmp_path, name_or_path=str(folder))))
    assert result.exit_code == 2, result.output
    assert (
        f"error: cannot load the tokenizer of model {folder}: the directory has none of "
        "tokenizer.json, tokenizer_config.json, tokenizer.model, vocab.json" in result.output
    )
    assert "sentencepiece" not in result.output


@pytest.mark.parametrize("name", list(EXPECTED))
def test_evaluate_refuses_a_broken_folder(
    broken: dict[str, Path], name: str, tmp_path: Path
) -> None:
    config = run_config(tmp_path)
    result = cli("evaluate", str(config), "--model", str(broken[name]), "-o", str(tmp_path / "o"))
    assert result.exit_code == 2, result.output
    assert re.search("^error: " + message_pattern(broken[name], name), result.output, re.M)


def test_train_and_compare_refuse_a_broken_folder(broken: dict[str, Path], tmp_path: Path) -> None:
    folder = broken["config-list"]
    result = cli("train", str(run_config(tmp_path, name_or_path=str(folder))))
    assert result.exit_code == 2, result.output
    assert f"error: cannot load model {folder}/config.json: it holds a JSON list" in result.output

    folder = broken["truncated-weights"]
    result = cli("compare", "builtin:tiny-llama", str(folder), "--data", str(ROWS))
    assert result.exit_code == 2, result.output
    assert f"cannot load model weights {folder}/model.safetensors: " in result.output


def test_a_run_on_a_broken_folder_fails_as_bad_input(
    broken: dict[str, Path], tmp_path: Path
) -> None:
    folder = broken["config-bad-field"]
    result = cli("run", str(run_config(tmp_path, name_or_path=str(folder))), "--auto-approve")
    assert result.exit_code == 2, result.output
    reason = f"reason: bad input: cannot load model {folder}/config.json: Validation error"
    assert reason in result.output and "error.log" not in result.output


def test_the_plan_preview_of_an_edit_to_a_broken_folder_says_why(
    broken: dict[str, Path], tmp_path: Path
) -> None:
    from llmfinetune_agent.cli.plan_preview import revised_estimate

    config = json.loads(run_config(tmp_path).read_text())
    folder = broken["config-bad-field"]
    edit = {"model": {"name_or_path": str(folder)}}
    _, note = revised_estimate(config, edit, {"data_report": {"train_rows": 18}})
    assert note.startswith(
        "time and memory unknown until the model loads "
        f"(cannot load model {folder}/config.json: Validation error for field 'hidden_size'"
    )
