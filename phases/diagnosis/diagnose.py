"""`diagnose_run`: every check over what a run produced, most severe first."""

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from phases.diagnosis.content_checks import check_format_only, check_ignores_input
from phases.diagnosis.data_checks import (
    check_duplicates,
    check_leakage,
    check_too_few,
    check_truncation,
)
from phases.diagnosis.output_checks import (
    check_empty_outputs,
    check_never_stops,
    check_no_effect,
    check_repetition,
)
from phases.diagnosis.preference_checks import (
    check_likelihood_displacement,
    check_preference_never_ends,
    check_preference_saturation,
)
from phases.diagnosis.results import SEVERITY_RANK, Diagnosis
from phases.diagnosis.reward_checks import (
    check_completions_clipped,
    check_reward_hacking,
    check_zero_reward_spread,
)
from phases.diagnosis.training_checks import (
    check_divergence,
    check_lr_too_high,
    check_overfitting,
    check_underfitting,
    start_loss,
)


def diagnose_run(
    *,
    config: dict[str, Any] | BaseModel,
    log_history: list[dict[str, Any]] | None = None,
    training: dict[str, Any] | None = None,
    data_report: dict[str, Any] | None = None,
    train_rows: list[dict[str, Any]] | None = None,
    eval_rows: list[dict[str, Any]] | None = None,
    evaluation: dict[str, Any] | None = None,
    predictions: list[dict[str, Any]] | None = None,
    generation: dict[str, Any] | None = None,
) -> list[Diagnosis]:
    """Diagnose a run from whatever evidence exists (every input is optional but `config`).

    `config` is the run config (a dict or the pydantic model); `log_history` the Trainer log
    history; `training` the training result (status, diverged_at_step); `data_report` the
    content of data_report.json; `train_rows`/`eval_rows` the prepared rows trained and
    evaluated on; `evaluation` holds "base"/"tuned" metric dicts; `predictions` the tuned
    model's per-example {input, expected, got}; `generation` the output of `probe_generation`.
    Patches are not validated here (phases do not know the run config model): the caller
    validates them against it.
    """
    cfg = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    history = log_history or []
    found: list[Diagnosis | None] = [check_divergence(history, cfg, training)]
    if found[0] is None:  # a blow-up explains any odd curve: don't pile on
        too_high = check_lr_too_high(history, cfg, start_loss(evaluation))
        found += [
            too_high,
            check_overfitting(history, cfg),
            check_preference_saturation(history, cfg),
            check_likelihood_displacement(history, cfg),
        ]
        if too_high is None:  # a loss pushed up by the learning rate needs no longer training
            found.append(check_underfitting(history, cfg, training, predictions))
    found += [
        check_zero_reward_spread(history, cfg, training),
        check_completions_clipped(history, cfg, training),
        check_reward_hacking(history, cfg, evaluation),
        check_duplicates(train_rows, data_report, cfg),
        check_leakage(train_rows, eval_rows, data_report),
        check_truncation(data_report, cfg),
        check_too_few(train_rows, data_report),
    ]
    if found[0] is None:  # a blown-up model's answers are noise the divergence already explains
        never_ends = check_preference_never_ends(predictions, generation, cfg)
        found += [
            check_no_effect(evaluation, cfg),
            check_ignores_input(predictions, cfg),
            check_format_only(predictions, cfg),
            check_empty_outputs(predictions),
            check_repetition(predictions),
            # A DPO run's answers that do not end have their own cause and fix.
            never_ends or check_never_stops(generation, cfg),
        ]
    diagnoses = [d for d in found if d is not None]
    return sorted(diagnoses, key=lambda d: -SEVERITY_RANK[d.severity])


def read_rows(path: str | Path | None) -> list[dict[str, Any]] | None:
    """The rows of a JSONL file (None when there is no such file)."""
    if not path or not Path(path).is_file():
        return None
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def read_json(path: str | Path | None) -> Any:
    """A JSON file's content, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8")) if path else None
    except (OSError, ValueError):
        return None
