"""Bounded config values: every number of a run config has a maximum, every float is finite,
and `config validate` and `POST /runs` refuse the rest naming the field and the bound."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from llmfinetune_agent.cli import app
from llmfinetune_agent.config import (
    ConfigError,
    config_json_schema,
    load_run_config,
    parse_run_config,
    read_config_json,
)
from llmfinetune_agent.settings import Settings

REPO = Path(__file__).resolve().parents[2]
PREFERENCE = {"format": "preference"}  # DPO's beta needs preference data

# (section, its values, the field's JSON path, the message, the hint) as the user reads them
OUT_OF_RANGE = [
    ("training", {"epochs": 1e18}, "training.epochs", "at most 1000", "1e+18"),
    ("training", {"batch_size": 10**12}, "training.batch_size", "at most 4096", "1000000000000"),
    ("training", {"save_steps": 10**19}, "training.save_steps", "at most 10000000", "1e+19"),
    ("training", {"max_steps": 10**30}, "training.max_steps", "at most 10000000", "1e+30"),
    ("training", {"eval_steps": 10**8}, "training.eval_steps", "at most 10000000", "100000000"),
    (
        "training",
        {"logging_steps": 2**63},
        "training.logging_steps",
        "at most 10000000",
        "9.22e+18",
    ),
    ("training", {"learning_rate": 1e308}, "training.learning_rate", "at most 10", "1e+308"),
    ("training", {"seed": 2**32}, "training.seed", "at most 4294967295", "4294967296"),
    ("training", {"seed": -1}, "training.seed", "at least 0", "-1"),
    ("training", {"lora": {"r": 10**6}}, "training.lora.r", "at most 16384", "1000000"),
    ("training", {"lora": {"alpha": 10**6}}, "training.lora.alpha", "at most 65536", "1000000"),
    (
        "training",
        {"gradient_accumulation_steps": 10**9},
        "training.gradient_accumulation_steps",
        "at most 65536",
        "1000000000",
    ),
    ("training", {"method": "dpo", "beta": 1e6}, "training.beta", "at most 100", "1000000"),
    ("training", {"num_processes": 0}, "training.num_processes", "at least 1", "0"),
    (
        "training",
        {"resources": {"gpus": 1000}},
        "training.resources.gpus",
        "at most 64",
        "1000",
    ),
    ("training", {"resources": {"cpus": 0}}, "training.resources.cpus", "greater than 0", "0"),
    ("data", {"max_length": 10**9}, "data.max_length", "at most 1048576", "1000000000"),
    ("data", {"seed": 2**64}, "data.seed", "at most 4294967295", "1.84e+19"),
    (
        "data_generation",
        {"num_examples": 10**12},
        "data_generation.num_examples",
        "at most 1000000",
        "1000000000000",
    ),
    (
        "data_generation",
        {"max_new_tokens": 10**7},
        "data_generation.max_new_tokens",
        "at most 1048576",
        "10000000",
    ),
    (
        "data_generation",
        {"temperature": 1e6},
        "data_generation.temperature",
        "at most 10",
        "1000000",
    ),
    ("knowledge", {"top_k": 10**6}, "knowledge.top_k", "at most 1000", "1000000"),
    ("knowledge", {"chunk_size": 10**9}, "knowledge.chunk_size", "at most 1000000", "1000000000"),
    (
        "evaluation",
        {"max_examples": 10**12},
        "evaluation.max_examples",
        "at most 10000000",
        "1000000000000",
    ),
    ("evaluation", {"batch_size": 10**5}, "evaluation.batch_size", "at most 4096", "100000"),
    ("debugger", {"max_iterations": 10**6}, "debugger.max_iterations", "at most 100", "1000000"),
]

NOT_FINITE = [
    ("training", {"learning_rate": float("inf")}, "training.learning_rate"),
    ("training", {"learning_rate": float("nan")}, "training.learning_rate"),
    ("training", {"epochs": float("inf")}, "training.epochs"),
    ("training", {"lora": {"dropout": float("nan")}}, "training.lora.dropout"),
    ("training", {"resources": {"memory_gb": float("inf")}}, "training.resources.memory_gb"),
    ("data", {"eval_fraction": float("nan")}, "data.eval_fraction"),
    ("data_generation", {"temperature": float("inf")}, "data_generation.temperature"),
    ("knowledge", {"embedding_weight": float("nan")}, "knowledge.embedding_weight"),
    ("evaluation", {"temperature": float("inf")}, "evaluation.temperature"),
]


def _config(section: str, values: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"train": "d.jsonl"}
    config: dict[str, Any] = {"data": data}
    if values.get("method") == "dpo":
        data.update(PREFERENCE)
    if section == "data":
        data.update(values)
    else:
        config[section] = values
    return config


def _issues(config: dict[str, Any]) -> dict[str, tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_run_config(config)
    return {issue.path: (issue.message, issue.hint) for issue in info.value.issues}


@pytest.mark.parametrize(
    ("section", "values", "path", "bound", "got"),
    OUT_OF_RANGE,
    ids=[f"{path}={json.dumps(values)[:40]}" for _, values, path, _, _ in OUT_OF_RANGE],
)
def test_an_out_of_range_number_is_refused_naming_the_field_and_the_bound(
    section: str, values: dict[str, Any], path: str, bound: str, got: str
) -> None:
    assert _issues(_config(section, values)) == {path: (f"must be {bound}", f"got {got}")}


@pytest.mark.parametrize(
    ("section", "values", "path"), NOT_FINITE, ids=[f"{p}={v}" for _, v, p in NOT_FINITE]
)
def test_infinity_and_nan_are_refused(section: str, values: dict[str, Any], path: str) -> None:
    issues = _issues(_config(section, values))
    message, hint = issues[path]
    assert message == "must be a finite number, not Infinity or NaN"
    assert hint in ("got inf", "got nan")


def test_a_value_at_its_bound_is_accepted() -> None:
    config = parse_run_config(
        {
            "data": {"train": "d", "seed": 2**32 - 1, "max_length": 1_048_576},
            "training": {"epochs": 1000, "max_steps": 10**7, "batch_size": 4096, "seed": 0},
            "debugger": {"max_iterations": 100},
        }
    )
    assert (config.training.epochs, config.training.max_steps) == (1000, 10**7)
    assert config.data.seed == 2**32 - 1


def test_the_schema_states_a_maximum_for_every_number() -> None:
    schema = config_json_schema()
    defs = schema["$defs"]
    assert defs["SFTTraining"]["properties"]["epochs"]["maximum"] == 1000
    assert defs["SFTTraining"]["properties"]["save_steps"]["maximum"] == 10**7
    assert defs["DataConfig"]["properties"]["seed"] == {
        **defs["DataConfig"]["properties"]["seed"],
        "minimum": 0,
        "maximum": 2**32 - 1,
    }
    unbounded = []
    for name, definition in defs.items():
        if name == "ThresholdRule":  # a metric's target: checked finite, any value may be asked
            continue
        for field, spec in definition.get("properties", {}).items():
            kinds = [spec, *spec.get("anyOf", [])]
            numeric = [k for k in kinds if k.get("type") in ("integer", "number")]
            if numeric and not any("maximum" in k or "exclusiveMaximum" in k for k in numeric):
                unbounded.append(f"{name}.{field}")
    assert unbounded == []


def _hostile_file(tmp_path: Path) -> Path:
    """A config as a user could type it: JSON's huge literals, Infinity and NaN."""
    path = tmp_path / "hostile.json"
    path.write_text(
        '{"data": {"train": "d.jsonl", "eval_fraction": NaN},\n'
        ' "training": {"epochs": 1e400, "batch_size": 1000000000000,\n'
        '  "save_steps": 10000000000000000000, "seed": 1000000000000000000000000000000,\n'
        '  "learning_rate": Infinity}}\n'
    )
    return path


