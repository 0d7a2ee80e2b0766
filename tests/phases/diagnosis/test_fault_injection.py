"""Fault injection on the tiny model: train with one fault, then diagnose what the run produced.

Each test drives the phases directly (data -> training -> evaluation/probe -> diagnosis), no
graph, and checks the right kind is named with evidence and a patch that validates."""

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from training_test_data import (  # noqa: E402
    CITIES,
    NAMES,
    chat_rows,
    prompt_completion_rows,
    write_jsonl,
)

from llmfinetune_agent.config import RunConfig, apply_patch, parse_run_config  # noqa: E402
from models.builtin import CHAT_TEMPLATE  # noqa: E402
from models.config import ModelConfig  # noqa: E402
from phases.diagnosis import Diagnosis, diagnose_run, probe_generation, read_rows  # noqa: E402
from phases.training import train  # noqa: E402

# Eval rows unlike the training rows (other names, other shapes): memorization can't fit them.
HELD_OUT = [
    {"prompt": "Xavier is 31 and works as a teacher. JSON:", "completion": ' {"age": 31}'},
    {"prompt": "Where is the book? Answer:", "completion": " on the table in Berlin"},
    {"prompt": "Yuki lives in Seoul. JSON:", "completion": ' {"name": "Yuki", "city": "Seoul"}'},
]


