"""generate_examples: few-shot generation from the seeds (self-instruct style), then filtering.

Each prompt shows a random handful of seed examples (and, with knowledge, one retrieved passage
to ground the new example on); batches alternate around the configured temperature for variety.
Every candidate is parsed and filtered, and each drop is counted with its reason. Generation
stops once `num_examples` are kept, after `num_examples * max_attempts_factor` candidates, or
early when `give_up_after` candidates yielded nothing usable.

The generator is any function from a batch of chat prompts and a temperature to reply texts;
the orchestration layer passes a langchain-core chat model (local or remote) in that shape.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phases.synthesis.config import DataGenerationConfig
from phases.synthesis.filters import (
    DROP_REASONS,
    MinHasher,
    SeedProfile,
    format_problem,
    infer_profile,
    length_problem,
    max_similarity,
    normalized_text,
    quality_score,
)
from phases.synthesis.prompts import (
    LABELS,
    build_record,
    common_system_prompt,
    example_fields,
    generation_messages,
    parse_examples,
    render_example,
    values_span_paragraphs,
    why_unparseable,
)
from phases.synthesis.stats import field_stats, field_stats_line

Messages = list[dict[str, str]]
Complete = Callable[[list[Messages], float], list[str]]
Progress = Callable[[int, int, int], None]  # (candidates, kept, requested)
SYNTHETIC_FILE, REPORT_FILE = "synthetic.jsonl", "generation_report.json"
_TEMPERATURE_STEPS = (1.0, 1.2, 0.85)
_EXAMPLES_PER_REASON = 3


class GenerationError(RuntimeError):
    """The generator itself failed (e.g. an API error); the message says which and why."""


@dataclass
class GenerationReport:
    """What generation produced and what it dropped, by reason."""

    generator: str
    requested: int
    generated: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    replies: int = 0  # generator replies read; one reply can hold several candidates
    output_first: bool = False  # the generator was asked for the output before the input
    replies_extracted: int = 0  # the example was inside prose, a code fence or commentary
    replies_with_several_examples: int = 0
    dropped_examples: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    sample: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    profile: dict[str, Any] = field(default_factory=dict)
    field_rules: dict[str, dict[str, Any]] = field(default_factory=dict)  # per JSON output field
    field_stats: dict[str, dict[str, Any]] = field(default_factory=dict)  # distinct / new, kept
    synthetic_path: str | None = None
    report_path: str | None = None

    @property
    def usable(self) -> bool:
        """Whether at least one generated example survived the filters."""
        return self.kept > 0

    @property
    def keep_rate(self) -> float:
        """Kept candidates over judged candidates (0.0 when none was judged)."""
        return round(self.kept / self.generated, 3) if self.generated else 0.0

    @property
    def near_duplicate_rate(self) -> float:
        """Share of the judged candidates dropped as an exact or near duplicate of a seed or of
        another generated example (a generator repeating itself or the seeds)."""
        repeats = self.dropped.get("duplicate", 0) + self.dropped.get("near_duplicate", 0)
        return round(repeats / self.generated, 3) if self.generated else 0.0

    @property
    def message(self) -> str:
        """One plain paragraph for the data gate."""
        drops = ", ".join(f"{reason}: {n}" for reason, n in self.dropped.items()) or "none"
        if not self.usable:
            why = " (stopped early)" if self.stopped_early else ""
            return (
                f"Generation yielded no usable examples: all {self.generated} candidates from "
                f"{self.generator} were dropped{why} (dropped: {drops}). The training set is the "
                "seed data only; approve to train on the seeds alone, or edit "
                f"data_generation.generator to a stronger model.{self._extraction_note}"
            )
        short = (
            f" (fewer than the {self.requested} requested)" if self.kept < self.requested else ""
        )
        fields = f" Kept values: {field_stats_line(self.field_stats)}." if self.field_stats else ""
        return (
            f"Generated {self.generated} examples with {self.generator}; kept {self.kept}{short} "
            f"(keep rate {self.keep_rate:.0%}, near duplicates {self.near_duplicate_rate:.0%}), "
            f"dropped {self.generated - self.kept} (dropped: {drops}).{fields}"
            f"{self._extraction_note}"
        )

    @property
    def _extraction_note(self) -> str:
        if not (self.replies_extracted or self.replies_with_several_examples):
            return ""
        return (
            f" Of {self.replies} replies, {self.replies_extracted} had their example inside "
            f"other text (prose, a code fence or commentary) and "
            f"{self.replies_with_several_examples} held several examples."
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the file written to the run directory)."""
        out = {k: v for k, v in self.__dict__.items()}
        out.update(
            usable=self.usable,
            keep_rate=self.keep_rate,
            near_duplicate_rate=self.near_duplicate_rate,
            message=self.message,
        )
        return out


