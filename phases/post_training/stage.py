"""The post-training stage: make each candidate, gate it, keep the champion, write the table.

Row 0 of the table is the accepted model itself (the reference). A merge (when configured)
comes next and is gated on the held-out split against its parents; each quantization target
is then made from the champion so far (the merge when it passed, else the accepted model) and
gated on the run's eval set against that source: retention of the gated metrics and the KL
divergence of next-token distributions, within the thresholds of its precision class. A
candidate that cannot be made, or misses its gate, is rolled back: its row says why, and the
champion stays the last candidate that passed.

    result = run_post_training(config, evaluation=..., tuned_dir=..., eval_path=..., output_dir=...)
    result["candidates"][result["champion"]]
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from phases.evaluation.config import EvaluationConfig
from phases.evaluation.model_evaluation import load_checked_examples, metrics_config
from phases.post_training.candidate_loading import load_for_generation, weight_bytes
from phases.post_training.card import write_card
from phases.post_training.config import PRECISION_CLASS, PostTrainingConfig, ReleaseGates
from phases.post_training.quality import (
    Measured,
    gated_metrics,
    measure,
    next_token_agreement,
    retention,
    same_answers,
    tokenizer_problems,
)
from phases.post_training.quantize import make_candidate
from phases.post_training.ternary import TernaryCalibration

Progress = Callable[[str], None]
RELATION = {"int8": "quantized", "ternary": "quantized"}
TABLE_FILE = "candidates.json"


class _Reference:
    """The model candidates are compared with, loaded once: its measurements and its rows."""

    def __init__(self, row: dict[str, Any], model: Any, tokenizer: Any, measured: Measured):
        self.row, self.model, self.tokenizer, self.measured = row, model, tokenizer, measured


def run_post_training(
    config: PostTrainingConfig,
    *,
    evaluation: EvaluationConfig,
    tuned_dir: Path,
    eval_path: Path,
    output_dir: Path,
    base_model: str,
    train_path: Path | None = None,
    cache_dir: Path | None = None,
    merge_step: Callable[..., list[dict[str, Any]]] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Make and gate every configured candidate of the full model in `tuned_dir`; return the
    candidates table (`candidates`, `champion` index, `gated_metrics`, `table_path`)."""
    say = progress or (lambda _message: None)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    examples = load_checked_examples(evaluation, Path(eval_path))
    evaluation = metrics_config(evaluation, examples)
    gated = gated_metrics(evaluation)
    say("measuring the accepted model on the eval set (the reference of every gate)")
    reference = _load_reference(
        _tuned_row(tuned_dir), examples, evaluation, config.speed_tokens, cache_dir
    )
    rows, champion = [reference.row], 0
    if config.merge is not None and merge_step is not None:
        merged = _merge_rows(config, merge_step, rows=rows, output_dir=output_dir, say=say)
        rows += merged
        passing = [r for r in merged if r["verdict"] == "pass"]
        if passing:
            champion = passing[-1]["index"]
            reference = _load_reference(
                rows[champion], examples, evaluation, config.speed_tokens, cache_dir
            )
    calibration = _calibration(config, train_path, reference.tokenizer)
    for target in config.quantize:
        say(f"making {target} from {reference.row['name']}")
        row = _candidate(
            target,
            reference,
            examples,
            evaluation,
            config,
            output_dir=output_dir / target.replace(":", "-"),
            index=len(rows),
            gated=gated,
            calibration=calibration,
            cache_dir=cache_dir,
        )
        rows.append(row)
        say(f"{target}: {row['verdict']} ({row['reason']})")
        if row["verdict"] == "pass":
            champion = row["index"]
    for row in rows:
        if row.get("path") and row["index"] > 0 and Path(row["path"]).exists():
            write_card(
                row, base_model=base_model, dataset=Path(eval_path).name, config=_exact(config, row)
            )
    return _table(rows, champion, gated, output_dir)


