"""A merge as a gated candidate: its parents and the merge scored on a held-out split, the
merge weights optionally found by an evolutionary search (CMA-ES, the `cma` package).

The held-out examples are neither training data nor the final eval split, so choosing weights
on them leaves the final evaluation honest. Every trial of the search is kept with its score
(the release gate's table shows them); the merge must score at least as well as its best
parent plus `gates.merge_min_gain`, or it is rolled back.
"""

from __future__ import annotations

import gc
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from phases.evaluation.config import EvaluationConfig
from phases.evaluation.generation import reference_loss
from phases.evaluation.model_evaluation import (
    evaluate_loaded,
    load_checked_examples,
    metrics_config,
)
from phases.post_training.candidate_loading import load_for_generation
from phases.post_training.errors import PostTrainingInputError
from phases.post_training.merge_config import DENSITY_METHODS, MergeSpec
from phases.post_training.merge_output import check_output, claim, finish
from phases.post_training.merging import (
    add_merged_adapter,
    load_adapters,
    merge_models,
    source_kinds,
)
from phases.post_training.quality import gated_metrics

Say = Callable[[str], None]


def held_out_score(
    model: Any, tokenizer: Any, examples: list[Any], evaluation: EvaluationConfig, how: str
) -> float:
    """Higher is better: the mean of the gated metrics (1/perplexity for perplexity), or with
    `how="loss"` the negated mean token loss of the references."""
    if how == "loss":
        total, count = reference_loss(model, tokenizer, examples, batch_size=evaluation.batch_size)
        return round(-total / max(count, 1), 6)
    metrics, _ = evaluate_loaded(
        model, tokenizer, examples, evaluation.model_copy(update={"do_sample": False})
    )
    values = [
        (1 / metrics[m] if metrics[m] else 0.0) if m == "perplexity" else metrics[m]
        for m in gated_metrics(evaluation)
        if metrics.get(m) is not None
    ]
    return round(sum(values) / max(len(values), 1), 6)


def _score_path(path: Path, examples, evaluation, how, cache_dir) -> float:
    model, tokenizer = load_for_generation(path, cache_dir=cache_dir)
    try:
        return held_out_score(model, tokenizer, examples, evaluation, how)
    finally:
        del model
        gc.collect()


def merge_and_gate(
    spec: MergeSpec,
    sources: list[tuple[str, Path]],
    *,
    output_dir: Path,
    evaluation: EvaluationConfig,
    index: int,
    min_gain: float = 0.0,
    parent_index: int | None = None,
    base: Path | None = None,
    cache_dir: Path | None = None,
    say: Say | None = None,
) -> dict[str, Any]:
    """Merge `sources` ((name, path) pairs) by `spec`, searching the weights when
    `spec.evolve.enabled`, and gate the merge against its parents on `spec.held_out`."""
    say = say or (lambda _m: None)
    if not spec.held_out:
        raise PostTrainingInputError(
            "merge.held_out is required to gate a merge: the examples the merge and its parents "
            "are scored on"
        )
    examples = load_checked_examples(evaluation, Path(spec.held_out))
    evaluation = metrics_config(evaluation, examples)
    paths = [path for _, path in sources]
    source_kinds(paths)
    parent_scores = {}
    for name, path in sources:
        say(f"scoring merge source {name} on the held-out split")
        parent_scores[name] = _score_path(path, examples, evaluation, spec.score, cache_dir)
    weights, density, search = spec.weights, spec.density, None
    if spec.evolve.enabled:
        say(f"searching merge weights with CMA-ES ({spec.evolve.budget} evaluations)")
        search = evolve_merge(spec, paths, examples, evaluation, output_dir, base, cache_dir)
        best = search["trials"][search["best"]]
        weights, density = best["weights"], best.get("density")
    merged = Path(output_dir) / "merged"
    parameters = merge_models(
        spec, paths, merged, weights=weights, density=density, base=base, cache_dir=cache_dir
    )
    score = _score_path(merged, examples, evaluation, spec.score, cache_dir)
    row = {
        "index": index,
        "name": f"merge:{spec.method}",
        "kind": "model",
        "relation": "merge",
        "operation": spec.method,
        "parameters": {**parameters, "sources": [name for name, _ in sources]},
        "parent": parent_index,
        # The run's model when it is one of the sources (the parent row), wherever it is listed.
        "parent_path": str(dict(sources).get("run", paths[0])),
        "sources": [{"name": name, "path": str(path)} for name, path in sources],
        "path": str(merged),
        "held_out": str(spec.held_out),
        "held_out_score": score,
        "parent_scores": parent_scores,
        "search": search,
    }
    best_name = max(parent_scores, key=parent_scores.get)
    needed = parent_scores[best_name] + min_gain
    if score >= needed:
        row.update(
            verdict="pass",
            reason=f"held-out score {score:.4g} >= best parent {best_name} ({parent_scores[best_name]:.4g})",
        )
    else:
        row.update(
            verdict="fail",
            reason=f"held-out score {score:.4g} < best parent {best_name} ({parent_scores[best_name]:.4g}) + {min_gain:g}",
        )
    return row


def _vector_to_merge(
    x: list[float], count: int, uses_density: bool
) -> tuple[list[float], float | None]:
    clipped = [min(max(float(v), 0.0), 1.0) for v in x]
    density = max(clipped[count], 0.05) if uses_density else None
    weights = [round(w, 4) for w in clipped[:count]]
    if not sum(weights):  # all clipped to 0: the limit of equal small weights, not a 0/0 merge
        weights = [round(1 / count, 4)] * count
    return weights, (round(density, 4) if density else None)


