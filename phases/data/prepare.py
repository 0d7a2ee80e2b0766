"""prepare_data: load, normalize, clean and split the run's data, and write it with its report.

Order of the steps: load -> normalize (drop unusable rows) -> de-duplicate -> count tokens and
drop rows over max_length -> split (or take the eval file, removing train rows it contains).
The eval file, when given, goes through the same steps and wins every overlap.
Normalization strips surrounding whitespace and makes line endings "\n", so rows differing
only in those count as duplicates. max_length is checked on the text the trainer sees: chat
rows through the tokenizer's chat template when the counter has one (role markers and end
tokens included), other rows on their text.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phases.data.cleaning import (
    TokenCounter,
    approximate_token_count,
    count_example_tokens,
    counter_name,
    deduplicate,
    drop_too_long,
    remove_overlap,
    split_train_eval,
    token_stats,
)
from phases.data.config import DataConfig
from phases.data.errors import DataError
from phases.data.formats import DroppedRow, Example, Normalized, normalize
from phases.data.loading import load_records
from phases.data.report import DROPPED_ROWS_LISTED, REASON_TEXT, DataReport, SourceSummary

TRAIN_FILE, EVAL_FILE, REPORT_FILE = "train.jsonl", "eval.jsonl", "data_report.json"


@dataclass
class PreparedData:
    """The normalized train and eval records, their kind and source format, and the report."""

    kind: str
    format: str
    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    report: DataReport


@dataclass
class _CleanSource:
    """One source (the train or the eval path) after normalization and cleaning."""

    normalized: Normalized
    examples: list[Example]
    dropped: list[DroppedRow]
    duplicates_removed: int
    rows_per_file: dict[str, int]


def prepare_data(
    config: DataConfig,
    *,
    count_tokens: TokenCounter | None = None,
    output_dir: Path | None = None,
) -> PreparedData:
    """Prepare the data of `config`; with `output_dir`, also write train.jsonl, eval.jsonl and
    data_report.json there. `count_tokens` counts the tokens of a text (default: an
    approximation, see phases.data.cleaning). Raises DataError for bad or unusable data."""
    count = count_tokens or approximate_token_count
    system = _system_prompt(config)
    train = _clean_source(config.train, config, count, system)
    held = _clean_source(config.eval, config, count, system) if config.eval else None
    if held is None:
        train_examples, eval_examples = split_train_eval(
            train.examples, config.eval_fraction, config.seed
        )
        overlaps = 0
        method = "fraction" if config.eval_fraction > 0 else "none"
        split = {"method": method, "eval_fraction": config.eval_fraction, "seed": config.seed}
    else:
        _check_same_kind(config, train.normalized, held.normalized)
        train_examples, overlaps = remove_overlap(train.examples, held.examples)
        if not train_examples:
            raise DataError(
                f"{config.train}: every usable training row also appears in the eval file "
                f"{config.eval}; nothing is left to train on."
            )
        eval_examples = held.examples
        split = {"method": "eval_file", "eval_file": config.eval}
    report = _build_report(
        config, count_tokens, train, held, train_examples, eval_examples, overlaps, split
    )
    prepared = PreparedData(
        kind=train.normalized.kind,
        format=train.normalized.format,
        train=[e.record for e in train_examples],
        eval=[e.record for e in eval_examples],
        report=report,
    )
    train_text, eval_text = _jsonl(prepared.train), _jsonl(prepared.eval)
    report.data_hash = data_hash(train_text, eval_text)
    if output_dir is not None:
        _write_outputs(Path(output_dir), train_text, eval_text, report)
    return prepared


def data_hash(train_jsonl: str, eval_jsonl: str) -> str:
    """sha256 of the normalized train and eval files' content (identifies the prepared data)."""
    digest = hashlib.sha256()
    for name, text in (("train", train_jsonl), ("eval", eval_jsonl)):
        digest.update(f"{name}\n{len(text.encode('utf-8'))}\n".encode())
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()


def _system_prompt(config: DataConfig) -> str | None:
    """The system prompt of `config.system_prompt_from` (a prompt artifact), if set."""
    if config.system_prompt_from is None:
        return None
    from models.prompt_artifact import PromptArtifactError, read_prompt_artifact

    try:
        return read_prompt_artifact(Path(config.system_prompt_from)).system_prompt
    except PromptArtifactError as exc:
        raise DataError(f"data.system_prompt_from: {exc}") from None


def _with_system(normalized, system: str | None, path: str):
    """Chat rows with `system` as their system message (replacing one they had)."""
    if system is None:
        return normalized
    if normalized.kind != "chat":
        raise DataError(
            f"{path}: data.system_prompt_from sets the system message of chat rows, but this "
            f"file holds {normalized.kind} data; remove data.system_prompt_from"
        )
    for example in normalized.examples:
        messages = example.record["messages"]
        own = 1 if messages and messages[0].get("role") == "system" else 0
        example.record["messages"] = [{"role": "system", "content": system}, *messages[own:]]
    return normalized