EXPECTED = {
    "data.eval_fraction": "must be a finite number, not Infinity or NaN (hint: got nan)",
    "training.epochs": "must be a finite number, not Infinity or NaN (hint: got inf)",
    "training.batch_size": "must be at most 4096 (hint: got 1000000000000)",
    "training.save_steps": "must be at most 10000000 (hint: got 1e+19)",
    "training.seed": "must be at most 4294967295 (hint: got 1e+30)",
    "training.learning_rate": "must be a finite number, not Infinity or NaN (hint: got inf)",
}


def test_huge_json_numbers_are_refused_not_crashed_on(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_run_config(read_config_json(_hostile_file(tmp_path)))
    assert {str(i).split(": ", 1)[0]: str(i).split(": ", 1)[1] for i in info.value.issues} == (
        EXPECTED
    )


def test_config_validate_exits_2_naming_each_field_and_bound(tmp_path: Path) -> None:
    path = _hostile_file(tmp_path)
    result = CliRunner().invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}: INVALID (6 errors)" in result.output
    for field, text in EXPECTED.items():
        assert f"  - {field}: {text}\n" in result.output


def test_post_runs_answers_422_naming_the_field_and_the_bound(tmp_path: Path) -> None:
    config = json.loads((REPO / "configs" / "quickstart-tiny.json").read_text())
    config["data"]["train"] = str(REPO / "configs" / "data" / "quickstart" / "train.jsonl")
    # Sent as text, as a client may write them: 1e18, JSON's Infinity, a 31-digit integer.
    literals = {"epochs": "1e18", "learning_rate": "Infinity", "max_iterations": "1" + "0" * 30}
    config["training"].update(epochs="EPOCHS", learning_rate="LEARNING_RATE")
    config["debugger"]["max_iterations"] = "MAX_ITERATIONS"
    hostile = json.dumps(config)
    for key, literal in literals.items():
        hostile = hostile.replace(f'"{key.upper()}"', literal)
    settings = dataclasses.replace(Settings.from_env(), data_roots=[REPO / "configs" / "data"])
    with TestClient(create_app(settings, workers=False)) as client:
        answer = client.post("/runs", content=hostile, headers={"content-type": "application/json"})
        assert answer.status_code == 422, answer.text
        detail = {tuple(d["loc"]): (d["msg"], d["hint"]) for d in answer.json()["detail"]}
        assert detail == {
            ("body", "training", "epochs"): ("must be at most 1000", "got 1e+18"),
            ("body", "training", "learning_rate"): (
                "must be a finite number, not Infinity or NaN",
                "got inf",
            ),
            ("body", "debugger", "max_iterations"): ("must be at most 100", "got 1e+30"),
        }
        assert client.get("/runs").json()["count"] == 0  # nothing was queued


def test_a_number_too_long_to_read_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "long.json"
    path.write_text('{"data": {"train": "x"}, "training": {"epochs": ' + "9" * 5000 + "}}")
    with pytest.raises(ConfigError, match="more than 4300 digits"):
        load_run_config(path)
