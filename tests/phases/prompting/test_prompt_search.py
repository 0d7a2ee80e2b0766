"""The prompt search with a scripted scorer and a scripted reflection model: GEPA's proposals
and bootstrap's exemplar sets are scored on held-out rows, and the best candidate found is the
one kept, even when later proposals and exemplar sets are worse."""

from __future__ import annotations

import pytest

from llmfinetune_agent.config import ConfigError, parse_run_config
from models.prompt_artifact import Exemplar
from phases.prompting.search import PromptRow, search_prompt
from phases.training.config import PromptTraining

ROWS = [
    PromptRow(prompt=[{"role": "user", "content": f"q{i}"}], reference=f"a{i}", user_text=f"q{i}")
    for i in range(12)
]
# The reflection model's replies, in order: better, best, then only worse ones.
PROPOSALS = ["```Answer OK.```", "```Answer GOOD.```", "```worse```", "```bad```"]


def scripted_score(system_prompt: str, exemplars: list[Exemplar], rows: list[PromptRow]):
    """A prompt's score by its words; exemplar q5 helps, any other exemplar hurts."""
    base = 0.8 if "GOOD" in system_prompt else 0.5 if "OK" in system_prompt else 0.1
    if exemplars:
        base += 0.1 if any(e.input == "q5" for e in exemplars) else -0.3
    return [f"answer to {r.user_text}" for r in rows], [base] * len(rows)


def scripted_reflection() -> tuple[list[str], object]:
    asked: list[str] = []
    replies = iter(PROPOSALS + ["```bad```"] * 100)

    def reflect(prompt: str) -> str:
        asked.append(prompt)
        return next(replies)

    return asked, reflect


def test_gepa_keeps_the_best_prompt_and_bootstrap_the_best_exemplars() -> None:
    asked, reflect = scripted_reflection()
    config = PromptTraining(max_metric_calls=60, exemplars=1, exemplar_trials=8, seed=3)

    result = search_prompt(
        config,
        scorer=scripted_score,
        reflect=reflect,
        base_prompt="plain",
        pool=ROWS[4:],
        held_out=ROWS[:4],
    )

    assert len(asked) > 2  # the worse proposals after the best one were asked for too
    assert "The correct answer is: a" in asked[0]  # the reflection saw the references
    assert result.base.system_prompt == "plain" and result.base.score == pytest.approx(0.1)
    prompts = [c.system_prompt for c in result.candidates if c.source == "gepa"]
    assert prompts[:2] == ["Answer OK.", "Answer GOOD."]
    assert result.best.system_prompt == "Answer GOOD."
    assert [e.input for e in result.best.exemplars] == ["q5"]
    assert result.best.score == pytest.approx(0.9)
    later = result.candidates[result.candidates.index(result.best) + 1 :]
    assert all(c.score < result.best.score for c in later)
    assert result.metric_calls >= 60


def test_exemplars_that_do_not_help_are_left_out() -> None:
    pool = [r for r in ROWS[4:] if r.user_text != "q5"]  # every exemplar hurts
    config = PromptTraining(optimizer="none", exemplars=2, exemplar_trials=3)

    result = search_prompt(
        config,
        scorer=scripted_score,
        reflect=None,
        base_prompt="Answer OK.",
        pool=pool,
        held_out=ROWS[:4],
    )

    assert result.best is result.base and result.best.exemplars == []
    assert len(result.candidates) == 4
    assert result.metric_calls == 4 + 3 * 4


def test_a_prompt_run_refuses_settings_that_train_weights() -> None:
    base = {"model": {"name_or_path": "builtin:tiny-llama"}, "data": {"train": "x.jsonl"}}
    with pytest.raises(ConfigError) as refused:
        parse_run_config({**base, "training": {"method": "prompt", "learning_rate": 0.01}})
    assert "training.learning_rate trains weights" in str(refused.value)
    with pytest.raises(ConfigError) as unknown:
        parse_run_config({**base, "training": {"method": "prompt", "exemplar": 2}})
    assert "exemplar" in str(unknown.value) and "exemplars" in str(unknown.value)
    with pytest.raises(ConfigError) as data:
        parse_run_config(
            {
                **base,
                "data": {"train": "x.jsonl", "format": "preference"},
                "training": {"method": "prompt"},
            }
        )
    assert "learns from chat, prompt_completion data" in str(data.value)
