"""The search behind `training.method: "prompt"`: a system prompt evolved with GEPA, then
few-shot exemplars chosen by bootstrap, every candidate scored on held-out training rows.

The search knows nothing of models: it is given a `scorer` (a candidate and rows -> answers
and per-row scores) and a `reflect` function (a prompt for the reflection model -> its text),
so a test can script both. The best candidate found is kept whatever comes after it:

    result = search_prompt(PromptTraining(), scorer=score, reflect=ask, base_prompt="Answer.",
                           pool=rows[4:], held_out=rows[:4])
    result.best.system_prompt, result.best.exemplars, result.best.score

GEPA (`gepa` package) proposes a new prompt from the answers a candidate got wrong on a
minibatch of training rows, keeps it when it beats its parent there, and scores kept ones on
every held-out row (its Pareto frontier is per row). Bootstrap then tries `exemplar_trials`
random sets of `exemplars` training rows under the best prompt; a set is kept only when it
scores above everything before it (ties go to the earlier, simpler candidate).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from models.prompt_artifact import Exemplar
from phases.training.config import PromptTraining

SYSTEM_PROMPT = "system_prompt"


@dataclass(frozen=True)
class PromptRow:
    """One training row as the search uses it."""

    prompt: str | list[dict[str, Any]]
    """What the model is asked: chat messages before the answer, or a plain-text prompt."""
    reference: str
    """The answer the row holds."""
    user_text: str
    """The input as an exemplar shows it (the last user message, or the prompt text)."""


Scorer = Callable[[str, list[Exemplar], list[PromptRow]], tuple[list[str], list[float]]]
"""(system prompt, exemplars, rows) -> (the model's answer to each row, each answer's score)."""
Reflect = Callable[[str], str]
"""The reflection model: a prompt in, its reply out."""


@dataclass
class Candidate:
    """One prompt tried, with its mean score on the held-out rows."""

    system_prompt: str
    exemplars: list[Exemplar]
    score: float
    source: str
    """'base' (the plain instruction), 'gepa' (an evolved prompt) or 'bootstrap' (exemplars)."""


@dataclass
class SearchResult:
    """What the search found: the best candidate, the base one, and every one scored."""

    best: Candidate
    base: Candidate
    candidates: list[Candidate] = field(default_factory=list)
    metric_calls: int = 0
    log: list[str] = field(default_factory=list)
    """GEPA's own log lines."""