def _merge_rows(
    config: PostTrainingConfig,
    merge_step: Callable[..., list[dict[str, Any]]],
    *,
    rows: list[dict[str, Any]],
    output_dir: Path,
    say: Progress,
) -> list[dict[str, Any]]:
    """The merge's rows; a merge that cannot be made (a missing source, models that do not
    fit together) is one rolled-back row with the reason, as a failed export is."""
    spec = config.merge
    try:
        return merge_step(spec, rows=rows, output_dir=output_dir / "merge", say=say)
    except Exception as exc:  # a failed merge is a rolled-back candidate, not a lost run
        say(f"merge:{spec.method}: could not be made ({exc})")
        row = {
            "index": len(rows),
            "name": f"merge:{spec.method}",
            "kind": "model",
            "relation": "merge",
            "operation": spec.method,
            "parameters": {"sources": spec.merged_sources(list(spec.sources))},
            "parent": 0,
            "parent_path": rows[0]["path"],
            "path": None,
        }
        return [{**row, **_fail(f"could not be made: {exc}")}]


def _tuned_row(tuned_dir: Path) -> dict[str, Any]:
    return {
        "index": 0,
        "name": "tuned",
        "kind": "model",
        "relation": "finetune",
        "operation": "fine-tune",
        "parameters": {},
        "parent": None,
        "path": str(tuned_dir),
        "verdict": "pass",
        "reason": "the accepted model: the reference every candidate is gated against",
    }


def _load_reference(
    row: dict[str, Any],
    examples: list[Any],
    evaluation: EvaluationConfig,
    speed_tokens: int,
    cache_dir: Path | None,
) -> _Reference:
    model, tokenizer = load_for_generation(Path(row["path"]), cache_dir=cache_dir)
    measured = measure(model, tokenizer, examples, evaluation, speed_tokens)
    if "metrics" not in row:  # a merge row already carries its own measurements
        row.update(_sizes(row["path"], model))
        row.update(metrics=measured.metrics, tokens_per_second=measured.tokens_per_second)
    return _Reference(row, model, tokenizer, measured)


def _sizes(path: str, model: Any, parameters: int | None = None) -> dict[str, Any]:
    size = weight_bytes(Path(path))
    count = parameters or sum(p.numel() for p in model.parameters())
    return {"bytes": size, "bits_per_weight": round(size * 8 / count, 3), "parameter_count": count}


def _candidate(
    target: str,
    reference: _Reference,
    examples: list[Any],
    evaluation: EvaluationConfig,
    config: PostTrainingConfig,
    *,
    output_dir: Path,
    index: int,
    gated: list[str],
    calibration: list[tuple[list[int], int]],
    cache_dir: Path | None,
) -> dict[str, Any]:
    """One quantization target, made and gated against the reference (the champion so far)."""
    row: dict[str, Any] = {
        "index": index,
        "name": target,
        "kind": "gguf" if target.startswith("gguf:") else "quantized",
        "relation": RELATION.get(target, "quantized"),
        "operation": target,
        "parent": reference.row["index"],
        "parent_path": reference.row["path"],
    }
    try:
        options = _maker_options(target, config, calibration)
        path, parameters = make_candidate(
            target, Path(reference.row["path"]), output_dir, **options
        )
    except Exception as exc:  # a failed export is a rolled-back candidate, not a lost run
        return {**row, "path": None, "parameters": {}, **_fail(f"could not be made: {exc}")}
    row.update(path=str(path), parameters=parameters)
    model = None
    try:
        model, tokenizer = load_for_generation(path, cache_dir=cache_dir)
        problems = tokenizer_problems(reference.tokenizer, tokenizer, examples)
        measured = measure(model, tokenizer, examples, evaluation, config.speed_tokens)
        agreement = next_token_agreement(reference.model, model, reference.tokenizer, examples)
        row.update(_sizes(str(path), model, reference.row.get("parameter_count")))
    except Exception as exc:  # a candidate that cannot be loaded or measured is rolled back
        return {**row, **_fail(f"could not be measured: {type(exc).__name__}: {exc}")}
    finally:
        del model
        gc.collect()
    row.update(
        metrics=measured.metrics,
        retention=retention(measured.metrics, reference.measured.metrics, gated),
        kl=agreement["kl"],
        top1=agreement["top1"],
        same_answers=same_answers(measured.answers, reference.measured.answers),
        tokens_per_second=measured.tokens_per_second,
        speed_ratio=_ratio(measured.tokens_per_second, reference.measured.tokens_per_second),
        size_ratio=_ratio(row["bytes"], reference.row["bytes"]),
        answers=measured.answers,
    )
    row.update(quantization_verdict(row, PRECISION_CLASS[target], config.gates, problems))
    return row


