"""A prompt run (`training.method: "prompt"`) through the whole run graph on the tiny Llama:
the weights stay as they were, the plan counts metric calls, a `prompt` artifact is registered
and the evaluation compares the plain instruction with the optimized prompt on the same rows."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from llmfinetune_agent.config import parse_run_config
from llmfinetune_agent.execution import open_service
from llmfinetune_agent.export import run_records
from llmfinetune_agent.stats import service_stats
from models.prompt_artifact import read_prompt_artifact
from tests.phases.training.training_test_data import write_jsonl

MAX_GATES = 8


def person_rows(count: int) -> list[dict[str, Any]]:
    """Chat rows turning a sentence about a person into JSON."""
    names = ["Ana", "Bo", "Cy", "Di", "Ed", "Fay", "Gus", "Hal", "Ivy", "Jo", "Kai", "Lu"]
    rows = []
    for i in range(count):
        name, age = names[i % len(names)], 20 + i
        answer = json.dumps({"name": name, "age": age})
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"{name} is {age} years old."},
                    {"role": "assistant", "content": answer},
                ]
            }
        )
    return rows


def _weights_digest(model_dir: Path) -> str:
    return hashlib.sha256(
        b"".join(p.read_bytes() for p in model_dir.glob("*.safetensors"))
    ).hexdigest()


def test_prompt_run_registers_a_prompt_and_compares_it_with_the_plain_instruction(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "people.jsonl", person_rows(24))
    config = {
        "name": "prompt-through-graph",
        "task": "Turn the sentence into JSON with name and age.",
        "model": {"name_or_path": str(tiny_model_dir)},
        "data": {"train": str(data), "eval_fraction": 0.25},
        "training": {
            "method": "prompt",
            "max_metric_calls": 12,
            "exemplars": 1,
            "exemplar_trials": 2,
            "max_held_out": 3,
            "reflection_max_new_tokens": 16,
        },
        "evaluation": {"metrics": ["exact_match", "rougeL"], "max_new_tokens": 8},
        "debugger": {"enabled": False},
        "hitl": {"approve_data": False},
    }
    before = _weights_digest(tiny_model_dir)
    with open_service() as service:
        run = service.create_run(parse_run_config(config))
        service.start(run.id)
        gates, plan_message = [], None
        for _ in range(MAX_GATES):
            pending = service.pending_interrupts(run.id)
            if not pending:
                break
            gates.append(pending[0]["kind"])
            plan_message = plan_message or pending[0]["message"]
            service.resume(run.id, decision={"decision": "approve", "comment": "ok"})
        service_record = service.require(run.id)
        status, state = service_record.status, service.state_values(run.id)
        models = service.store.list_models(run_id=run.id)
        stats = service_stats(service.store.database_url)
        [exported] = run_records(service)

    assert status == "completed", (service_record.error, state.get("reason"))
    assert gates == ["approve_plan", "approve_evaluation"]  # no mid-search checkpoint gate
    assert "metric calls" in plan_message
    assert state["plan"]["metric_calls"] == 12 + 2 * 3
    assert state["artifact"]["kind"] == "prompt"
    prompt = read_prompt_artifact(Path(state["artifact"]["path"]))
    assert prompt.model == str(tiny_model_dir)
    assert prompt.base_prompt == config["task"]
    assert state["training"]["global_step"] >= 12  # metric calls spent
    evaluation = state["evaluation"]
    assert set(evaluation["base"]) == set(evaluation["tuned"]) >= {"exact_match", "rougeL"}
    [registered] = models
    assert registered.kind == "prompt" and registered.format == "prompt"
    assert read_prompt_artifact(Path(registered.path)).system_prompt == prompt.system_prompt
    assert _weights_digest(tiny_model_dir) == before  # weights frozen
    # its card names the base model; no Hub relation (adapter, merge, quantized, finetune) fits
    card = (Path(state["run_dir"]) / "final" / "README.md").read_text()
    assert f'base_model: "{tiny_model_dir}"' in card, card[:300]
    assert "base_model_relation" not in card and "prompt" in card.split("---")[1]

    # The run in numbers, and exported with its config, decisions and metrics.
    assert stats["runs"]["by_method"] == {"prompt": 1}
    assert stats["runs"]["by_status"] == {"completed": 1}
    assert stats["runs"]["steps_by_method"]["prompt"] == state["training"]["global_step"]
    gates = stats["gates"]
    assert gates["answered"] == 2 and gates["waiting"] == 0, service_record.id
    assert gates["by_gate"]["approve_plan"]["decisions"] == {"approve": 1}
    assert gates["by_gate"]["approve_evaluation"]["wait_seconds"]["count"] == 1
    assert exported["config"]["training"]["method"] == "prompt"
    assert [d["gate"] for d in exported["decisions"]] == ["approve_plan", "approve_evaluation"]
    assert exported["metrics"]["tuned"] == evaluation["tuned"]
    assert exported["training"]["global_step"] == state["training"]["global_step"]


def test_the_reflection_model_can_be_any_langchain_chat_model() -> None:
    from llmfinetune_agent.chat_model import ChatModelError
    from llmfinetune_agent.pipeline import reflection_chat

    fake = "langchain_core.language_models.fake_chat_models:FakeListChatModel"
    base = {"model": {"name_or_path": "builtin:tiny-llama"}, "data": {"train": "x.jsonl"}}
    config = parse_run_config(
        {
            **base,
            "training": {
                "method": "prompt",
                "reflection_chat_model": fake,
                "reflection_chat_model_kwargs": {"responses": ["```Answer in JSON.```"]},
            },
        }
    )
    reflect = reflection_chat(config)
    assert reflect("How should the prompt change?") == "```Answer in JSON.```"
    assert reflection_chat(parse_run_config({**base, "training": {"method": "prompt"}})) is None
    missing = parse_run_config(
        {
            **base,
            "training": {"method": "prompt", "reflection_chat_model": "langchain_no_such_pkg:Chat"},
        }
    )
    with pytest.raises(ChatModelError, match="training.reflection_chat_model: cannot import"):
        reflection_chat(missing)


@pytest.mark.parametrize("chat_model", ["no_such_mod:Cls", "json:JSONDecoder"])
def test_a_reflection_chat_model_that_cannot_be_built_is_bad_input(
    tmp_path: Path, chat_model: str
) -> None:
    data = write_jsonl(tmp_path / "people.jsonl", person_rows(8))
    config = {
        "model": {"name_or_path": "builtin:tiny-llama"},
        "data": {"train": str(data), "eval_fraction": 0.25},
        "training": {"method": "prompt", "reflection_chat_model": chat_model},
        "debugger": {"enabled": False},
        "hitl": {"approve_plan": False, "approve_data": False, "approve_evaluation": False},
    }
    with open_service() as service:
        run = service.start(service.create_run(parse_run_config(config)).id)
    assert run.status == "failed"
    assert run.error.startswith("bad input: training.reflection_chat_model: "), run.error
    assert "error.log" not in run.error


@pytest.mark.parametrize(
    ("rows", "training", "error"),
    [
        (1, {}, "a prompt run needs at least 2 training rows"),
        (8, {"reflection_model": "builtin:nope"}, "training.reflection_model: unknown built-in"),
    ],
)
def test_a_prompt_run_that_cannot_work_fails_at_the_data_check(
    tmp_path: Path, rows: int, training: dict[str, Any], error: str
) -> None:
    """These failed in the trainer, after the data gate had been approved."""
    data = write_jsonl(tmp_path / "people.jsonl", person_rows(rows))
    held_out = write_jsonl(tmp_path / "held_out.jsonl", person_rows(12)[8:])
    config = {
        "model": {"name_or_path": "builtin:tiny-llama"},
        "data": {"train": str(data), "eval": str(held_out)},
        "training": {"method": "prompt", **training},
        "hitl": {"approve_plan": False, "approve_data": True, "approve_evaluation": False},
    }
    with open_service() as service:
        run = service.start(service.create_run(parse_run_config(config)).id)
    assert run.status == "failed" and run.pending_interrupt is None
    assert error in run.error, run.error
