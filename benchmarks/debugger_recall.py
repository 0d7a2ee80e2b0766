"""Debugger recall: train a corpus of injected faults on the tiny built-in model, diagnose each
run, and count how many of the faults the diagnosis names.

    python benchmarks/debugger_recall.py [--only CASE ...] [--keep DIR] [--verbose]

Each case goes through the phases a run uses - `prepare_data` -> `train` -> `compare_models`
(base vs tuned, per-row predictions) -> `probe_generation` -> `diagnose_run` - with one fault
injected into its data or config; the healthy cases have none. The task is one a 2-layer model
can learn in about 60 steps: a sentence about a trip -> JSON with its city and country (or, in
chat, the country), evaluated on name/city pairs never trained on. Every proposed patch is checked
against `RunConfig` the way the debugger agent does.

Prints a table (case, what must be found, what was found, patches), then
`RESULT debugger_recall=<found/expected> false_alarms=<error-severity diagnoses on healthy runs>`
(goal: recall >= 0.9, 0 false alarms).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

NAMES = ["Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Henry", "Isabel", "Jack"]
NAMES += ["Karen", "Liam"]
COUNTRY = {
    "Paris": "France",
    "Tokyo": "Japan",
    "Lima": "Peru",
    "Oslo": "Norway",
    "Rome": "Italy",
    "Cairo": "Egypt",
    "Dublin": "Ireland",
    "Seoul": "Korea",
}
CITIES = list(COUNTRY)
# Train on 84 name/city pairs, evaluate on 12 others: every name and city is seen in training,
# never in the evaluated pairing, so the answers must come from the input.
PAIRS = [(n, c) for i, n in enumerate(NAMES) for j, c in enumerate(CITIES) if (i + j) % 8 < 7]
EVAL_PAIRS = [(n, CITIES[(7 - i) % 8]) for i, n in enumerate(NAMES)]
TRAIN_PAIRS = [p for p in PAIRS if p not in EVAL_PAIRS]
NO_END_TEMPLATE_FROM = "message['content'] + '</s>'"
LONG_NOTE = " ".join(["This sentence is long filler text about the weather and the day."] * 6)


def trip_rows(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Prompt-completion rows: a sentence about a trip -> JSON with its city and country."""
    return [
        {
            "prompt": f"{n} flew to {c}",
            "completion": " " + json.dumps({"city": c, "country": COUNTRY[c]}),
        }
        for n, c in pairs
    ]