def _config(tmp_path: Path, model_dir: Path, **sections: Any) -> RunConfig:
    raw: dict[str, Any] = {
        "data": {"train": str(tmp_path / "train.jsonl"), "max_length": 128},
        "model": {"name_or_path": str(model_dir)},
        "training": {"batch_size": 4, "logging_steps": 1, "save_steps": 1000},
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return parse_run_config(raw)


def _train(config: RunConfig, train_path: Path, eval_path: Path | None, out: Path):
    result = train(
        config.training,
        model=config.model,
        train_path=train_path,
        eval_path=eval_path,
        output_dir=out,
        max_length=config.data.max_length,
    )
    history = json.loads(Path(result.log_history_path).read_text())
    return result, history


def _only(diagnoses: list[Diagnosis], kind: str) -> Diagnosis:
    found = [d for d in diagnoses if d.kind == kind]
    assert found, f"no {kind} among {[d.kind for d in diagnoses]}"
    return found[0]


def _patched(config: RunConfig, diagnosis: Diagnosis) -> RunConfig:
    assert diagnosis.patch, f"{diagnosis.kind} has no patch"
    return apply_patch(config, diagnosis.patch)  # raises ConfigError if it does not validate


def test_learning_rate_10_is_divergence_with_a_lower_rate(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", prompt_completion_rows(16))
    config = _config(tmp_path, tiny_model_dir, training={"learning_rate": 10.0, "max_steps": 4})
    result, history = _train(config, data, None, tmp_path / "out")
    diagnoses = diagnose_run(config=config, log_history=history, training=result.to_dict())
    divergence = _only(diagnoses, "divergence")
    assert divergence.severity == "error"
    assert divergence.evidence["peak_loss"] > 3 * divergence.evidence["first_loss"]
    fixed = _patched(config, divergence)
    assert fixed.training.learning_rate <= 1e-3 < config.training.learning_rate
    assert not {"lr_too_high", "underfitting"} & {d.kind for d in diagnoses}


def test_five_examples_for_50_epochs_is_overfitting(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", prompt_completion_rows(5))
    held_out = write_jsonl(tmp_path / "eval.jsonl", HELD_OUT)
    config = _config(
        tmp_path,
        tiny_model_dir,
        training={
            "epochs": 50,
            "batch_size": 5,
            "learning_rate": 3e-3,
            "logging_steps": 5,
            "eval_steps": 10,
        },
    )
    _, history = _train(config, data, held_out, tmp_path / "out")
    overfitting = _only(diagnose_run(config=config, log_history=history), "overfitting")
    evidence = overfitting.evidence
    assert evidence["final_eval_loss"] > evidence["best_eval_loss"]
    assert evidence["final_train_loss"] < evidence["final_eval_loss"]
    assert _patched(config, overfitting).training.epochs < 50


def test_eval_rows_copied_into_train_is_leakage(tiny_model_dir: Path, tmp_path: Path) -> None:
    eval_rows = prompt_completion_rows(3)
    leaked = write_jsonl(tmp_path / "train.jsonl", HELD_OUT + prompt_completion_rows(8)[3:])
    held_out = write_jsonl(tmp_path / "eval.jsonl", HELD_OUT[:2] + eval_rows[:1])
    config = _config(tmp_path, tiny_model_dir, training={"max_steps": 2, "learning_rate": 1e-3})
    result, history = _train(config, leaked, None, tmp_path / "out")
    trained_on = json.loads(Path(result.args_path).read_text())["finetune_agent"]["train_path"]
    diagnoses = diagnose_run(
        config=config,
        log_history=history,
        train_rows=read_rows(trained_on),
        eval_rows=read_rows(held_out),
    )
    leakage = _only(diagnoses, "leakage")
    assert leakage.severity == "error"
    assert leakage.evidence["leaked_eval_rows"] == 2 and leakage.evidence["eval_rows"] == 3
    assert "Xavier" in leakage.evidence["examples"][0]


def test_half_the_rows_duplicated_is_duplicates(tiny_model_dir: Path, tmp_path: Path) -> None:
    from phases.data import prepare_data

    rows = prompt_completion_rows(16)[:8]
    source = write_jsonl(tmp_path / "train.jsonl", rows + rows[:4] + rows[:4])
    config = _config(
        tmp_path,
        tiny_model_dir,
        data={"deduplicate": False, "eval_fraction": 0.0},
        training={"max_steps": 2, "learning_rate": 1e-3},
    )
    prepared = prepare_data(config.data, output_dir=tmp_path / "data")
    train_path = tmp_path / "data" / "train.jsonl"
    _, history = _train(config, train_path, None, tmp_path / "out")
    duplicates = _only(
        diagnose_run(
            config=config,
            log_history=history,
            data_report=prepared.report.to_dict(),
            train_rows=read_rows(train_path),
        ),
        "duplicates",
    )
    assert duplicates.evidence["repeated_rows"] == 8 and duplicates.evidence["train_rows"] == 16
    assert duplicates.evidence["examples"][0]["times"] == 3
    assert _patched(config, duplicates).data.deduplicate is True
    assert len(source.read_text().splitlines()) == 16


def test_chat_template_without_end_token_never_stops(tiny_model_dir: Path, tmp_path: Path) -> None:
    no_end = CHAT_TEMPLATE.replace("message['content'] + '</s>'", "message['content']", 1)
    assert no_end != CHAT_TEMPLATE
    data = write_jsonl(tmp_path / "train.jsonl", chat_rows(8))
    config = _config(
        tmp_path,
        tiny_model_dir,
        model={"chat_template": no_end},
        training={"max_steps": 12, "learning_rate": 3e-3, "logging_steps": 4},
    )
    result, history = _train(config, data, None, tmp_path / "out")
    probe = probe_generation(
        result.model_path, data, max_new_tokens=12, base_model=config.model, limit=4
    )
    never_stops = _only(
        diagnose_run(config=config, log_history=history, generation=probe), "never_stops"
    )
    assert never_stops.severity == "error"
    assert never_stops.evidence["hit_limit"] == never_stops.evidence["samples"] == 4
    assert never_stops.evidence["template"]["in_use_closes_turn"] is False
    assert _patched(config, never_stops).model.chat_template is None


COUNTRY = {"Paris": "France", "Tokyo": "Japan", "Lima": "Peru", "Oslo": "Norway"}


def _trip_rows(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    """A trip -> JSON with its city and country: the tiny model learns it in ~50 steps."""
    return [
        {
            "prompt": f"{n} flew to {c}",
            "completion": f' {{"city": "{c}", "country": "{COUNTRY[c]}"}}',
        }
        for n, c in pairs
    ]


@pytest.mark.slow  # ~90 steps, a base and a tuned evaluation, a probe
def test_healthy_run_has_no_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    from phases.evaluation import compare_models

    # Held-out pairings of seen names and cities: right answers need the input.
    unseen = [(name, CITIES[(i + 1) % 4]) for i, name in enumerate(NAMES[:4])]
    pairs = [(n, c) for n in NAMES for c in CITIES if (n, c) not in unseen]
    data = write_jsonl(tmp_path / "train.jsonl", _trip_rows(pairs))
    held_out = write_jsonl(tmp_path / "eval.jsonl", _trip_rows(unseen))
    config = _config(
        tmp_path,
        tiny_model_dir,
        training={"epochs": 12, "learning_rate": 3e-3, "logging_steps": 4, "eval_steps": 24},
        evaluation={"metrics": ["rougeL", "exact_match", "perplexity"], "max_new_tokens": 16},
    )
    result, history = _train(config, data, held_out, tmp_path / "out")
    report = compare_models(
        config.evaluation,
        base=ModelConfig(name_or_path=str(tiny_model_dir)),
        tuned=result.model_path,
        eval_path=held_out,
        output_dir=tmp_path / "evaluation",
        cache_dir=tmp_path / "cache",
    )
    diagnoses = diagnose_run(
        config=config,
        log_history=history,
        training=result.to_dict(),
        train_rows=read_rows(data),
        eval_rows=read_rows(held_out),
        evaluation={"base": report.base.metrics, "tuned": report.tuned.metrics},
        predictions=[p.model_dump() for p in report.tuned.predictions],
        generation=probe_generation(result.model_path, held_out, max_new_tokens=16, limit=4),
    )
    answers = [(p.expected, p.got) for p in report.tuned.predictions]
    assert report.tuned.metrics["exact_match"] >= 0.75 > report.base.metrics["exact_match"], answers
    assert not [d for d in diagnoses if d.severity == "error"], [d.summary for d in diagnoses]
