"""The AutoTrain project written from a run's training config: the YAML AutoTrain reads, the
data file in its columns, and the base model in a form transformers 4.48 loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from models import load_tokenizer
from phases.training.autotrain.model_view import compatible_model_dir
from phases.training.autotrain.project import write_project
from phases.training.config import parse_training_config
from phases.training.data import load_training_data
from tests.phases.training.training_test_data import (
    chat_rows,
    preference_rows,
    prompt_completion_rows,
    write_jsonl,
)


def _project(tmp_path: Path, model_dir: Path, training: dict, rows: list[dict]) -> dict:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = parse_training_config({"backend": "autotrain", **training})
    data = load_training_data(write_jsonl(tmp_path / "train.jsonl", rows), config.method)
    project = write_project(
        config,
        data=data,
        tokenizer=load_tokenizer(str(model_dir)),
        model_path=str(model_dir),
        work_dir=tmp_path / "work",
        max_length=96,
    )
    written = yaml.safe_load(project.config_path.read_text())
    assert written == project.settings
    rows_written = [json.loads(line) for line in project.data_path.read_text().splitlines()]
    return {"settings": written, "rows": rows_written, "project": project}


def test_lora_sft_yaml_is_local_cpu_safe_and_takes_every_setting_from_the_run(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from phases.training import hardware

    # A CPU without bfloat16 instructions: the project trains in float32.
    monkeypatch.setattr(hardware, "native_bf16", lambda cpuinfo=None: False)
    training = {
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
        "epochs": 2,
        "learning_rate": 0.003,
        "batch_size": 4,
        "gradient_accumulation_steps": 2,
        "lr_scheduler": "cosine",
        "warmup_ratio": 0.1,
        "seed": 7,
        "logging_steps": 1,
        "autotrain_params": {"optimizer": "adamw_torch"},
    }
    made = _project(tmp_path, tiny_model_dir, training, prompt_completion_rows(6))
    settings, params = made["settings"], made["settings"]["params"]

    assert settings["task"] == "llm-sft" and settings["backend"] == "local"
    assert settings["project_name"] == "model" and settings["log"] == "none"
    assert settings["data"]["path"] == str(made["project"].data_path.parent)
    assert settings["data"]["valid_split"] is None and settings["data"]["chat_template"] is None
    assert settings["data"]["column_mapping"] == {"text_column": "text"}
    assert params["quantization"] is None and params["mixed_precision"] is None
    assert params["peft"] is True
    assert (params["lora_r"], params["lora_alpha"], params["lora_dropout"]) == (4, 8, 0.0)
    assert params["target_modules"] == "q_proj,v_proj"
    assert (params["lr"], params["epochs"], params["batch_size"]) == (0.003, 2, 4)
    assert (params["gradient_accumulation"], params["scheduler"]) == (2, "cosine")
    assert (params["seed"], params["logging_steps"], params["block_size"]) == (7, 1, 96)
    assert params["disable_gradient_checkpointing"] is True
    assert params["optimizer"] == "adamw_torch"
    # The base model is the 4.48-readable view, not the original folder.
    assert settings["base_model"] == str(tmp_path / "work" / "base-model")


def test_sft_text_is_what_the_evaluator_prompts_plus_the_answer(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    tokenizer = load_tokenizer(str(tiny_model_dir))
    chats = _project(tmp_path / "a", tiny_model_dir, {}, chat_rows(2))["rows"]
    pairs = _project(tmp_path / "b", tiny_model_dir, {}, prompt_completion_rows(2))["rows"]

    assert chats[0] == {
        "text": "<|system|>\nAnswer with the city.</s>\n<|user|>\nWhere does Alice live?</s>\n"
        "<|assistant|>\nParis</s>\n"
    }
    first = prompt_completion_rows(1)[0]
    assert pairs[0] == {"text": first["prompt"] + first["completion"] + tokenizer.eos_token}


def test_values_stay_text_in_the_data_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A .json file (not .jsonl): AutoTrain reads it with `datasets`, not through pandas."""
    rows = [{"prompt": "Code:", "completion": "007"}, {"prompt": "Year:", "completion": "1e3"}]
    made = _project(tmp_path, tiny_model_dir, {}, rows)
    assert made["project"].data_path.name == "train.json"
    assert [row["text"] for row in made["rows"]] == ["Code:007</s>", "Year:1e3</s>"]


