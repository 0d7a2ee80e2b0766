"""Answers served over REST are counted by `stats` and `GET /stats` (latency percentiles,
tokens, feedback), exported as `messages` rows that `data inspect` reads as chat data, and
`compare` scores two models on the same rows side by side; bad input is refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from llmfinetune_agent.cli import app as cli
from models.prompt_artifact import Exemplar, PromptArtifact, write_prompt_artifact

PROMPTS = ["Ana is 30.", "Bo is 41.", "Cy is 52."]


@pytest.fixture
def served(settings, tiny_model_dir, tmp_path):
    """Three answers of a registered model over REST, one rated up and one rated down."""
    with TestClient(create_app(settings, workers=False)) as client:
        store = client.app.state.service.store
        model_id = store.register_model(run_id=None, path=str(tiny_model_dir), base_model="t").id
        ids = []
        for seed, prompt in enumerate(PROMPTS):  # sampled: greedy, the tiny model writes "\n"s
            body = {"prompt": prompt, "max_new_tokens": 8, "do_sample": True, "seed": seed}
            response = client.post(f"/models/{model_id}/generate", json=body)
            assert response.status_code == 200, response.text
            ids.append(response.json()["generation_id"])
        for generation_id, rating in zip(ids, ["up", "down"], strict=False):
            client.post(f"/generations/{generation_id}/feedback", json={"rating": rating})
        yield client, model_id


def _cli(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_served_answers_show_in_stats(served) -> None:
    client, model_id = served
    stats = client.get("/stats").json()
    interactions = stats["interactions"]
    assert interactions["total"] == 3 and interactions["by_model"] == {model_id: 3}
    latency = interactions["latency_seconds"]
    assert latency["count"] == 3 and 0 < latency["p50"] <= latency["p90"] <= latency["max"]
    assert interactions["prompt_tokens"] > 0 and interactions["completion_tokens"] > 0
    assert stats["feedback"] == {"total": 2, "up": 1, "down": 1, "better_answers": 0, "comments": 0}
    printed = _cli("stats")
    assert printed.exit_code == 0, printed.output
    assert "interactions: 3 (api 3)" in printed.output
    assert "feedback: 2 (up 1, down 1" in printed.output
    assert json.loads(_cli("stats", "--json").output) == stats


def test_exported_interactions_read_back_as_chat_data(served, tmp_path: Path) -> None:
    _, model_id = served
    out = tmp_path / "interactions.jsonl"
    exported = _cli(
        "export", "interactions", str(out), "--model", model_id, "--since", "2000-01-01"
    )
    assert exported.exit_code == 0, exported.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["messages"][0] for r in rows] == [{"role": "user", "content": p} for p in PROMPTS]
    assert all(r["messages"][-1]["role"] == "assistant" for r in rows)
    inspected = _cli("data", "inspect", str(out))
    assert "normalized as chat" in inspected.output, inspected.output

    future = _cli("export", "interactions", str(out), "--since", "2999-01-01")
    assert future.exit_code == 2 and "No interactions since 2999-01-01" in future.output
    bad_date = _cli("export", "interactions", str(out), "--since", "last tuesday")
    assert bad_date.exit_code == 2 and "is not a date" in bad_date.output
    other = _cli("export", "interactions", str(out), "--model", "nope")
    assert other.exit_code == 2 and "of model 'nope'" in other.output


def test_feedback_export_to_a_place_it_cannot_write_is_refused(served, tmp_path: Path) -> None:
    _, model_id = served
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for out in (tmp_path, a_file / "x.jsonl", Path("/proc/x.jsonl")):
        refused = _cli("feedback", "export", model_id, "--as", "kto", str(out))
        assert refused.exit_code == 2, refused.output
        assert f"cannot write {out}: " in refused.output
    written = _cli("feedback", "export", model_id, "--as", "kto", str(tmp_path / "kto.jsonl"))
    assert written.exit_code == 0 and "Wrote 2 kto rows" in written.output, written.output


@pytest.mark.parametrize(
    "row",
    [
        lambda i: {"text": f"hello world {i}"},
        lambda i: {"prompt": f"q{i}", "chosen": "yes", "rejected": "no"},
    ],
    ids=["text", "preference"],
)
def test_compare_scores_two_plain_models_on_any_data(tiny_model_dir, tmp_path, row) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(row(i)) + "\n" for i in range(4)))
    model = str(tiny_model_dir)
    compared = _cli(
        "compare", model, model, "--data", str(rows), "--metrics", "perplexity", "--json"
    )
    assert compared.exit_code == 0, compared.output
    result = json.loads(compared.stdout)  # the JSON; progress bars, if any, go to stderr
    assert result["A"]["n_examples"] == 4
    assert 1.0 < result["A"]["metrics"]["perplexity"] == result["B"]["metrics"]["perplexity"]


def test_compare_names_its_own_options_in_an_evaluation_error(tiny_model_dir, tmp_path) -> None:
    rows = tmp_path / "text.jsonl"
    rows.write_text(
        "".join(json.dumps({"text": f"Row {i} of plain text."}) + "\n" for i in range(4))
    )
    model = str(tiny_model_dir)
    refused = _cli("compare", model, model, "--data", str(rows))  # rougeL needs references
    assert refused.exit_code == 2, refused.output
    assert f"--data {rows}: the eval set has no references" in refused.output
    assert "pass --metrics perplexity," in refused.output and "rows.jsonl" not in refused.output


def test_compare_prints_both_models_on_the_same_rows(served, tiny_model_dir, tmp_path) -> None:
    _, model_id = served
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(json.dumps({"prompt": p, "completion": f" {p.split()[0]}"}) + "\n" for p in PROMPTS)
    )
    prompt = write_prompt_artifact(
        PromptArtifact(
            model=str(tiny_model_dir),
            system_prompt="Reply in JSON.",
            exemplars=[Exemplar(input="Di is 9.", output="9")],
        ),
        tmp_path / "prompt.json",
    )
    compared = _cli(
        "compare",
        model_id,
        str(prompt),
        "--data",
        str(rows),
        "--metrics",
        "rougeL,exact_match",
        "--max-new-tokens",
        "4",
        "--json",
    )
    assert compared.exit_code == 0, compared.output
    result = json.loads(compared.stdout)  # the JSON; progress bars, if any, go to stderr
    assert result["A"]["n_examples"] == result["B"]["n_examples"] == 3
    assert set(result["A"]["metrics"]) == set(result["B"]["metrics"]) == {"rougeL", "exact_match"}
    for side in ("A", "B"):
        assert all(0.0 <= v <= 1.0 for v in result[side]["metrics"].values())
    table = _cli("compare", model_id, str(prompt), "--data", str(rows), "--max-new-tokens", "4")
    assert table.exit_code == 0 and "B - A" in table.output and "rougeL" in table.output

    missing = _cli("compare", model_id, "/no/such/prompt.json", "--data", str(rows))
    assert missing.exit_code == 2
    no_data = _cli("compare", model_id, model_id, "--data", str(tmp_path / "none.jsonl"))
    assert no_data.exit_code == 2 and "--data" in no_data.output