def evolve_merge(
    spec: MergeSpec,
    sources: list[Path],
    examples: list[Any],
    evaluation: EvaluationConfig,
    output_dir: Path,
    base: Path | None,
    cache_dir: Path | None,
) -> dict[str, Any]:
    """CMA-ES over the merge weights (and density) within `spec.evolve.budget` evaluations;
    returns every trial with its held-out score and the index of the best."""
    import cma

    count, uses_density = len(sources), spec.method in DENSITY_METHODS
    x0 = [0.5] * (count + (1 if uses_density else 0))
    options = {
        "bounds": [0.0, 1.0],
        "seed": spec.evolve.seed + 1,  # cma reads seed 0 as "random"
        "maxfevals": spec.evolve.budget,
        "verbose": -9,
    }
    strategy = cma.CMAEvolutionStrategy(x0, spec.evolve.sigma, options)
    scorer = _trial_scorer(spec, sources, examples, evaluation, output_dir, base, cache_dir)
    trials: list[dict[str, Any]] = []
    while len(trials) < spec.evolve.budget and not strategy.stop():
        population = strategy.ask()[: spec.evolve.budget - len(trials)]
        scores = []
        for x in population:
            weights, density = _vector_to_merge(list(x), count, uses_density)
            score = scorer(weights, density)
            trials.append(
                {"trial": len(trials), "weights": weights, "density": density, "score": score}
            )
            scores.append(-score)
        if len(population) == strategy.popsize:
            strategy.tell(population, scores)
    best = max(range(len(trials)), key=lambda i: trials[i]["score"])
    return {
        "method": "cma-es",
        "budget": spec.evolve.budget,
        "evaluations": len(trials),
        "best": best,
        "trials": trials,
    }


def _trial_scorer(spec, sources, examples, evaluation, output_dir, base, cache_dir):
    """A function (weights, density) -> held-out score. Adapters are combined in memory on one
    loaded model; full models are merged to disk by mergekit for each trial."""
    if source_kinds(sources) == "adapter":
        from models.loading import load_tokenizer

        model = load_adapters(sources, cache_dir)
        tokenizer = load_tokenizer(str(sources[0]), cache_dir=cache_dir, padding_side="left")
        trial = [0]

        def score_adapters(weights: list[float], density: float | None) -> float:
            name = f"trial{trial[0]}"
            trial[0] += 1
            add_merged_adapter(model, spec.method, len(sources), weights, density, name)
            value = held_out_score(model, tokenizer, examples, evaluation, spec.score)
            model.set_adapter("source0")
            model.delete_adapter(name)
            return value

        return score_adapters

    def score_models(weights: list[float], density: float | None) -> float:
        target = Path(output_dir) / "trial"
        merge_models(
            spec, sources, target, weights=weights, density=density, base=base, cache_dir=cache_dir
        )
        return _score_path(target, examples, evaluation, spec.score, cache_dir)

    return score_models


def run_merge_job(
    job: Any,
    sources: list[tuple[str, Path]],
    *,
    base: Path | None = None,
    cache_dir: Path | None = None,
    protected: dict[str, Path] | None = None,
    say: Say | None = None,
) -> dict[str, Any]:
    """The merge command's entry function (the CLI is a few lines over it): merge `sources`
    into `job.output`, gated on `job.held_out` against its parents when given, and write the
    exact config and a model card beside it. Returns the merge's row.

    `job.output` is refused before any work when the merge would replace or write into one of
    its inputs or `protected` paths (label -> path: the config file, registered models), or a
    folder an earlier merge did not write."""
    from phases.post_training.card import write_card

    output = Path(job.output)
    inputs = {f"merge source {name}": path for name, path in sources}
    for label, path in (("base", base), ("held_out file", job.held_out)):
        if path:
            inputs[label] = Path(path)
    check_output(output, {**inputs, **(protected or {})})
    if job.held_out:
        row = _gated_job(job, sources, output, base=base, cache_dir=cache_dir, say=say)
    else:
        parameters = merge_models(
            job, [p for _, p in sources], output, base=base, cache_dir=cache_dir
        )
        row = {
            "index": 0,
            "name": f"merge:{job.method}",
            "kind": "model",
            "relation": "merge",
            "operation": job.method,
            "parameters": {**parameters, "sources": [n for n, _ in sources]},
            "parent": None,
            "parent_path": str(sources[0][1]),
            "sources": [{"name": n, "path": str(p)} for n, p in sources],
            "verdict": "ungated",
            "reason": "no held_out split was given to compare it with its parents",
        }
    row["path"] = str(output)
    write_card(
        row,
        base_model=str(sources[0][1]),
        dataset=Path(job.held_out or "none").name,
        config=job.model_dump(mode="json"),
    )
    return row


def _gated_job(job, sources, output: Path, *, base, cache_dir, say) -> dict[str, Any]:
    """The merge gated against its parents, made in `<output>.work` (removed after) and moved
    to `output`."""
    work = claim(output.parent / (output.name + ".work"))
    try:
        row = merge_and_gate(
            job,
            sources,
            output_dir=work,
            evaluation=job.evaluation,
            index=0,
            min_gain=job.min_gain,
            base=base,
            cache_dir=cache_dir,
            say=say,
        )
        finish(Path(row["path"]), output)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # ours: claimed above
    return row