def _clean_source(
    path: str, config: DataConfig, count: TokenCounter, system: str | None = None
) -> _CleanSource:
    records = load_records(path)
    if not records:
        raise DataError(f"{path}: no rows found (the file is empty, or a CSV with only a header).")
    normalized = _with_system(normalize(records, config.format, config.columns), system, path)
    examples, duplicates = normalized.examples, 0
    if config.deduplicate:
        examples, duplicates = deduplicate(examples)
    count_example_tokens(examples, normalized.kind, count)
    examples, too_long = drop_too_long(examples, config.max_length)
    dropped = normalized.dropped + too_long
    if not examples:
        raise DataError(_no_usable_rows(path, normalized.rows_read, dropped, duplicates))
    rows_per_file = dict(Counter(record.source for record in records))
    return _CleanSource(normalized, examples, dropped, duplicates, rows_per_file)


def _no_usable_rows(path: str, rows_read: int, dropped: list[DroppedRow], duplicates: int) -> str:
    reasons = Counter(d.reason for d in dropped)
    parts = [f"{n} {REASON_TEXT.get(r, r)}" for r, n in reasons.items()]
    if duplicates:
        parts.append(f"{duplicates} exact duplicates")
    examples = "; ".join(f"{d.origin}: {d.detail}" for d in dropped[:3])
    hint = " Raise data.max_length or shorten the examples." if "too_long" in reasons else ""
    return (
        f"{path}: no usable rows: {rows_read} rows read and all were dropped ({', '.join(parts)})."
        f" First problems: {examples}.{hint}"
    )


def _check_same_kind(config: DataConfig, train: Normalized, held: Normalized) -> None:
    if train.kind != held.kind:
        raise DataError(
            f"the eval file {config.eval} holds '{held.kind}' data ({held.format}) but the train "
            f"data {config.train} holds '{train.kind}' data ({train.format}); use one kind."
        )


def _build_report(
    config: DataConfig,
    count_tokens: TokenCounter | None,
    train: _CleanSource,
    held: _CleanSource | None,
    train_examples: list[Example],
    eval_examples: list[Example],
    overlaps: int,
    split: dict[str, Any],
) -> DataReport:
    parts = [("train", train)] + ([("eval", held)] if held else [])
    sources = [
        SourceSummary(path, role, part.normalized.formats[path], rows)
        for role, part in parts
        for path, rows in part.rows_per_file.items()
    ]
    dropped = [row for _, part in parts for row in part.dropped]
    reasons = Counter(row.reason for row in dropped)
    kept = train_examples + eval_examples
    report = DataReport(
        kind=train.normalized.kind,
        format=train.normalized.format,
        sources=sources,
        rows_read=sum(part.normalized.rows_read for _, part in parts),
        rows_kept=len(kept),
        train_rows=len(train_examples),
        eval_rows=len(eval_examples),
        dropped_by_reason={reason: reasons.get(reason, 0) for reason in REASON_TEXT},
        dropped=dropped[:DROPPED_ROWS_LISTED],
        duplicates_removed=sum(part.duplicates_removed for _, part in parts),
        overlaps_eval=overlaps,
        max_length=config.max_length,
        token_counter=counter_name(count_tokens),
        token_stats=token_stats([e.tokens for e in kept]),
        split=split,
    )
    report.warnings = _warnings(config, report, train)
    return report


def _warnings(config: DataConfig, report: DataReport, train: _CleanSource) -> list[str]:
    warnings = []
    if report.split["method"] == "fraction" and report.eval_rows == 0:
        warnings.append(
            f"eval_fraction is {config.eval_fraction} but there is only one distinct example, "
            "so nothing is held out for evaluation."
        )
    if report.rows_dropped * 2 > report.rows_read:
        warnings.append(
            f"{report.rows_dropped} of {report.rows_read} rows were dropped; check the format "
            "and column mapping."
        )
    if "+" in train.normalized.format:
        warnings.append(f"the training files have different formats ({train.normalized.format}).")
    return warnings


def _jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def _write_outputs(output_dir: Path, train_text: str, eval_text: str, report: DataReport) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        name: output_dir / file
        for name, file in (("train", TRAIN_FILE), ("eval", EVAL_FILE), ("report", REPORT_FILE))
    }
    report.outputs = {name: str(path) for name, path in paths.items()}
    _write_atomic(paths["train"], train_text)
    _write_atomic(paths["eval"], eval_text)
    _write_atomic(
        paths["report"], json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    )


def _write_atomic(path: Path, text: str) -> None:
    # Readers (a cache check, a resumed run) never see a half-written file.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
