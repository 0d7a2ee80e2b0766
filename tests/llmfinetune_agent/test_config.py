"""RunConfig validation, error reporting, patches, and the `config` CLI commands."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from llmfinetune_agent.config import (
    ConfigError,
    RunConfig,
    apply_patch,
    config_json_schema,
    load_run_config,
    parse_run_config,
)

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("*.json"))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llmfinetune_agent.cli", *args], capture_output=True, text=True
    )


def _issues(data: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_run_config(data)
    return {i.path: f"{i.message} {i.hint}" for i in info.value.issues}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_validates_and_its_data_exists(path: Path) -> None:
    config = load_run_config(path)
    assert Path(config.data.train).exists(), f"{path.name}: {config.data.train} missing"


def test_configs_folder_has_the_promised_examples() -> None:
    methods = {load_run_config(p).training.method for p in CONFIGS}
    loras = [p for p in CONFIGS if load_run_config(p).training.lora is not None]
    assert (REPO / "configs" / "quickstart.json") in CONFIGS
    assert {"sft", "dpo"} <= methods and loras


def test_defaults_fill_a_minimal_config() -> None:
    config = parse_run_config({"data": {"train": "d.jsonl"}})
    assert config.model.name_or_path == "builtin:tiny-llama"
    assert config.training.method == "sft" and config.training.lora is None
    assert config.hitl.approve_plan and config.hitl.training_checkpoints == []


def test_unknown_key_names_the_closest_valid_one() -> None:
    issues = _issues({"data": {"train": "d.jsonl"}, "training": {"learning_rte": 0.1}})
    assert "learning_rte" in issues["training.learning_rte"]
    assert "learning_rate" in issues["training.learning_rte"]


def test_three_mistakes_are_reported_together() -> None:
    issues = _issues(
        {
            "data": {"train": "d.jsonl", "eval_fraction": 1.5},
            "training": {"epochs": -1},
            "hitl": {"training_checkpoints": [0.5, 1.0]},
        }
    )
    assert set(issues) == {"data.eval_fraction", "training.epochs", "hitl.training_checkpoints"}


def test_a_boolean_in_a_numbers_place_is_refused_not_read_as_one() -> None:
    issues = _issues(
        {
            "data": {"train": "d.jsonl", "max_length": True},
            "training": {"batch_size": True, "lora": {"r": True, "alpha": 16}},
            "evaluation": {"max_new_tokens": True, "max_examples": 4},
        }
    )
    assert issues == {
        "data.max_length": "expected a number, got true ",
        "training.batch_size": "expected a number, got true ",
        "training.lora.r": "expected a number, got true ",
        "evaluation.max_new_tokens": "expected a number, got true ",
    }
    # false where 0 is out of bounds says so, found with the config's other mistakes.
    assert _issues({"data": {"train": "d.jsonl"}, "training": {"epochs": False}}) == {
        "training.epochs": "must be greater than 0 got False"
    }
    # Numbers written as text still read as numbers, and flags stay flags.
    config = parse_run_config(
        {"data": {"train": "d.jsonl"}, "training": {"batch_size": "8"}, "hitl": {"approve_plan": 0}}
    )
    assert (config.training.batch_size, config.hitl.approve_plan) == (8, False)


def test_dpo_needs_preference_data() -> None:
    issues = _issues(
        {"data": {"train": "d.jsonl", "format": "alpaca"}, "training": {"method": "dpo"}}
    )
    assert "preference" in " ".join(issues.values())


def test_sft_refuses_preference_data_and_names_the_methods_that_take_it() -> None:
    issues = _issues({"data": {"train": "d.jsonl", "format": "preference"}})
    assert "use method 'dpo' or 'reward'" in " ".join(issues.values())


def test_a_key_of_another_method_says_which_method_it_belongs_to() -> None:
    issues = _issues({"data": {"train": "d.jsonl"}, "training": {"beta": 0.2, "packing": "on"}})
    assert list(issues) == ["training.beta"]  # the path as written, without pydantic's tag
    assert issues["training.beta"] == (
        "unknown key 'beta' for method 'sft' "
        "'beta' is a setting of methods dpo, kto, grpo, rloo only: set method to 'dpo' or "
        "'kto' or 'grpo' or 'rloo', or remove it"
    )
    reward = _issues(
        {"data": {"train": "d.jsonl"}, "training": {"method": "reward", "packing": "on"}}
    )
    assert "method 'sft' only" in reward["training.packing"]


def test_unknown_method_lists_the_methods() -> None:
    issues = _issues({"data": {"train": "d.jsonl"}, "training": {"method": "ppo"}})
    assert issues == {
        "training.method": "unknown method 'ppo' choose one of 'sft', 'dpo', 'reward', 'kto', "
        "'grpo', 'rloo', 'prompt'; for PPO-style RLHF use 'grpo' or 'rloo' with a reward_model reward"
    }


def test_each_method_has_only_its_own_fields() -> None:
    config = parse_run_config(
        {"data": {"train": "d", "format": "preference"}, "training": {"method": "dpo"}}
    )
    dumped = config.model_dump(mode="json")["training"]
    assert dumped["method"] == "dpo" and dumped["beta"] == 0.1 and "packing" not in dumped
    sft = parse_run_config({"data": {"train": "d"}}).model_dump(mode="json")["training"]
    assert sft["packing"] == "auto" and "beta" not in sft


def test_a_patch_that_switches_method_drops_the_old_methods_fields() -> None:
    config = parse_run_config(
        {"data": {"train": "d"}, "training": {"packing": "on", "epochs": 2, "lora": {"r": 4}}}
    )
    patch = {"training": {"method": "dpo", "beta": 0.3}, "data": {"format": "preference"}}
    dpo = apply_patch(config, patch)
    assert (dpo.training.method, dpo.training.beta) == ("dpo", 0.3)
    assert (dpo.training.epochs, dpo.training.lora.r) == (2, 4)  # shared settings are kept
    back = apply_patch(dpo, {"training": {"method": "sft"}, "data": {"format": "auto"}})
    assert back.training.packing == "auto" and "beta" not in back.model_dump()["training"]
    with pytest.raises(ConfigError, match="'packing' is a setting of method 'sft' only"):
        apply_patch(config, {**patch, "training": {"method": "dpo", "packing": "on"}})


def test_threshold_must_name_a_computed_metric() -> None:
    data = {
        "data": {"train": "d"},
        "evaluation": {"metrics": ["rougeL"], "thresholds": {"bleu": 1}},
    }
    assert "bleu" in " ".join(_issues(data).values())


def test_an_unknown_key_in_a_list_item_gets_the_items_keys() -> None:
    rewards = [{"function": "json_valid", "bogus": 1}, {"function": "json_valid", "weigth": 2}]
    data = {"data": {"train": "d"}, "training": {"method": "grpo", "rewards": rewards}}
    issues = _issues(data)
    assert "valid keys here: function, weight," in issues["training.rewards.0.bogus"]
    assert "did you mean 'weight'?" in issues["training.rewards.1.weigth"]


def test_unknown_metric_gets_a_suggestion() -> None:
    data = {"data": {"train": "d"}, "evaluation": {"metrics": ["rouge_l"]}}
    assert "did you mean 'rougeL'" in " ".join(_issues(data).values())


def test_checkpoint_fractions_are_sorted() -> None:
    config = parse_run_config(
        {"data": {"train": "d"}, "hitl": {"training_checkpoints": [0.75, 0.25]}}
    )
    assert config.hitl.training_checkpoints == [0.25, 0.75]


def test_relative_data_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    path = tmp_path / "cfg" / "run.json"
    path.write_text(json.dumps({"data": {"train": "data/train.csv"}}))
    assert load_run_config(path).data.train == str(tmp_path / "cfg" / "data" / "train.csv")


def test_a_config_that_never_ends_is_refused_and_a_piped_one_is_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holds more than 16 MiB; a run config is a few KB"):
        load_run_config("/dev/zero")
    pipe = tmp_path / "config.json"
    os.mkfifo(pipe)  # as `finetune-agent run <(generate-config)` hands it over
    text = json.dumps({"data": {"train": "d.jsonl"}})
    writer = threading.Thread(target=lambda: pipe.write_text(text), daemon=True)
    writer.start()
    assert load_run_config(pipe).data.train == str(tmp_path / "d.jsonl")
    writer.join(timeout=10)


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "data": {"train": "x"},\n  oops\n}')
    with pytest.raises(ConfigError, match="line 3"):
        load_run_config(path)


def test_patch_is_merged_and_revalidated() -> None:
    config = parse_run_config({"data": {"train": "d"}, "training": {"lora": {"r": 4}}})
    patched = apply_patch(config, {"training": {"learning_rate": 1e-4}})
    assert patched.training.learning_rate == 1e-4 and patched.training.lora.r == 4
    with pytest.raises(ConfigError, match="training.learning_rate"):
        apply_patch(config, {"training": {"learning_rate": -1}})


def test_schema_describes_every_field() -> None:
    schema = config_json_schema()
    assert schema["additionalProperties"] is False
    for name, definition in schema["$defs"].items():
        for field, spec in definition.get("properties", {}).items():
            assert spec.get("description"), f"{name}.{field} has no description"
    assert RunConfig.model_fields["data"].description


def test_cli_validate_reports_every_error_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "data": {"train": "d", "eval_fraction": 2},
                "trainning": {},
                "hitl": {"training_checkpoints": [1.5]},
            }
        )
    )
    good = REPO / "configs" / "quickstart.json"
    result = _cli("config", "validate", str(good), str(bad))
    assert result.returncode == 2
    assert f"{good}: OK" in result.stdout
    for needle in ("data.eval_fraction", "did you mean 'training'", "hitl.training_checkpoints"):
        assert needle in result.stdout


def test_cli_schema_prints_json() -> None:
    result = _cli("config", "schema")
    assert result.returncode == 0
    assert "training" in json.loads(result.stdout)["properties"]


def test_an_unknown_builtin_model_is_refused_with_the_config() -> None:
    """It validated (REST 202, a gate edit accepted), then the run failed when it loaded it."""
    issues = _issues({"model": {"name_or_path": "builtin:nope"}, "data": {"train": "d.jsonl"}})
    assert issues["model"].startswith("unknown built-in model 'builtin:nope'; available: ")
    assert "builtin:smollm2-135m-instruct" in issues["model"]