@dataclass
class _Pools:
    """What candidates are compared against: keys and MinHash signatures."""

    hasher: MinHasher
    keys: set[str]
    signatures: list[Any]
    eval_keys: set[str]
    eval_inputs: set[str]
    eval_signatures: list[Any]


def generate_examples(
    config: DataGenerationConfig,
    *,
    task: str,
    kind: str,
    seeds: list[dict[str, Any]],
    complete: Complete,
    generator_name: str,
    eval_records: list[dict[str, Any]] | None = None,
    passages: list[str] | None = None,
    passage_context: bool = False,
    output_dir: Path | None = None,
    progress: Progress | None = None,
) -> tuple[list[dict[str, Any]], GenerationReport]:
    """Generate up to `config.num_examples` kept examples of `kind` from `seeds`.

    Returns the kept records and the report; with `output_dir`, writes `synthetic.jsonl` and
    `generation_report.json` there. With `passage_context`, a kept example's input is prefixed
    with the passage it was grounded on. Raises `GenerationError` if `complete` fails.
    """
    if not seeds:
        raise ValueError("generate_examples needs at least one seed example")
    if kind not in LABELS:  # e.g. tool-calling chats: their calls are not free text to imitate
        raise GenerationError(
            f"data generation writes {', '.join(LABELS)} examples, not '{kind}' data; "
            "set data_generation.enabled to false"
        )
    rng = random.Random(config.seed)
    profile = infer_profile(seeds, kind)
    system_prompt = common_system_prompt(seeds) if kind == "chat" else None
    multi_paragraph = values_span_paragraphs(seeds, kind)
    output_first = (
        config.output_first if config.output_first is not None else bool(profile.extractive_keys)
    )
    pools = _pools(seeds, eval_records or [], kind)
    report = GenerationReport(
        generator_name,
        config.num_examples,
        profile=profile.to_dict(),
        field_rules=profile.field_rules_dict(),
        output_first=output_first,
    )
    kept: list[dict[str, Any]] = []
    batch_size = config.generation_batch_size()
    limit = math.ceil(config.num_examples * config.max_attempts_factor)
    batch_index = 0
    while len(kept) < config.num_examples and report.generated < limit:
        if report.generated >= config.give_up_after and not kept:
            report.stopped_early = True
            break
        size = min(batch_size, limit - report.generated)
        grounds = [rng.choice(passages) if passages else None for _ in range(size)]
        prompts = [_prompt(task, seeds, kind, config, rng, g, output_first) for g in grounds]
        temperature = config.temperature * _TEMPERATURE_STEPS[batch_index % 3]
        replies = _call(complete, prompts, temperature, generator_name)
        batch_index += 1
        for reply, ground in zip(replies, grounds, strict=True):
            if len(kept) >= config.num_examples:
                break  # replies past the request are neither judged nor counted
            parsed = _candidates(reply, kind, system_prompt, multi_paragraph, output_first, report)
            for candidate, why in parsed:
                if len(kept) >= config.num_examples or report.generated >= limit:
                    break
                report.generated += 1
                record = _judge(candidate, why, reply, kind, profile, pools, config, report)
                if record is not None:
                    kept.append(_with_context(record, kind, ground) if passage_context else record)
        if progress:
            progress(report.generated, len(kept), config.num_examples)
    report.kept = len(kept)
    report.sample = kept[:3]
    report.field_stats = field_stats(kept, seeds, profile)
    if output_dir is not None:
        _write(Path(output_dir), kept, report)
    return kept, report


def _prompt(
    task: str,
    seeds: list[dict[str, Any]],
    kind: str,
    config: DataGenerationConfig,
    rng: random.Random,
    passage: str | None,
    output_first: bool,
) -> Messages:
    exemplars = rng.sample(seeds, min(config.exemplars_per_prompt, len(seeds)))
    return generation_messages(task, exemplars, kind, passage, output_first)


def _call(complete: Complete, prompts: list[Messages], temperature: float, name: str) -> list[str]:
    try:
        replies = complete(prompts, temperature)
    except Exception as exc:  # any backend error: report it with the generator's name
        raise GenerationError(f"the generator {name} failed: {type(exc).__name__}: {exc}") from exc
    if len(replies) != len(prompts):
        raise GenerationError(
            f"the generator {name} returned {len(replies)} replies for {len(prompts)} prompts"
        )
    return replies