def _ratio(value: float | None, of: float | None) -> float | None:
    return round(value / of, 4) if value and of else None


def quantization_verdict(
    row: dict[str, Any], precision: str, gates: ReleaseGates, problems: list[str]
) -> dict[str, Any]:
    """pass, or fail with every reason: a tokenizer that differs, retention or KL past the
    thresholds of the candidate's precision class (`8bit` or `4bit`)."""
    least = getattr(gates, f"retention_{precision}")
    most_kl = getattr(gates, f"kl_{precision}")
    reasons = list(problems)
    low = {m: r for m, r in (row.get("retention") or {}).items() if r < least}
    if low:
        shown = ", ".join(f"{m} {r:.1%}" for m, r in low.items())
        reasons.append(f"retention {shown} < {least:.0%}")
    if row["kl"] > most_kl:
        reasons.append(f"KL {row['kl']:.2g} > {most_kl:g}")
    if reasons:
        return _fail("; ".join(reasons))
    kept = min((row.get("retention") or {"-": 1.0}).values())
    return {
        "verdict": "pass",
        "reason": f"retention >= {kept:.1%} (needs {least:.0%}), KL {row['kl']:.2g} <= {most_kl:g}",
    }


def _fail(reason: str) -> dict[str, Any]:
    return {"verdict": "fail", "reason": reason}


def _calibration(
    config: PostTrainingConfig, train_path: Path | None, tokenizer: Any
) -> list[tuple[list[int], int]]:
    """Training sequences (token ids, first answer token) for the targets that calibrate on
    them: ternary's straight-through steps, q8_0's GPTQ rounding; none when no target does."""
    if not train_path or not any(_calibrates(t, config) for t in config.quantize):
        return []
    from phases.evaluation.eval_data import load_eval_examples
    from phases.evaluation.generation import teacher_forcing_ids

    examples = load_eval_examples(Path(train_path), 256)
    return [teacher_forcing_ids(tokenizer, e) for e in examples]


def _calibrates(target: str, config: PostTrainingConfig) -> bool:
    """Whether `target` is configured to use training sequences: ternary's straight-through
    steps, q8_0's GPTQ rounding."""
    if target == "ternary":
        return bool(config.ternary_calibration_steps)
    return target == "gguf:q8_0" and config.q8_0_rounding == "gptq"


def _maker_options(
    target: str, config: PostTrainingConfig, sequences: list[tuple[list[int], int]]
) -> dict[str, Any]:
    """What `target`'s maker calibrates with, if anything."""
    if not sequences or not _calibrates(target, config):
        return {}
    if target == "ternary":
        steps = config.ternary_calibration_steps
        return {"calibration": TernaryCalibration(steps=steps, sequences=sequences)}
    return {"sequences": sequences}


def _exact(config: PostTrainingConfig, row: dict[str, Any]) -> dict[str, Any]:
    """The exact settings a candidate was made and judged with."""
    return {
        "operation": row["operation"],
        "parameters": row.get("parameters") or {},
        "made_from": row.get("parent_path"),
        "gates": config.gates.model_dump(),
        "post_training": config.model_dump(mode="json"),
    }


def _table(
    rows: list[dict[str, Any]], champion: int, gated: list[str], output_dir: Path
) -> dict[str, Any]:
    """The candidates table with aliases, written to `candidates.json` (answers included)."""
    for row in rows:
        passed = row["verdict"] == "pass"
        row["alias"] = (
            "champion" if row["index"] == champion else "candidate" if passed else "rolled_back"
        )
    table_path = output_dir / TABLE_FILE
    table_path.write_text(json.dumps({"candidates": rows, "champion": champion}, indent=2))
    slim = [{k: v for k, v in row.items() if k != "answers"} for row in rows]
    return {
        "candidates": slim,
        "champion": champion,
        "gated_metrics": gated,
        "table_path": str(table_path),
    }
