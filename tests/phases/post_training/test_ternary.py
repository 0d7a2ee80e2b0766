"""Ternary (BitNet b1.58 absmean) weights: every matrix of the transformer blocks holds three
levels, a straight-through calibration moves the latent weights, and on a model whose answers
are decisive the gate rolls the ternary candidate back with its reason."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from phases.evaluation.config import EvaluationConfig
from phases.post_training.config import PostTrainingConfig
from phases.post_training.stage import run_post_training
from phases.post_training.ternary import TernaryCalibration, make_ternary

EVAL_ROWS = [
    {
        "messages": [
            {"role": "user", "content": f"{n} is {a} and lives in {c}."},
            {"role": "assistant", "content": json.dumps({"name": n, "age": a, "city": c})},
        ]
    }
    for n, a, c in [
        ("Anna", 31, "Oslo"),
        ("Tom", 40, "Rome"),
        ("Sara", 22, "Lima"),
        ("Ivan", 57, "Kyiv"),
    ]
]


def _levels(model_dir: Path) -> list[int]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    linears = [m for m in model.model.layers.modules() if isinstance(m, torch.nn.Linear)]
    return [len(torch.unique(m.weight)) for m in linears]


def test_every_block_matrix_has_three_levels(sharp_model_dir: Path, tmp_path: Path) -> None:
    settings = make_ternary(sharp_model_dir, tmp_path / "plain")
    assert settings["method"] == "bitnet_b1.58_absmean" and settings["experimental"] is True
    assert settings["layers"] == 14 and all(n <= 3 for n in _levels(tmp_path / "plain"))
    ids = list(range(5, 25))
    calibrated = make_ternary(
        sharp_model_dir,
        tmp_path / "calibrated",
        calibration=TernaryCalibration(steps=3, sequences=[(ids, 10)], learning_rate=1e-2),
    )
    assert calibrated["calibration_steps"] == 3 and all(
        n <= 3 for n in _levels(tmp_path / "calibrated")
    )
    plain = (tmp_path / "plain" / "model.safetensors").read_bytes()
    assert plain != (tmp_path / "calibrated" / "model.safetensors").read_bytes()


def test_the_gate_rolls_ternary_back_and_keeps_the_champion(
    sharp_model_dir: Path, tmp_path: Path
) -> None:
    eval_path = tmp_path / "eval.jsonl"
    eval_path.write_text("".join(json.dumps(r) + "\n" for r in EVAL_ROWS))
    result = run_post_training(
        PostTrainingConfig(quantize=["gguf:bf16", "ternary"]),
        evaluation=EvaluationConfig(metrics=["rougeL"], max_new_tokens=8),
        tuned_dir=sharp_model_dir,
        eval_path=eval_path,
        output_dir=tmp_path / "post",
        base_model="builtin:tiny-llama",
    )
    rows = result["candidates"]
    assert [r["name"] for r in rows] == ["tuned", "gguf:bf16", "ternary"]
    assert rows[1]["verdict"] == "pass" and rows[1]["alias"] == "champion"
    ternary = rows[2]
    assert ternary["verdict"] == "fail" and ternary["alias"] == "rolled_back"
    assert "KL" in ternary["reason"] and ternary["kl"] > 0.035
    assert result["champion"] == 1
    table = json.loads(Path(result["table_path"]).read_text())
    assert table["champion"] == 1 and len(table["candidates"][2]["answers"]) == len(EVAL_ROWS)
