"""Post-training through the run graph on the tiny Llama: after the accepted evaluation the
candidates are made and gated, the run waits at approve_release with the candidates table, a
candidate that misses its gate is rolled back with its reason (the champion stays the last one
that passed), and approving registers the released models with their lineage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmfinetune_agent.config import parse_run_config
from llmfinetune_agent.execution import InvalidDecision, open_service
from llmfinetune_agent.run_store import RunStore
from llmfinetune_agent.settings import Settings, default_database_url

DATA = Path(__file__).resolve().parents[2] / "configs" / "data" / "quickstart" / "train.jsonl"


def _config(model_dir: Path, post_training: dict[str, Any], **hitl: bool) -> dict[str, Any]:
    """Two training steps (the model only needs to exist), no gate but the release gate."""
    return {
        "name": "post-training-flow",
        "model": {"name_or_path": str(model_dir)},
        "data": {"train": str(DATA), "eval_fraction": 0.1, "max_length": 96},
        "training": {"method": "sft", "lora": None, "max_steps": 2, "batch_size": 4},
        "evaluation": {"metrics": ["rougeL"], "max_examples": 6, "max_new_tokens": 12},
        "post_training": post_training,
        "debugger": {"enabled": False},
        "hitl": {
            "approve_plan": False,
            "approve_data": False,
            "approve_evaluation": False,
            **hitl,
        },
    }


@pytest.fixture(scope="module")
def waiting_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A run with int8 then q4_k_m, whose 4-bit KL threshold is 0 (no 4-bit model reaches
    that), stopped at the release gate."""
    home = tmp_path_factory.mktemp("home")
    post_training = {"quantize": ["int8", "gguf:q4_k_m"], "gates": {"kl_4bit": 0.0}}
    config = parse_run_config(_config(tiny_model_dir, post_training))
    settings = Settings(home=home, database_url=default_database_url(home))
    with open_service(settings) as service:
        run = service.create_run(config)
        record = service.start(run.id)
        pending = service.pending_interrupts(run.id)
    return {"settings": settings, "run": record, "pending": pending}


def test_the_run_waits_at_approve_release_with_the_candidates_table(waiting_run) -> None:
    record, (pending,) = waiting_run["run"], waiting_run["pending"]
    assert record.status == "awaiting_approval"
    assert pending["kind"] == "approve_release"
    assert set(pending) >= {"id", "kind", "message", "details", "options"}
    rows = pending["details"]["candidates"]
    assert [r["name"] for r in rows] == ["tuned", "int8", "gguf:q4_k_m"]
    for row in rows[1:]:
        assert row["parent"] == 0 and row["relation"] == "quantized"
        assert row["bytes"] > 0 and row["bits_per_weight"] > 0 and row["tokens_per_second"] > 0
        assert 0 <= row["top1"] <= 1 and row["kl"] >= 0 and "rougeL" in row["metrics"]
    # int8 is smaller than the float model; the GGUF read back by transformers is smaller still
    assert rows[1]["bytes"] < rows[0]["bytes"] and rows[2]["bytes"] < rows[1]["bytes"]
    assert rows[1]["verdict"] == "pass" and rows[1]["alias"] == "champion"
    assert rows[2]["verdict"] == "fail" and rows[2]["alias"] == "rolled_back"
    assert rows[2]["reason"].startswith("KL ") and "> 0" in rows[2]["reason"]
    assert pending["details"]["champion"] == 1
    assert Path(rows[2]["path"]).suffix == ".gguf"
    card = (Path(rows[2]["path"]).parent / "README.md").read_text()
    assert "base_model_relation: quantized" in card and "model-index:" in card
    exact = json.loads((Path(rows[2]["path"]).parent / "post_training_config.json").read_text())
    assert exact["operation"] == "gguf:q4_k_m" and exact["gates"]["kl_4bit"] == 0.0


def test_a_failed_candidate_cannot_be_selected(waiting_run) -> None:
    with open_service(waiting_run["settings"]) as service:
        run_id = waiting_run["run"].id
        with pytest.raises(InvalidDecision, match=r"failed their gate.*KL"):
            service.resume(run_id, decision={"decision": "approve", "select": [2]})
        assert service.require(run_id).status == "awaiting_approval"


def test_approving_registers_the_champion_and_passing_candidates_with_lineage(waiting_run) -> None:
    settings = waiting_run["settings"]
    with open_service(settings) as service:
        record = service.resume(waiting_run["run"].id, decision={"decision": "approve"})
        state = service.state_values(record.id)
    assert record.status == "completed", record.error
    models = {m.name: m for m in RunStore(settings.database_url).list_models(run_id=record.id)}
    assert set(models) == {"tuned", "int8", "gguf:q4_k_m"}
    tuned, int8, q4 = models["tuned"], models["int8"], models["gguf:q4_k_m"]
    assert (tuned.relation, tuned.alias, tuned.parent_ids) == ("finetune", "candidate", [])
    assert (int8.relation, int8.alias, int8.parent_ids) == ("quantized", "champion", [tuned.id])
    assert (q4.alias, q4.verdict, q4.parent_ids) == ("rolled_back", "fail", [tuned.id])
    assert q4.verdict_reason.startswith("KL ") and q4.format == "gguf"
    assert int8.format == "safetensors" and int8.bytes > 0 and len(int8.sha256) == 64
    assert int8.evaluation["parent"] == tuned.id and "rougeL" in int8.evaluation["deltas"]
    assert int8.evaluation["kl"] <= 0.002 and int8.operation == "int8"
    assert state["final"]["model_id"] == int8.id
    decision = state["decisions"][-1]
    assert decision["gate"] == "approve_release" and decision["select"] == [0, 1]


def test_get_models_shows_the_lineage(waiting_run) -> None:
    """After the approval above: `GET /models` over HTTP lists each model with its lineage."""
    from fastapi.testclient import TestClient

    from api.main import create_app

    settings = waiting_run["settings"]
    with TestClient(create_app(settings, workers=False)) as client:
        response = client.get("/models")
        assert response.status_code == 200
        models = {m["name"]: m for m in response.json()["data"]}
        if "int8" not in models:
            pytest.skip("runs after the approval test")
        int8 = models["int8"]
        assert int8["parent_ids"] == [models["tuned"]["id"]] and int8["alias"] == "champion"
        assert int8["relation"] == "quantized" and int8["format"] == "safetensors"
        assert int8["evaluation"]["parent"] == models["tuned"]["id"] and int8["bytes"] > 0
        one = client.get(f"/models/{models['gguf:q4_k_m']['id']}").json()
        assert one["alias"] == "rolled_back" and one["verdict_reason"].startswith("KL ")
