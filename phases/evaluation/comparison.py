"""`compare_models`: base versus tuned on one eval set, thresholds, and the written report.

The base model's result depends only on the base model, the eval data and the evaluation
settings, so it is cached under `<cache_dir>/eval_cache/` and reused by later runs (the
debugger loop re-evaluates the tuned model many times against the same base).
Thresholds are checked against the tuned metrics (and the base's, for relative rules); with no
thresholds set, the tuned model must not be worse than the base (`acceptance`).
"""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from models.config import ModelConfig
from models.paths import default_home
from phases.evaluation.acceptance import acceptance_checks
from phases.evaluation.config import JSON_DEFAULT_METRICS, EvaluationConfig
from phases.evaluation.examples import select_examples
from phases.evaluation.json_metrics import JSON_DEFAULT_SHARE, json_reference_share
from phases.evaluation.model_evaluation import (
    evaluate_model,
    load_checked_examples,
    metrics_config,
)
from phases.evaluation.report import write_report
from phases.evaluation.results import EvaluationReport, EvaluationResult

# Settings that change no metric value, so they stay out of the cache key.
_NOT_IN_CACHE_KEY = {"thresholds", "compare_base"}
# Bumped when a metric's definition changes, so older cached base results are not reused
# (2: exact_match compares JSON as parsed JSON; per-row scores).
METRICS_VERSION = 2


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_identity(model: ModelConfig | str | Path) -> dict:
    """What identifies a model's weights: its reference, and for a local dir its files' stamps."""
    config = model if isinstance(model, ModelConfig) else ModelConfig(name_or_path=str(model))
    identity = config.model_dump(include={"name_or_path", "revision", "dtype", "chat_template"})
    local = Path(config.name_or_path).expanduser()
    if local.exists():  # a rebuilt directory at the same path must not hit the old entry
        identity["name_or_path"] = str(local.resolve())
        files = sorted(local.iterdir()) if local.is_dir() else [local]
        identity["files"] = [
            (f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file()
        ]
    return identity


def base_cache_key(
    base: ModelConfig | str | Path, eval_path: Path, config: EvaluationConfig
) -> str:
    """sha256 over (base model identity, eval data sha256, evaluation settings)."""
    parts = {
        "model": model_identity(base),
        "eval_data": _file_sha256(eval_path),
        "evaluation": config.model_dump(exclude=_NOT_IN_CACHE_KEY),
        "metrics_version": METRICS_VERSION,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _cached_base(
    config: EvaluationConfig,
    base: ModelConfig | str,
    eval_path: Path,
    cache_dir: Path | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[EvaluationResult, bool]:
    """The base result from the cache, else evaluated and stored; and whether it was a hit."""
    entry = (
        (cache_dir or default_home())
        / "eval_cache"
        / f"{base_cache_key(base, eval_path, config)}.json"
    )
    if entry.is_file():
        try:
            return EvaluationResult.model_validate_json(entry.read_text(encoding="utf-8")), True
        except ValueError:
            pass  # a truncated or outdated entry: evaluate again and overwrite it
    result = evaluate_model(
        config, model=base, eval_path=eval_path, cache_dir=cache_dir, progress=progress
    )
    entry.parent.mkdir(parents=True, exist_ok=True)
    temporary = entry.with_suffix(".tmp")
    temporary.write_text(result.model_dump_json(), encoding="utf-8")
    temporary.replace(entry)  # atomic, so a concurrent reader never sees half a file
    return result, False


def compare_models(
    config: EvaluationConfig,
    *,
    base: ModelConfig | str,
    tuned: str | Path,
    eval_path: Path,
    output_dir: Path,
    cache_dir: Path | None = None,
    log_history_path: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationReport:
    """Evaluate the tuned model (and the base, cached, unless `config.compare_base` is off).

    Writes `evaluation_report.json`, `evaluation_report.md` and `loss.png` (from the Trainer
    `log_history` JSON, when given) into `output_dir`. `progress(done, total)` is called per
    generated batch, for the base pass (when not cached) and then for the tuned pass.
    """
    examples = load_checked_examples(config, eval_path)  # bad data fails before a model loads
    configured, config = config, metrics_config(config, examples)
    base_result, from_cache = None, False
    if config.compare_base:
        base_result, from_cache = _cached_base(config, base, Path(eval_path), cache_dir, progress)
    tuned_result = evaluate_model(
        config, model=tuned, eval_path=eval_path, cache_dir=cache_dir, progress=progress
    )
    report = build_report(
        config,
        base_result,
        tuned_result,
        notes=added_metrics_note(configured, config),
        base_from_cache=from_cache,
    )
    write_report(report, Path(output_dir), log_history_path)
    return report


def build_report(
    config: EvaluationConfig,
    base: EvaluationResult | None,
    tuned: EvaluationResult,
    *,
    notes: list[str],
    base_from_cache: bool = False,
) -> EvaluationReport:
    """Base vs tuned results as a report: deltas, the acceptance checks (the thresholds, or the
    default rule when none are set; see `acceptance`), the rows shown to a person."""
    base_metrics = base.metrics if base else {}
    structured = json_reference_share([p.expected for p in tuned.predictions]) >= JSON_DEFAULT_SHARE
    checks, rule = acceptance_checks(config, tuned, base, structured)
    return EvaluationReport(
        base=base,
        tuned=tuned,
        deltas={k: v - base_metrics[k] for k, v in tuned.metrics.items() if k in base_metrics},
        checks=checks,
        passed=all(check.passed for check in checks),
        acceptance=rule,
        examples=select_examples(tuned, base),
        base_from_cache=base_from_cache,
        notes=notes,
    )


def added_metrics_note(configured: EvaluationConfig, used: EvaluationConfig) -> list[str]:
    """Say which metrics the data added to the configured ones, and why."""
    added = [m for m in used.metrics if m not in configured.metrics]
    if not added:
        return []
    json_added = [m for m in added if m in JSON_DEFAULT_METRICS]
    why = (
        "the references are JSON objects, so exact match and per-field accuracy show whether "
        "the answers are right and not only shaped right"
        if json_added
        else "a threshold names them"
    )
    return [f"Added to the configured metrics: {', '.join(added)} ({why})."]