def test_dpo_and_reward_columns(tiny_model_dir: Path, tmp_path: Path) -> None:
    row = preference_rows(1)[0]
    dpo = _project(tmp_path / "dpo", tiny_model_dir, {"method": "dpo", "beta": 0.2}, [row])
    reward = _project(tmp_path / "reward", tiny_model_dir, {"method": "reward"}, [row])

    assert dpo["settings"]["task"] == "llm-dpo"
    assert dpo["settings"]["params"]["dpo_beta"] == 0.2
    assert dpo["settings"]["data"]["column_mapping"] == {
        "text_column": "chosen",
        "rejected_text_column": "rejected",
        "prompt_text_column": "prompt",
    }
    assert dpo["rows"] == [{k: row[k] for k in ("prompt", "chosen", "rejected")}]
    assert reward["settings"]["task"] == "llm-reward"
    assert reward["rows"] == [
        {
            "chosen": row["prompt"] + row["chosen"] + "</s>",
            "rejected": row["prompt"] + row["rejected"] + "</s>",
        }
    ]


def test_full_fine_tuning_sets_no_lora(tiny_model_dir: Path, tmp_path: Path) -> None:
    params = _project(tmp_path, tiny_model_dir, {"lora": None}, prompt_completion_rows(2))[
        "settings"
    ]["params"]
    assert params["peft"] is False and "lora_r" not in params


def test_bfloat16_precision_asks_autotrain_for_bf16(tiny_model_dir: Path, tmp_path: Path) -> None:
    training = {"precision": "bfloat16"}
    made = _project(tmp_path, tiny_model_dir, training, prompt_completion_rows(2))
    assert made["settings"]["params"]["mixed_precision"] == "bf16"


def test_model_view_is_readable_by_transformers_4_48_and_leaves_the_model_alone(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    before = {p.name: p.read_bytes() for p in tiny_model_dir.iterdir() if p.is_file()}
    tokenizer = load_tokenizer(str(tiny_model_dir))
    view = Path(compatible_model_dir(str(tiny_model_dir), tmp_path / "view", tokenizer=tokenizer))

    config = json.loads((view / "config.json").read_text())
    assert config["rope_theta"] == 10000.0 and "rope_parameters" not in config
    assert config["torch_dtype"] == "float32" and "dtype" not in config
    settings = json.loads((view / "tokenizer_config.json").read_text())
    assert settings["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert settings["additional_special_tokens"] == ["<|system|>", "<|user|>", "<|assistant|>"]
    assert settings["chat_template"] == tokenizer.chat_template
    assert (view / "model.safetensors").is_symlink()
    assert (view / "model.safetensors").resolve() == (tiny_model_dir / "model.safetensors")
    after = {p.name: p.read_bytes() for p in tiny_model_dir.iterdir() if p.is_file()}
    assert after == before


def test_a_hub_id_is_passed_through(tmp_path: Path) -> None:
    assert compatible_model_dir("org/model", tmp_path / "view") == "org/model"
    assert not (tmp_path / "view").exists()


@pytest.mark.parametrize(
    "training, field, words",
    [
        ({"method": "dpo", "max_steps": 3}, "training", "has no max_steps"),
        ({"epochs": 1.5}, "training", "trains whole epochs"),
        ({"num_processes": 2}, "training", "trains in one process"),
        ({"autotrain_params": {"lr": 0.1}}, "training.autotrain_params", "training.learning_rate"),
        ({"autotrain_params": {"quantization": "int4"}}, "training.autotrain_params", "itself"),
        ({"autotrain_params": {"paddng": "left"}}, "training.autotrain_params", "'padding'"),
    ],
)
def test_settings_autotrain_cannot_take_are_refused_naming_the_field(
    training: dict, field: str, words: str
) -> None:
    from llmfinetune_agent.config import ConfigError, parse_run_config

    config = {"data": {"train": "x.jsonl"}, "training": {"backend": "autotrain", **training}}
    with pytest.raises(ConfigError) as caught:
        parse_run_config(config, source="test")
    issues = [(issue.path, str(issue)) for issue in caught.value.issues]
    assert any(path == field and words in text for path, text in issues), issues


def test_autotrain_params_without_the_autotrain_backend_are_refused() -> None:
    from llmfinetune_agent.config import ConfigError, parse_run_config

    config = {"data": {"train": "x.jsonl"}, "training": {"autotrain_params": {"padding": "left"}}}
    with pytest.raises(ConfigError, match="read only with backend 'autotrain'"):
        parse_run_config(config, source="test")
