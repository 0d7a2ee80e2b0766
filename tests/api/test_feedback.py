"""Feedback over REST: a generated answer has an id, users rate it or give a better one, and
`feedback export` writes data that `data inspect` detects and a DPO run trains on."""

from __future__ import annotations

import json
import subprocess
import sys

from fastapi.testclient import TestClient

from llmfinetune_agent.feedback_store import FeedbackStore

PROMPTS = [f"{name} is {age} years old. JSON:" for name, age in [("Ann", 31), ("Bo", 40)]]


def _generate(client: TestClient, model_id: str, prompt: str, seed: int) -> dict:
    body = {"prompt": prompt, "max_new_tokens": 6, "do_sample": True, "seed": seed}
    response = client.post(f"/models/{model_id}/generate", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _feedback(client: TestClient, generation_id: str, **body) -> dict:
    response = client.post(f"/generations/{generation_id}/feedback", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llmfinetune_agent.cli", *args], capture_output=True, text=True
    )


def _rate_answers(client: TestClient, model_id: str) -> list[dict]:
    """Per prompt: a better answer for one generation; thumbs up and down for two more."""
    generated = []
    for i, prompt in enumerate(PROMPTS):
        better, up, down = (
            _generate(client, model_id, prompt, seed) for seed in (i, 10 + i, 20 + i)
        )
        name = prompt.split()[0]
        _feedback(client, better["generation_id"], better=f'{{"name": "{name}"}}', comment="JSON")
        _feedback(client, up["generation_id"], rating="up")
        _feedback(client, down["generation_id"], rating="down")
        generated += [better, up, down]
    return generated


def test_generations_are_recorded_and_feedback_needs_a_known_id(client_and_model, settings):
    client, model_id = client_and_model
    answer = _generate(client, model_id, PROMPTS[0], seed=1)
    stored = FeedbackStore(settings.database_url).get_interaction(
        interaction_id=answer["generation_id"]
    )
    assert (stored["model_id"], stored["prompt"], stored["output"]) == (
        model_id,
        PROMPTS[0],
        answer["text"],
    )
    saved = _feedback(client, answer["generation_id"], rating="down", comment="wrong age")
    assert (saved["rating"], saved["comment"], saved["better"]) == ("down", "wrong age", None)
    missing = client.post("/generations/0123/feedback", json={"rating": "up"})
    assert missing.status_code == 404 and "no generation with id '0123'" in missing.text
    empty = client.post(f"/generations/{answer['generation_id']}/feedback", json={})
    assert empty.status_code == 422 and "at least one of 'rating', 'better'" in empty.text
    wrong = client.post(f"/generations/{answer['generation_id']}/feedback", json={"rating": "meh"})
    assert wrong.status_code == 422
    blank = client.post(f"/generations/{answer['generation_id']}/feedback", json={"better": "  "})
    assert blank.status_code == 422 and blank.json()["detail"][0]["loc"] == ["body", "better"]


def test_feedback_exports_as_preference_and_kto_data_the_data_phase_detects(
    client_and_model, tmp_path
):
    client, model_id = client_and_model
    generated = _rate_answers(client, model_id)
    pairs, thumbs = tmp_path / "pairs.jsonl", tmp_path / "thumbs.jsonl"
    exported = _cli("feedback", "export", model_id, str(pairs), "--as", "preference")
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    # A better answer over the generated one, and the thumbs-up answer over the thumbs-down one.
    assert {
        "prompt": PROMPTS[0],
        "chosen": '{"name": "Ann"}',
        "rejected": generated[0]["text"],
    } in rows
    assert {
        "prompt": PROMPTS[1],
        "chosen": generated[4]["text"],
        "rejected": generated[5]["text"],
    } in rows
    inspected = _cli("data", "inspect", str(pairs))
    assert "normalized as preference" in inspected.stdout, inspected.stderr
    assert _cli("feedback", "export", model_id, str(thumbs), "--as", "kto").returncode == 0
    kto = [json.loads(line) for line in thumbs.read_text().splitlines()]
    assert sorted(r["label"] for r in kto) == [False] * 4 + [True] * 4
    assert "normalized as kto" in _cli("data", "inspect", str(thumbs)).stdout
    bad = _cli("feedback", "export", "no-such-model", str(tmp_path / "x.jsonl"))
    assert (
        bad.returncode != 0
        and "No preference data from feedback on model 'no-such-model'" in bad.stderr
    )


def test_a_dpo_run_trains_on_exported_feedback(
    client_and_model, settings, tiny_model_dir, tmp_path
):
    from phases.data import TRAIN_FILE, DataConfig, prepare_data
    from phases.training import DPOTraining, train

    client, model_id = client_and_model
    _rate_answers(client, model_id)
    rows = FeedbackStore(settings.database_url).feedback_rows(model_id=model_id, kind="preference")
    source = tmp_path / "feedback.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prepared = prepare_data(
        DataConfig(train=str(source), eval_fraction=0.0), output_dir=tmp_path / "data"
    )
    assert prepared.kind == "preference"
    result = train(
        DPOTraining(max_steps=2, batch_size=2, learning_rate=1e-3),
        model=str(tiny_model_dir),
        train_path=tmp_path / "data" / TRAIN_FILE,
        eval_path=None,
        output_dir=tmp_path / "dpo",
    )
    assert result.status == "completed" and result.train_loss is not None