def _pools(seeds: list[dict[str, Any]], eval_records: list[dict[str, Any]], kind: str) -> _Pools:
    hasher = MinHasher()
    return _Pools(
        hasher=hasher,
        keys={_key(r) for r in seeds},
        signatures=[hasher.signature(render_example(r, kind)) for r in seeds],
        eval_keys={_key(r) for r in eval_records},
        eval_inputs={normalized_text(example_fields(r, kind)[0]) for r in eval_records},
        eval_signatures=[hasher.signature(render_example(r, kind)) for r in eval_records],
    )


def _key(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False)


def _candidates(
    reply: str,
    kind: str,
    system_prompt: str | None,
    multi_paragraph: bool,
    output_first: bool,
    report: GenerationReport,
) -> list[tuple[dict[str, Any] | None, str]]:
    """The reply's examples as records, or one (None, why) when it holds none; counts the reply."""
    examples, extracted = parse_examples(reply, kind, multi_paragraph=multi_paragraph)
    report.replies += 1
    report.replies_extracted += extracted
    report.replies_with_several_examples += len(examples) > 1
    if not examples:
        return [(None, why_unparseable(reply, kind, output_first))]
    return [(build_record(values, kind, system_prompt), "") for values in examples]


def _judge(
    record: dict[str, Any] | None,
    why: str,
    reply: str,
    kind: str,
    profile: SeedProfile,
    pools: _Pools,
    config: DataGenerationConfig,
    report: GenerationReport,
) -> dict[str, Any] | None:
    """The parsed record if it passes every filter; else count the drop and return None."""
    verdict = ("unparseable", why) if record is None else _filter(record, profile, pools, config)
    if verdict is None:
        pools.keys.add(_key(record))
        pools.signatures.append(pools.hasher.signature(render_example(record, kind)))
        return record
    reason, detail = verdict
    report.dropped[reason] = report.dropped.get(reason, 0) + 1
    examples = report.dropped_examples.setdefault(reason, [])
    if len(examples) < _EXAMPLES_PER_REASON:
        examples.append({"text": reply[:300], "detail": detail})
    return None


def _filter(
    record: dict[str, Any], profile: SeedProfile, pools: _Pools, config: DataGenerationConfig
) -> tuple[str, str] | None:
    """(reason, detail) of the first filter the record fails, in order of cost."""
    problem = format_problem(record, profile)
    if problem:
        return "format", problem
    too = length_problem(record, profile)
    if too:
        return too
    key = _key(record)
    if key in pools.eval_keys:
        return "eval_overlap", "identical to an eval example"
    if normalized_text(example_fields(record, profile.kind)[0]) in pools.eval_inputs:
        return "eval_overlap", "its input is an eval example's input"
    if key in pools.keys:
        return "duplicate", "identical to a seed or an earlier generated example"
    signature = pools.hasher.signature(render_example(record, profile.kind))
    threshold = config.near_duplicate_threshold
    similar = max_similarity(signature, pools.eval_signatures)
    if similar >= threshold:
        return "eval_overlap", f"MinHash similarity {similar:.2f} to an eval example"
    similar = max_similarity(signature, pools.signatures)
    if similar >= threshold:
        return "near_duplicate", f"MinHash similarity {similar:.2f} to a seed or kept example"
    score, parts = quality_score(record, profile)
    if score < config.min_quality:
        return "low_quality", f"quality {score:.2f} < {config.min_quality} ({parts})"
    return None


def _with_context(record: dict[str, Any], kind: str, passage: str | None) -> dict[str, Any]:
    """The record with `Context: <passage>` before its input (RAG-style training example)."""
    if not passage:
        return record
    prefix = f"Context: {passage.strip()}\n\n"
    if kind == "chat":
        messages = [dict(m) for m in record["messages"]]
        messages[-2]["content"] = prefix + messages[-2]["content"]
        return {"messages": messages}
    if kind == "text":
        return {"text": prefix + record["text"]}
    return {**record, "prompt": prefix + record["prompt"]}


def _write(output_dir: Path, kept: list[dict[str, Any]], report: GenerationReport) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    synthetic, report_path = output_dir / SYNTHETIC_FILE, output_dir / REPORT_FILE
    synthetic.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
    report.synthetic_path, report.report_path = str(synthetic), str(report_path)
    report_path.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))


def describe_drop_reasons() -> dict[str, str]:
    """Each drop reason and what it means, for reports and docs."""
    return dict(DROP_REASONS)