def country_chats(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Chat rows: the user names a trip, the assistant answers with the country."""
    return [
        {
            "messages": [
                {"role": "user", "content": f"{n} flew to {c}"},
                {"role": "assistant", "content": COUNTRY[c]},
            ]
        }
        for n, c in pairs
    ]


@dataclass
class Case:
    """One run of the corpus: its data, its config changes, and what the debugger must say."""

    name: str
    fault: str
    expected: tuple[str, ...]  # any one of these kinds counts as found; () for a healthy run
    train_rows: list[dict[str, Any]]
    eval_rows: list[dict[str, Any]]
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)


def corpus() -> list[Case]:
    """Nine injected faults and two healthy runs."""
    train, held = trip_rows(TRAIN_PAIRS), trip_rows(EVAL_PAIRS)
    good = {"training": {"epochs": 6, "learning_rate": 3e-3}}
    # Each sentence with the JSON of the row 13 further on: neither name nor city matches.
    shuffled = [
        {**r, "completion": train[(i + 13) % len(train)]["completion"]} for i, r in enumerate(train)
    ]
    leaked = train + [{**r, "prompt": r["prompt"].replace(" flew to ", "  flew to ")} for r in held]
    long_rows = [{**r, "prompt": LONG_NOTE + " " + r["prompt"]} for r in train[::3]]
    no_end = {
        "chat_template": _builtin_template().replace(NO_END_TEMPLATE_FROM, "message['content']")
    }
    return [
        Case("healthy_json", "none", (), train, held, good),
        Case(
            "healthy_chat", "none", (), country_chats(TRAIN_PAIRS), country_chats(EVAL_PAIRS), good
        ),
        Case(
            "lr_far_too_high",
            "learning_rate 0.5",
            ("divergence", "lr_too_high"),
            train,
            held,
            {"training": {"epochs": 2, "learning_rate": 0.5, "logging_steps": 5}},
        ),
        Case(
            "too_few_steps",
            "epochs 0.25 (3 steps)",
            ("underfitting",),
            train,
            held,
            {"training": {"epochs": 0.25, "learning_rate": 3e-3, "logging_steps": 1}},
        ),
        Case(
            "input_not_trained",
            "the prompts lost their input (a constant instruction)",
            ("ignores_input",),
            [{**r, "prompt": "Trip:"} for r in train],
            held,
            {**good, "data": {"deduplicate": False}},
        ),
        Case(
            "labels_shuffled",
            "each sentence paired with another row's JSON",
            ("format_only",),
            shuffled,
            held,
            good,
        ),
        Case(
            "eval_leaked",
            "the eval rows copied into the training file (spacing changed)",
            ("leakage",),
            leaked,
            held,
            good,
        ),
        Case(
            "heavy_duplication",
            "a quarter of the rows repeated 4x, deduplicate off",
            ("duplicates",),
            train + train[::4] * 4,
            held,
            {**good, "data": {"deduplicate": False}},
        ),
        Case(
            "truncation",
            "a third of the rows longer than max_length 48",
            ("truncation",),
            long_rows + train,
            held,
            {**good, "data": {"max_length": 48}},
        ),
        Case(
            "template_never_ends",
            "a chat template without the end token",
            ("never_stops",),
            country_chats(TRAIN_PAIRS),
            country_chats(EVAL_PAIRS),
            {**good, "model": no_end},
        ),
        Case(
            "overfitting",
            "5 rows for 60 epochs",
            ("overfitting",),
            train[:5],
            held,
            {"training": {"epochs": 60, "batch_size": 5, "learning_rate": 3e-3, "eval_steps": 6}},
        ),
    ]


def _builtin_template() -> str:
    from models.builtin import CHAT_TEMPLATE

    return CHAT_TEMPLATE


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def case_config(case: Case, model_dir: Path, work: Path):
    """The case's run config (validated), with its data written under `work`."""
    from llmfinetune_agent.config import parse_run_config

    raw: dict[str, Any] = {
        "data": {
            "train": str(_write(work / "source" / "train.jsonl", case.train_rows)),
            "eval": str(_write(work / "source" / "eval.jsonl", case.eval_rows)),
            "max_length": 128,
        },
        "model": {"name_or_path": str(model_dir)},
        "training": {"batch_size": 8, "logging_steps": 2, "save_steps": 1000},
        "evaluation": {"metrics": ["rougeL", "exact_match", "perplexity"], "max_new_tokens": 24},
    }
    for name, values in case.sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return parse_run_config(raw)


def run_case(case: Case, model_dir: Path, work: Path, cache: Path) -> list[dict[str, Any]]:
    """Prepare, train, evaluate, probe and diagnose one case; the diagnoses as the debugger
    agent keeps them (patches checked against RunConfig)."""
    from llmfinetune_agent.agents.debugger_agent import validated_patch
    from phases.data import prepare_data
    from phases.diagnosis import diagnose_run, probe_generation, read_rows
    from phases.evaluation import compare_models
    from phases.training import train

    config = case_config(case, model_dir, work)
    prepared = prepare_data(config.data, output_dir=work / "data")
    train_path, eval_path = work / "data" / "train.jsonl", work / "data" / "eval.jsonl"
    result = train(
        config.training,
        model=config.model,
        train_path=train_path,
        eval_path=eval_path,
        output_dir=work / "training",
        max_length=config.data.max_length,
    )
    report = compare_models(
        config.evaluation,
        base=config.model,
        tuned=result.model_path,
        eval_path=eval_path,
        output_dir=work / "evaluation",
        cache_dir=cache,
    )
    probe = probe_generation(
        result.model_path, eval_path, max_new_tokens=24, base_model=config.model, limit=4
    )
    found = diagnose_run(
        config=config,
        log_history=json.loads(Path(result.log_history_path).read_text()),
        training=result.to_dict(),
        data_report=prepared.report.to_dict(),
        train_rows=read_rows(train_path),
        eval_rows=read_rows(eval_path),
        evaluation={"base": report.base.metrics, "tuned": report.tuned.metrics},
        predictions=[p.model_dump() for p in report.tuned.predictions],
        generation=probe,
    )
    diagnoses = [validated_patch(config, d.model_dump(mode="json")) for d in found]
    (work / "diagnoses.json").write_text(json.dumps(diagnoses, indent=1), encoding="utf-8")
    return diagnoses


def _found_cell(diagnoses: list[dict[str, Any]]) -> str:
    marks = {"error": "!", "warning": "", "info": "?"}
    return ", ".join(f"{d['kind']}{marks[d['severity']]}" for d in diagnoses) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="run only these cases (by name)")
    parser.add_argument("--keep", type=Path, help="keep every run's files under this directory")
    parser.add_argument("--verbose", action="store_true", help="print every diagnosis's summary")
    args = parser.parse_args()
    cases = [c for c in corpus() if not args.only or c.name in args.only]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        from models.builtin import build_tiny_llama

        model_dir = build_tiny_llama(root / "tiny-llama")
        rows, hits, faulty, false_alarms, started = [], 0, 0, 0, time.perf_counter()
        for case in cases:
            start = time.perf_counter()
            diagnoses = run_case(case, model_dir, root / case.name, root / "cache")
            kinds = {d["kind"] for d in diagnoses}
            errors = [d for d in diagnoses if d["severity"] == "error"]
            if case.expected:
                faulty += 1
                hit = bool(kinds & set(case.expected))
                hits += hit
                verdict = "found" if hit else "MISSED"
            else:
                false_alarms += len(errors)
                verdict = "clean" if not errors else f"{len(errors)} FALSE ALARM(S)"
            rejected = [d["kind"] for d in diagnoses if d.get("patch_rejected")]
            rows.append(
                (
                    case.name,
                    " | ".join(case.expected) or "(healthy)",
                    _found_cell(diagnoses),
                    verdict,
                    ", ".join(rejected) or "-",
                    time.perf_counter() - start,
                )
            )
            print(f"{case.name}: {verdict} ({rows[-1][-1]:.0f} s)", flush=True)
            for d in diagnoses if args.verbose else []:
                print(f"    {d['kind']} ({d['severity']}): {d['summary']}", flush=True)
    print()
    print(f"{'case':<20} {'must find':<26} {'verdict':<10} {'bad patches':<12} {'s':>4}  found")
    for name, expected, found, verdict, rejected, seconds in rows:
        print(f"{name:<20} {expected:<26} {verdict:<10} {rejected:<12} {seconds:>4.0f}  {found}")
    print(f"(! error, ? info; {time.perf_counter() - started:.0f} s in all)")
    recall = hits / faulty if faulty else 0.0
    print(f"{hits} of {faulty} injected faults found; {false_alarms} errors on healthy runs")
    print(f"RESULT debugger_recall={recall:.2f} false_alarms={false_alarms}")


if __name__ == "__main__":
    main()
