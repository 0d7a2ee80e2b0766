"""Whole runs through the graph: gates over the CLI, edits, concurrent resumes, crash recovery,
and the same run on PostgreSQL. A small config (a few training steps) keeps them quick."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmfinetune_agent.cli import app
from llmfinetune_agent.execution import RunError, open_service
from phases.training.checkpoints import is_valid_checkpoint

REPO = Path(__file__).resolve().parents[2]
QUICKSTART_DATA = REPO / "configs" / "data" / "quickstart" / "train.jsonl"


def small_config(tmp_path: Path, **training: Any) -> Path:
    """The quickstart config cut down to a few steps and a few eval examples."""
    config = json.loads((REPO / "configs" / "quickstart-tiny.json").read_text())
    config["data"]["train"] = str(QUICKSTART_DATA)
    config["training"].update({"max_steps": 4, "save_steps": 2, **training})
    config["evaluation"].update({"max_examples": 4, "max_new_tokens": 8})
    path = tmp_path / "small.json"
    path.write_text(json.dumps(config))
    return path


def cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def show(run_id: str) -> dict[str, Any]:
    result = cli("runs", "show", run_id, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def run_id_of(output: str) -> str:
    return output.split("run ", 1)[1].split()[0]


def test_gates_over_the_cli_from_plan_to_completed(tmp_path: Path) -> None:
    started = cli("run", str(small_config(tmp_path)))
    assert started.exit_code == 3, started.output
    run_id = run_id_of(started.output)
    assert f"finetune-agent resume {run_id} --approve" in started.output
    assert show(run_id)["pending_interrupt"]["kind"] == "approve_plan"

    seen = []
    for _ in range(6):
        kind = show(run_id)["pending_interrupt"]["kind"]
        seen.append(kind)
        step = cli("resume", run_id, "--approve", "--comment", f"ok {kind}")
        if step.exit_code != 3:
            break
    assert step.exit_code == 0, step.output
    assert seen == ["approve_plan", "approve_data", "training_checkpoint", "approve_evaluation"]

    info = show(run_id)
    assert info["status"] == "completed" and info["pending_interrupt"] is None
    assert [d["gate"] for d in info["decisions"]] == seen
    assert all(d["decision"] == "approve" and d["comment"] for d in info["decisions"])
    assert set(info["metrics"]["tuned"]) >= {"rougeL", "bleu", "exact_match", "perplexity"}
    assert set(info["metrics"]["base"]) == set(info["metrics"]["tuned"])

    final = Path(info["model_path"])
    card = (final / "README.md").read_text()
    assert card_decisions(card) == [(kind, "approve", f"ok {kind}") for kind in seen]
    assert json.loads((final / "run_config.json").read_text())["training"]["max_steps"] == 4

    # The final folder loads with plain transformers, as its card says, and is the tuned model.
    from models.loading import resolve_model_path

    prompt = json.loads(QUICKSTART_DATA.read_text().splitlines()[0])["messages"][:1]
    tuned = greedy_answer(final, prompt)
    base = greedy_answer(Path(resolve_model_path("builtin:tiny-llama")), prompt)
    assert tuned.strip() and tuned != base  # measured: quotes and spaces vs. 16 newlines


def card_decisions(card: str) -> list[tuple[str, str, str] | str]:
    """(gate, decision, comment) of each line of a model card's Decisions section (a line of
    another shape is kept whole, so an assertion shows it)."""
    section = card.split("\n## Decisions\n\n", 1)[1].split("\n\n", 1)[0]
    line = re.compile(r"^- \S+ `(\w+)`: \*\*(\w+)\*\*(?: — (.*))?$")
    return [(m.groups() if (m := line.match(row)) else row) for row in section.splitlines()]


def greedy_answer(model_dir: Path, messages: list[dict[str, str]]) -> str:
    """The model's greedy reply to a chat turn, loaded with transformers alone."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    output = model.generate(**inputs, max_new_tokens=16, do_sample=False)
    return tokenizer.decode(output[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def test_edit_at_plan_is_applied_and_an_invalid_edit_keeps_waiting(tmp_path: Path) -> None:
    run_id = run_id_of(cli("run", str(small_config(tmp_path))).output)
    pending = show(run_id)["pending_interrupt"]

    bad = cli("resume", run_id, "--edit", '{"training": {"learning_rate": -1}}')
    assert bad.exit_code == 2 and "training.learning_rate" in bad.output
    assert show(run_id)["pending_interrupt"]["id"] == pending["id"]
    assert show(run_id)["status"] == "awaiting_approval"

    edited = cli("resume", run_id, "--edit", '{"training": {"learning_rate": 0.0123}}')
    assert edited.exit_code == 3, edited.output
    info = show(run_id)
    assert info["pending_interrupt"]["kind"] == "approve_data"
    assert info["decisions"][0]["decision"] == "edit"
    assert info["decisions"][0]["patch"] == {"training": {"learning_rate": 0.0123}}
    resolved = json.loads((Path(info["run_dir"]) / "config.json").read_text())
    assert resolved["training"]["learning_rate"] == 0.0123


def test_a_decision_that_cannot_work_keeps_the_run_waiting(tmp_path: Path, monkeypatch) -> None:
    run_id = run_id_of(cli("run", str(small_config(tmp_path))).output)
    pending = show(run_id)["pending_interrupt"]
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("[]")
    refused = {
        '{"data": {"train": "/no/such/train.jsonl"}}': (
            "the edit's data.train: /no/such/train.jsonl: no such file or directory"
        ),
        json.dumps({"model": {"name_or_path": str(broken)}}): (
            f"the edit's model: cannot load model {broken / 'config.json'}: it holds a JSON list"
        ),
        # The data check found chat rows; DPO learns from preference pairs only.
        '{"training": {"method": "dpo"}}': (
            "the edit's training.method 'dpo' cannot learn from this run's 'chat' data"
        ),
    }
    for patch, said in refused.items():
        bad = cli("resume", run_id, "--edit", patch)
        assert bad.exit_code == 2 and said in bad.output, bad.output
        assert show(run_id)["pending_interrupt"]["id"] == pending["id"]
    misplaced = cli("resume", run_id, "--approve", "--route", "continue")
    assert misplaced.exit_code == 2, misplaced.output
    assert "route goes with approve_fixes, not with approve_plan" in misplaced.output
    # A relative path is read from where the command runs, whichever process reads it later.
    monkeypatch.chdir(tmp_path)
    Path("mine.jsonl").write_text(QUICKSTART_DATA.read_text())
    edited = cli("resume", run_id, "--edit", '{"data": {"train": "mine.jsonl"}}')
    assert edited.exit_code == 3, edited.output
    info = show(run_id)
    assert info["decisions"][0]["patch"] == {"data": {"train": str(tmp_path / "mine.jsonl")}}
    resolved = json.loads((Path(info["run_dir"]) / "config.json").read_text())
    assert resolved["data"]["train"] == str(tmp_path / "mine.jsonl")


def test_an_edit_to_a_missing_reflection_model_keeps_the_run_waiting(tmp_path: Path) -> None:
    config = json.loads(small_config(tmp_path).read_text())
    config["training"] = {"method": "prompt", "max_metric_calls": 4}
    path = tmp_path / "prompt.json"
    path.write_text(json.dumps(config))
    run_id = run_id_of(cli("run", str(path)).output)
    pending = show(run_id)["pending_interrupt"]
    missing = tmp_path / "no-such-model"
    bad = cli(
        "resume", run_id, "--edit", json.dumps({"training": {"reflection_model": str(missing)}})
    )
    assert bad.exit_code == 2, bad.output
    assert (
        f"the edit's training.reflection_model: {missing}: no such file or directory" in bad.output
    )
    assert show(run_id)["pending_interrupt"]["id"] == pending["id"]


def test_a_method_that_cannot_use_the_data_fails_before_any_gate(tmp_path: Path) -> None:
    result = cli("run", str(small_config(tmp_path, method="dpo")))
    assert result.exit_code == 2, result.output
    assert "holds 'chat' data, which training method 'dpo' cannot use" in result.output
    run_id = run_id_of(result.output)
    assert show(run_id)["decisions"] == []  # nobody was asked to approve a run that cannot train


def test_a_run_with_nothing_held_out_fails_before_any_gate(tmp_path: Path) -> None:
    path = small_config(tmp_path)
    config = json.loads(path.read_text())
    config["data"]["eval_fraction"] = 0.0  # and no data.eval: nothing to evaluate on
    path.write_text(json.dumps(config))
    result = cli("run", str(path))
    assert result.exit_code == 2, result.output
    assert "no rows are held out for evaluation" in result.output
    assert show(run_id_of(result.output))["decisions"] == []


def test_two_concurrent_resumes_only_one_proceeds(tmp_path: Path) -> None:
    run_id = run_id_of(cli("run", str(small_config(tmp_path))).output)
    barrier, outcomes = threading.Barrier(2), []

    def approve() -> None:
        with open_service() as service:
            barrier.wait()
            try:
                service.resume(run_id, decision={"decision": "approve"})
                outcomes.append("proceeded")
            except RunError as exc:
                outcomes.append(exc.code)

    threads = [threading.Thread(target=approve) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "proceeded"]
    info = show(run_id)
    assert [d["gate"] for d in info["decisions"]] == ["approve_plan"]
    assert info["pending_interrupt"]["kind"] == "approve_data"


@pytest.mark.slow
def test_sigkill_during_training_then_resume_continues_from_a_checkpoint(tmp_path: Path) -> None:
    config = small_config(tmp_path, max_steps=40, save_steps=4)
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmfinetune_agent.cli", "run", str(config), "--auto-approve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    runs = Path(os.environ["FINETUNE_AGENT_HOME"]) / "runs"
    deadline = time.monotonic() + 300
    # A checkpoint counts once its trainer_state.json is whole (killed mid-write, it is rightly
    # discarded on resume).
    while time.monotonic() < deadline and not any(
        map(is_valid_checkpoint, runs.glob("*/training/*/checkpoints/checkpoint-*"))
    ):
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (run_dir,) = runs.iterdir()
    assert show(run_dir.name)["status"] == "running"  # left by the dead process

    resumed = cli("resume", run_dir.name, "--auto-approve")
    assert resumed.exit_code == 0, resumed.output
    info = show(run_dir.name)
    assert info["status"] == "completed" and info["training"]["global_step"] == 40
    from llmfinetune_agent.run_store import RunStore
    from llmfinetune_agent.settings import Settings

    events = RunStore(Settings.from_env().database_url).list_events(run_id=run_dir.name)
    kinds = [e.kind for e in events]
    after_crash = kinds.index("resumed")
    restart = next(e.payload for e in events[after_crash:] if e.kind == "training_resumed")
    assert restart["step"] > 0  # from the last checkpoint, not from step 0


@pytest.mark.postgres
def test_the_same_run_on_postgres(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINETUNE_AGENT_DATABASE_URL", postgres_url)
    started = cli("run", str(small_config(tmp_path)))
    assert started.exit_code == 3, started.output
    run_id = run_id_of(started.output)
    finished = cli("resume", run_id, "--approve", "--auto-approve")
    assert finished.exit_code == 0, finished.output
    info = show(run_id)
    assert info["status"] == "completed" and len(info["decisions"]) == 4
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = %s", (run_id,)
        ).fetchone()
    assert count > 0


def test_fixes_gate_over_the_cli_select_and_route(tmp_path: Path) -> None:
    """Reject an evaluation, then approve one diagnosis's fix with `--select` and force the
    route with `--route`: iteration 2 retrains from step 0 with that fix alone."""
    small = small_config(tmp_path, max_steps=6, learning_rate=1e-3, logging_steps=1)
    config = json.loads(small.read_text())  # six logged steps, loss still falling: underfitting
    config["hitl"].update(approve_plan=False, approve_data=False, training_checkpoints=[])
    config["evaluation"]["thresholds"] = {"rougeL": 0.99}
    path = tmp_path / "fixes.json"
    path.write_text(json.dumps(config))

    started = cli("run", str(path))
    assert started.exit_code == 3, started.output
    run_id = run_id_of(started.output)
    rejected = cli("resume", run_id, "--reject", "--comment", "too weak")
    assert rejected.exit_code == 3, rejected.output
    pending = show(run_id)["pending_interrupt"]
    assert pending["kind"] == "approve_fixes"
    fixable = [d for d in pending["details"]["diagnoses"] if d["patch"]]
    chosen = next(d for d in fixable if d["kind"] == "underfitting")

    bad = cli("resume", run_id, "--approve", "--route", "sideways")
    assert bad.exit_code == 2 and "route: 'retrain' or 'continue'" in bad.output
    bad = cli("resume", run_id, "--reject", "--select", "0")
    assert bad.exit_code == 2 and "go with --approve or --edit" in bad.output
    assert show(run_id)["pending_interrupt"]["id"] == pending["id"]  # still waiting

    fixed = cli(
        "resume", run_id, "--approve", "--select", str(chosen["index"]), "--route", "retrain"
    )
    assert fixed.exit_code == 3, fixed.output  # iteration 2 waits at its evaluation gate
    info = show(run_id)
    first, second = info["iterations"]
    assert first["fix"] == chosen["patch"] and second["route"] == "retrain"
    assert first["decisions"][-1]["select"] == [chosen["index"]]
    assert info["training"]["resumed_from_step"] == 0
    assert info["training"]["total_steps"] > first["training"]["global_step"]


def test_the_interactive_fixes_prompt_asks_for_indexes_and_route() -> None:
    from llmfinetune_agent.cli.display import RunDisplay
    from llmfinetune_agent.cli.run_cmd import _ask

    pending = {
        "id": "i1",
        "kind": "approve_fixes",
        "message": "The debugger found 2 problem(s).",
        "details": {"diagnoses": []},
        "options": ["approve", "reject", "edit"],
    }
    answers = "approve\n0,x\ncontinue\n0,2\ncontinue\nlonger\n"  # a bad index list is asked again
    with CliRunner().isolation(input=answers) as streams:
        decision = _ask(RunDisplay(), pending)
        shown = b"".join(stream.getvalue() for stream in streams if stream is not None)
    assert decision == {
        "decision": "approve",
        "select": [0, 2],
        "route": "continue",
        "comment": "longer",
    }
    assert b"select: indexes like 0,2" in shown
    with CliRunner().isolation(input="reject\nno\n"):
        assert _ask(RunDisplay(), pending) == {"decision": "reject", "comment": "no"}


def test_stats_stop_counting_the_gate_of_a_cancelled_run(tmp_path: Path) -> None:
    """`stats` read only interrupts and decisions from the event log, so a gate whose run
    was cancelled counted as waiting forever."""
    started = cli("run", str(small_config(tmp_path)))
    assert started.exit_code == 3, started.output
    waiting = json.loads(cli("stats", "--json").stdout)["gates"]["waiting"]
    assert cli("cancel", run_id_of(started.output)).exit_code == 0
    assert json.loads(cli("stats", "--json").stdout)["gates"]["waiting"] == waiting - 1


def _dead_owner() -> str:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return f"{socket.gethostname()}:{gone.pid}:dead"


def test_a_run_killed_as_its_decision_starts_waits_at_its_gate_again(tmp_path: Path) -> None:
    """Killed just after claiming the run to apply a decision, a run sat `running` at its gate:
    `resume` said "give a decision" and `resume --approve` said "not waiting at a gate"."""
    started = cli("run", str(small_config(tmp_path)))
    run_id = run_id_of(started.output)
    with open_service() as service:
        assert service.store.claim_run(run_id=run_id, owner=_dead_owner())
    assert show(run_id)["status"] == "running"
    again = cli("resume", run_id)
    assert again.exit_code == 3, again.output
    assert show(run_id)["status"] == "awaiting_approval"
    approved = cli("resume", run_id, "--approve", "--gate", "approve_plan")
    assert approved.exit_code == 3, approved.output
    assert show(run_id)["pending_interrupt"]["kind"] == "approve_data"


def test_a_decision_accepted_with_no_worker_left_is_carried_out_by_resume(tmp_path: Path) -> None:
    """Accepted over REST by a server without workers that then stopped, a decision left the
    run `queued` with nothing to carry it out but a worker."""
    from llmfinetune_agent.execution import accept_decision

    started = cli("run", str(small_config(tmp_path)))
    run_id = run_id_of(started.output)
    with open_service() as service:
        interrupt_id = service.pending_interrupts(run_id)[0]["id"]
        accept_decision(
            service, run_id=run_id, interrupt_id=interrupt_id, decision={"decision": "approve"}
        )
    assert show(run_id)["status"] == "queued"
    other = cli("resume", run_id, "--reject")
    assert other.exit_code == 2 and "has a decision accepted for its gate (approve)" in other.output
    carried = cli("resume", run_id)
    assert carried.exit_code == 3, carried.output
    assert show(run_id)["pending_interrupt"]["kind"] == "approve_data"
