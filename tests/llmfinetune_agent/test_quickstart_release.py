"""The quickstart on SmolLM2-135M-Instruct with `post_training.quantize: ["int8", "gguf:q8_0",
"gguf:q4_k_m"]`: it stops at approve_release with the candidates table; after approval the
registry holds the champion and the passing candidates with their lineage; and the q8_0 GGUF,
read back by transformers, gives the tuned model's greedy answers on the eval prompts.

Slow (a few minutes on 2 CPU cores): it trains, evaluates and post-trains the real model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmfinetune_agent.cli import app

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quickstart_with_quantization_ends_at_the_release_gate(tmp_path: Path) -> None:
    config = json.loads((REPO / "configs" / "quickstart.json").read_text())
    config["post_training"]["quantize"] = ["int8", "gguf:q8_0", "gguf:q4_k_m"]
    for part in ("train", "eval"):
        config["data"][part] = str(REPO / "configs" / config["data"][part])
    config_file = tmp_path / "quickstart-release.json"
    config_file.write_text(json.dumps(config))
    runner = CliRunner()

    # every gate before the release approved; the run then waits at approve_release (exit 3)
    result = runner.invoke(app, ["run", str(config_file)])
    run_id = result.output.split("run ", 1)[1].split()[0]
    # plan, data, evaluation (and fixes, should the debugger propose any): approve each until
    # the release gate is the one pending
    for _ in range(8):
        assert result.exit_code == 3, result.output
        shown = json.loads(runner.invoke(app, ["runs", "show", run_id, "--json"]).stdout)
        if shown["pending_interrupt"]["kind"] == "approve_release":
            break
        result = runner.invoke(app, ["resume", run_id, "--approve"])
    pending = shown["pending_interrupt"]
    assert pending["kind"] == "approve_release", pending
    rows = {r["name"]: r for r in pending["details"]["candidates"]}
    assert list(rows) == ["tuned", "int8", "gguf:q8_0", "gguf:q4_k_m"]
    q8 = rows["gguf:q8_0"]
    # the q8_0 file read back by transformers answers the eval prompts as the tuned model does.
    # Rounded to nearest (llama.cpp's way) it did not: 28 of 30, two near-ties on a city name
    # flipped ("Kyoto" -> "Kyre", logit gap 0.29). GPTQ rounding calibrated on the training
    # data (the default) keeps all 30 (measured 2026-12-07: KL 0.00037 -> 0.00006).
    assert q8["parameters"]["rounding"] == "gptq" and q8["parameters"]["calibration_sequences"]
    assert q8["same_answers"] == 1.0, q8
    assert q8["metrics"]["exact_match"] >= rows["tuned"]["metrics"]["exact_match"] - 0.04, q8
    assert q8["top1"] >= 0.95 and q8["bytes"] < rows["tuned"]["bytes"] / 3
    assert rows["gguf:q4_k_m"]["bytes"] < q8["bytes"]
    for name in ("int8", "gguf:q8_0", "gguf:q4_k_m"):
        assert rows[name]["verdict"] in ("pass", "fail") and rows[name]["reason"]
        assert rows[name]["metrics"]["exact_match"] >= 0.0
    passing = [n for n, r in rows.items() if r["verdict"] == "pass" and n != "tuned"]
    assert "gguf:q8_0" in passing, rows

    result = runner.invoke(app, ["resume", run_id, "--approve", "--comment", "ship it"])
    assert result.exit_code == 0, result.output
    listed = json.loads(runner.invoke(app, ["models", "list", "--run", run_id, "--json"]).stdout)
    registered = {m["name"]: m for m in listed}
    assert set(passing) | {"tuned"} <= set(registered)
    champion = [m for m in listed if m["alias"] == "champion"]
    assert len(champion) == 1 and champion[0]["name"] == passing[-1]
    tuned_id = registered["tuned"]["id"]
    for name in passing:
        model = registered[name]
        assert model["relation"] == "quantized" and model["parent_ids"] == [tuned_id]
        assert model["verdict"] == "pass" and len(model["sha256"]) == 64 and model["bytes"] > 0
        assert model["evaluation"]["parent"] == tuned_id
    for name, row in rows.items():
        if row["verdict"] == "fail":
            assert registered[name]["alias"] == "rolled_back", registered[name]
    shown = runner.invoke(app, ["models", "show", registered["gguf:q8_0"]["id"]])
    assert (
        f"gguf:q8_0 ({registered['gguf:q8_0']['id']}, quantized) <- tuned ({tuned_id}"
        in shown.stdout
    )
