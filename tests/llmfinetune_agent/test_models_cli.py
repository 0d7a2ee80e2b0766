"""`finetune-agent merge MERGE_CONFIG` and `models list|show`: a merge of two registered full
models (mergekit), gated on a held-out file against its parents, registered with its lineage;
bad merge configs and unknown sources are refused with exit code 2 and the field named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from llmfinetune_agent.cli import app
from llmfinetune_agent.run_store import RunStore
from llmfinetune_agent.settings import Settings

ROWS = [
    {
        "messages": [
            {"role": "user", "content": f"{n} lives in {c}."},
            {"role": "assistant", "content": c},
        ]
    }
    for n, c in [("Anna", "Oslo"), ("Tom", "Rome"), ("Sara", "Lima")]
]


@pytest.fixture
def registered(tiny_model_dir: Path, tmp_path: Path) -> dict[str, str]:
    """Two full models of one architecture (the tiny Llama and a nudged copy), registered."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    store = RunStore(Settings.from_env().database_url)
    ids = {}
    for name, scale in (("first", 0.0), ("second", 0.02)):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        torch.manual_seed(1)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(torch.randn_like(parameter) * scale)
        model.save_pretrained(tmp_path / name)
        AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tmp_path / name)
        record = store.register_model(
            run_id=None,
            path=str(tmp_path / name),
            base_model="builtin:tiny-llama",
            lineage={"name": name, "relation": "finetune", "alias": "candidate"},
        )
        ids[name] = record.id
    return ids


def test_merge_registers_the_merge_with_its_parents(registered, tmp_path: Path) -> None:
    (tmp_path / "held_out.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    config = {
        "method": "linear",
        "sources": [f"model:{registered['first']}", f"model:{registered['second']}"],
        "weights": [0.5, 0.5],
        "held_out": "held_out.jsonl",
        "score": "loss",
        "min_gain": -1.0,
        "output": "merged",
        "evaluation": {"metrics": ["rougeL"], "max_new_tokens": 4},
    }
    (tmp_path / "merge.json").write_text(json.dumps(config))
    runner = CliRunner()
    result = runner.invoke(app, ["merge", str(tmp_path / "merge.json")])
    assert result.exit_code == 0, result.output
    assert "held-out score" in result.output and "verdict: pass" in result.output
    assert (tmp_path / "merged" / "model.safetensors").is_file()
    card = (tmp_path / "merged" / "README.md").read_text()
    assert "base_model_relation: merge" in card
    exact = json.loads((tmp_path / "merged" / "post_training_config.json").read_text())
    assert exact["method"] == "linear" and exact["weights"] == [0.5, 0.5]

    listed = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    merge = next(m for m in listed if m["relation"] == "merge")
    assert merge["parent_ids"] == [registered["first"], registered["second"]]
    assert merge["operation"] == "linear" and merge["verdict"] == "pass"
    assert merge["parameters"]["mergekit_config"]["merge_method"] == "linear"
    assert set(merge["evaluation"]["parent_scores"]) == set(config["sources"])
    shown = runner.invoke(app, ["models", "show", merge["id"]])
    assert shown.exit_code == 0
    assert (
        f"merge:linear ({merge['id']}, merge) <- first ({registered['first']}, finetune)"
        in shown.stdout
    )
    table = runner.invoke(app, ["models", "list"]).stdout
    assert "merge:linear" in table and "3 model(s)" in table
    as_json = json.loads(runner.invoke(app, ["models", "show", merge["id"], "--json"]).stdout)
    assert [m["id"] for m in as_json["lineage"]] == [merge["id"], registered["first"]]


def test_bad_merge_configs_and_sources_are_refused(registered, tmp_path: Path) -> None:
    runner = CliRunner()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"method": "slerp", "sources": ["a"], "output": "o", "wieghts": [1]}))
    result = runner.invoke(app, ["merge", str(bad)])
    assert result.exit_code == 2
    assert "wieghts: unknown key 'wieghts' (hint: did you mean 'weights'?)" in result.output
    bad.write_text(json.dumps({"method": "slerp", "sources": ["a"], "output": "o"}))
    result = runner.invoke(app, ["merge", str(bad)])
    assert result.exit_code == 2 and "slerp merges exactly 2 sources, got 1" in result.output
    unknown = tmp_path / "unknown.json"
    unknown.write_text(
        json.dumps(
            {
                "method": "linear",
                "sources": [f"model:{registered['first']}", "model:nope"],
                "output": "o",
            }
        )
    )
    result = runner.invoke(app, ["merge", str(unknown)])
    assert result.exit_code == 2 and "no registered model with id 'nope'" in result.output
    result = runner.invoke(app, ["models", "show", "nope"])
    assert result.exit_code == 2 and "no model with id 'nope'" in result.output
    broken = tmp_path / "broken.json"
    broken.write_text('{"method": ')
    result = runner.invoke(app, ["merge", str(broken)])
    assert result.exit_code == 2 and "invalid JSON at line 1" in result.output


def test_models_of_an_unknown_run_are_refused_not_listed_as_none() -> None:
    """`--run` with a mistyped id (or a model's id) listed "0 model(s)" and ended 0."""
    refused = CliRunner().invoke(app, ["models", "list", "--run", "nope"])
    assert refused.exit_code == 2
    assert refused.stderr == "error: --run: no run with id 'nope' (see finetune-agent runs list)\n"