def search_prompt(
    config: PromptTraining,
    *,
    scorer: Scorer,
    reflect: Reflect | None,
    base_prompt: str,
    pool: list[PromptRow],
    held_out: list[PromptRow],
    progress: Callable[[int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SearchResult:
    """Evolve the prompt (GEPA, unless `config.optimizer` is 'none'), then bootstrap exemplars
    from `pool`; every candidate is scored on `held_out`. `progress(metric_calls, best score)`
    follows the search; `should_stop()` ends it early with the best found so far."""
    if not held_out:
        raise ValueError("the prompt search needs at least one held-out row to score on")
    result = SearchResult(best=None, base=None)  # type: ignore[arg-type]
    if config.optimizer == "gepa" and pool and reflect is not None:
        _evolve(config, scorer, reflect, base_prompt, pool, held_out, result, should_stop)
    else:
        _, scores = scorer(base_prompt, [], held_out)
        result.candidates.append(Candidate(base_prompt, [], _mean(scores), "base"))
        result.metric_calls += len(held_out)
    result.base = result.candidates[0]
    result.best = _best(result.candidates)
    if progress:
        progress(result.metric_calls, result.best.score)
    _bootstrap(config, scorer, pool, held_out, result, progress, should_stop)
    return result


def _best(candidates: list[Candidate]) -> Candidate:
    """The highest-scoring candidate; the earliest among equals."""
    return max(candidates, key=lambda c: c.score)  # max keeps the first of equal keys


def _mean(scores: list[float]) -> float:
    return sum(scores) / len(scores) if scores else 0.0


def _bootstrap(
    config: PromptTraining,
    scorer: Scorer,
    pool: list[PromptRow],
    held_out: list[PromptRow],
    result: SearchResult,
    progress: Callable[[int, float], None] | None,
    should_stop: Callable[[], bool] | None,
) -> None:
    """Random exemplar sets under the best prompt so far; the best set wins only by scoring
    above every candidate before it."""
    size = min(config.exemplars, len(pool))
    if not size:
        return
    rng = random.Random(config.seed)
    prompt = result.best.system_prompt
    for _ in range(config.exemplar_trials):
        if should_stop and should_stop():
            break
        rows = rng.sample(pool, size)
        exemplars = [Exemplar(input=r.user_text, output=r.reference) for r in rows]
        _, scores = scorer(prompt, exemplars, held_out)
        result.metric_calls += len(held_out)
        result.candidates.append(Candidate(prompt, exemplars, _mean(scores), "bootstrap"))
        result.best = _best(result.candidates)
        if progress:
            progress(result.metric_calls, result.best.score)


def _evolve(
    config: PromptTraining,
    scorer: Scorer,
    reflect: Reflect,
    base_prompt: str,
    pool: list[PromptRow],
    held_out: list[PromptRow],
    result: SearchResult,
    should_stop: Callable[[], bool] | None,
) -> None:
    """GEPA over the system prompt: its candidates (the seed first) join `result`."""
    try:
        import gepa
    except ImportError:
        raise ValueError(
            "training.optimizer 'gepa' needs the gepa package: pip install 'finetune-agent[prompt]' "
            "(or set training.optimizer to 'none' to choose exemplars only)"
        ) from None

    stoppers = [_Stop(should_stop)] if should_stop else None
    gepa_result = gepa.optimize(
        seed_candidate={SYSTEM_PROMPT: base_prompt},
        trainset=pool,
        valset=held_out,
        adapter=_GEPAAdapter(scorer),
        reflection_lm=reflect,
        max_metric_calls=config.max_metric_calls,
        reflection_minibatch_size=min(config.reflection_minibatch_size, len(pool)),
        stop_callbacks=stoppers,
        logger=_ListLogger(result.log),
        seed=config.seed,
        raise_on_exception=True,
    )
    for index, (candidate, score) in enumerate(
        zip(gepa_result.candidates, gepa_result.val_aggregate_scores, strict=True)
    ):
        source = "base" if index == 0 else "gepa"
        result.candidates.append(Candidate(candidate[SYSTEM_PROMPT], [], float(score), source))
    result.metric_calls += int(gepa_result.total_metric_calls or 0)


class _Stop:
    """GEPA's stop condition from the run's cancel flag."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop = should_stop

    def __call__(self, gepa_state: Any) -> bool:
        return self.should_stop()


class _ListLogger:
    """GEPA's logger, keeping its lines instead of printing them."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def log(self, message: str) -> None:
        self.lines.append(str(message))


class _GEPAAdapter:
    """GEPA's view of a prompt: run the candidate's system prompt on rows, score each answer,
    and show the reflection model the inputs, answers, references and scores."""

    propose_new_texts = None  # GEPA's own reflective proposal, with the reflection model

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer

    def evaluate(self, batch: list[PromptRow], candidate: dict[str, str], capture_traces=False):
        from gepa import EvaluationBatch

        answers, scores = self.scorer(candidate[SYSTEM_PROMPT], [], batch)
        traces = list(zip(batch, answers, scores, strict=True)) if capture_traces else None
        return EvaluationBatch(outputs=answers, scores=list(scores), trajectories=traces)

    def make_reflective_dataset(self, candidate, eval_batch, components_to_update):
        records = [
            {
                "Inputs": row.user_text,
                "Generated Outputs": answer,
                "Feedback": (
                    f"Correct (score {score:.2f})."
                    if score >= 1.0
                    else f"Score {score:.2f}. The correct answer is: {row.reference}"
                ),
            }
            for row, answer, score in eval_batch.trajectories or []
        ]
        return {name: records for name in components_to_update}
