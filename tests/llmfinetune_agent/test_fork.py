"""Forking a run at its evaluation gate with a patch: the child trains with the patch, reuses
the parent's data and base evaluation, and the parent's state and files stay untouched."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmfinetune_agent.cli import app
from llmfinetune_agent.config import load_run_config
from llmfinetune_agent.execution import InvalidDecision, open_service
from llmfinetune_agent.fork import CheckpointNotFound, fork_run, run_history

REPO = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path) -> Path:
    config = json.loads((REPO / "configs" / "quickstart-tiny.json").read_text())
    config["data"]["train"] = str(REPO / "configs" / "data" / "quickstart" / "train.jsonl")
    config["training"].update({"max_steps": 2, "save_steps": 100})
    config["evaluation"].update({"metrics": ["rougeL"], "max_examples": 3, "max_new_tokens": 6})
    config["hitl"] = {
        "approve_plan": False,
        "approve_data": False,
        "training_checkpoints": [],
        "approve_evaluation": True,
        "approve_fixes": True,
    }
    path = tmp_path / "fork.json"
    path.write_text(json.dumps(config))
    return path


def _files(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_fork_at_the_evaluation_gate_with_a_patch(tmp_path: Path) -> None:
    with open_service() as service:
        parent = service.create_run(load_run_config(_config(tmp_path)))
        assert service.start(parent.id).status == "awaiting_approval"
        assert service.pending_interrupts(parent.id)[0]["kind"] == "approve_evaluation"
        history = run_history(service, parent.id)
        at_gate = next(c for c in history if c["next"] == ["gate_evaluation"])
        assert {"checkpoint_id", "node", "time"} <= set(at_gate)
        parent_state = service.state_values(parent.id)
        parent_files = _files(Path(parent.run_dir))

        with pytest.raises(CheckpointNotFound):
            fork_run(service, parent.id, checkpoint_id="nope")
        with pytest.raises(InvalidDecision, match="learning_rate"):
            fork_run(
                service,
                parent.id,
                checkpoint_id=at_gate["checkpoint_id"],
                patch={"training": {"learning_rate": -1}},
            )

        patch = {"training": {"learning_rate": 1e-4}}
        child = fork_run(service, parent.id, checkpoint_id=at_gate["checkpoint_id"], patch=patch)
        assert child.parent_run_id == parent.id and child.id != parent.id
        record = service.resume(child.id)
        assert record.status == "awaiting_approval", record.error
        assert service.pending_interrupts(child.id)[0]["kind"] == "approve_evaluation"
        values = service.state_values(child.id)

        # The parent is unchanged: same state, same files.
        assert service.state_values(parent.id) == parent_state
        assert _files(Path(parent.run_dir)) == parent_files
        assert service.require(parent.id).status == "awaiting_approval"

    # The child trained with the patch, in its own directory...
    assert values["config"]["training"]["learning_rate"] == 1e-4
    args = json.loads(Path(values["training"]["args_path"]).read_text())
    assert args["learning_rate"] == 1e-4
    assert values["training"]["model_path"].startswith(child.run_dir)
    # ...on the parent's data, reused (hard links, no new data preparation)...
    assert values["data"]["data_hash"] == parent_state["data"]["data_hash"]
    child_train, parent_train = (
        Path(values["data"]["train_path"]),
        Path(parent_state["data"]["train_path"]),
    )
    assert child_train.parent.parent == Path(child.run_dir)
    assert child_train.stat().st_ino == parent_train.stat().st_ino
    after_fork = values["log"][len(parent_state["log"]) :]
    assert "forked from run" in after_fork[0]["reason"]
    # the training patch makes the plan stale: it is estimated again before training
    assert [e["next"] for e in after_fork[1:]] == [
        "planner",
        "trainer",
        "evaluator",
        "gate_evaluation",
    ]
    # ...and the base model's evaluation came from the cache the parent filled.
    assert values["evaluation"]["base_from_cache"] is True


def test_history_and_fork_over_the_cli(tmp_path: Path) -> None:
    with open_service() as service:
        parent = service.create_run(load_run_config(_config(tmp_path)))
        service.start(parent.id)
    runner = CliRunner()
    shown = runner.invoke(app, ["runs", "history", parent.id])
    assert shown.exit_code == 0, shown.output
    line = next(line for line in shown.output.splitlines() if "gate_evaluation" in line)
    checkpoint = line.split()[0]
    bad = runner.invoke(app, ["fork", parent.id, "--at", checkpoint, "--set", "training.lr=1"])
    assert bad.exit_code == 2 and "training.lr" in bad.output
    # The run's first checkpoint, written before it began, is the user's wrong pick: exit 2.
    first = shown.output.splitlines()[-2].split()[0]
    empty = runner.invoke(app, ["fork", parent.id, "--at", first, "--no-run"])
    assert empty.exit_code == 2 and "holds no run state to fork from" in empty.output
    forked = runner.invoke(
        app,
        ["fork", parent.id, "--at", checkpoint, "--set", "evaluation.max_new_tokens=4", "--no-run"],
    )
    assert forked.exit_code == 0, forked.output
    child_id = forked.output.split("run ", 1)[1].split()[0]
    shown = json.loads(runner.invoke(app, ["runs", "show", child_id, "--json"]).stdout)
    assert shown["parent_run_id"] == parent.id and shown["status"] == "queued"


def test_a_patch_is_refused_as_a_gate_edit_is(tmp_path: Path, monkeypatch) -> None:
    config = json.loads(_config(tmp_path).read_text())
    config["hitl"].update(approve_data=True)  # stop at the data gate: the data kind is known
    path = tmp_path / "at-data.json"
    path.write_text(json.dumps(config))
    with open_service() as service:
        parent = service.create_run(load_run_config(path))
        assert service.start(parent.id).status == "awaiting_approval"
        assert service.state_values(parent.id)["data"]["kind"] == "chat"
        latest = run_history(service, parent.id)[0]["checkpoint_id"]
        with pytest.raises(InvalidDecision, match="the patch's training.method 'dpo' cannot learn"):
            fork_run(
                service, parent.id, checkpoint_id=latest, patch={"training": {"method": "dpo"}}
            )
        with pytest.raises(InvalidDecision, match="the patch's data.eval: .*no such file"):
            fork_run(
                service, parent.id, checkpoint_id=latest, patch={"data": {"eval": "/no.jsonl"}}
            )
        runs_before = service.store.list_runs()[1]

    runner = CliRunner()
    method = runner.invoke(app, ["fork", parent.id, "--at", latest, "--set", "training.method=dpo"])
    assert method.exit_code == 2 and "cannot learn from this run's 'chat' data" in method.output
    # A relative path is read from the folder the command runs in, as in a gate edit.
    monkeypatch.chdir(tmp_path)
    missing = runner.invoke(app, ["fork", parent.id, "--at", latest, "--set", "data.eval=e.jsonl"])
    assert missing.exit_code == 2 and f"{tmp_path / 'e.jsonl'}: no such file" in missing.output
    with open_service() as service:
        assert service.store.list_runs()[1] == runs_before  # nothing was created
    (tmp_path / "e.jsonl").write_text((REPO / "configs/data/quickstart/eval.jsonl").read_text())
    forked = runner.invoke(
        app, ["fork", parent.id, "--at", latest, "--set", "data.eval=e.jsonl", "--no-run"]
    )
    assert forked.exit_code == 0, forked.output
    child_id = forked.output.split("run ", 1)[1].split()[0]
    with open_service() as service:
        assert service.require(child_id).config["data"]["eval"] == str(tmp_path / "e.jsonl")


def test_a_fork_from_files_that_are_gone_is_refused_before_a_run_is_made(tmp_path: Path) -> None:
    """With the parent's model or data deleted, the child was made and then failed on its own
    copy's path ("model path not found: <child>/training/...")."""
    import shutil

    with open_service() as service:
        parent = service.create_run(load_run_config(_config(tmp_path)))
        assert service.start(parent.id).status == "awaiting_approval"
        at_gate = next(
            c for c in run_history(service, parent.id) if c["next"] == ["gate_evaluation"]
        )
        state = service.state_values(parent.id)
        shutil.rmtree(state["training"]["model_path"])
        runs_before = service.store.list_runs(limit=500)[1]
        with pytest.raises(InvalidDecision, match="files at this checkpoint are gone"):
            fork_run(service, parent.id, checkpoint_id=at_gate["checkpoint_id"])
        assert service.store.list_runs(limit=500)[1] == runs_before
        # A patch that trains again needs only the data, which is still there.
        patch = {"training": {"learning_rate": 1e-4}}
        fork_run(service, parent.id, checkpoint_id=at_gate["checkpoint_id"], patch=patch)
        Path(state["data"]["train_path"]).unlink()
        with pytest.raises(InvalidDecision, match="train.jsonl"):
            fork_run(service, parent.id, checkpoint_id=at_gate["checkpoint_id"], patch=patch)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("training=1", "training.learning_rate=2"),  # was a TypeError traceback
        ("training.learning_rate=2", 'training={"epochs": 1}'),  # dropped the learning rate
        ("training.epochs=2", "training.epochs=3"),
    ],
)
def test_sets_that_contradict_each_other_are_refused(first: str, second: str) -> None:
    """Checked before the run is looked up: no run is needed to be refused."""
    result = CliRunner().invoke(
        app, ["fork", "no-run", "--at", "x", "--set", first, "--set", second]
    )
    assert result.exit_code == 2
    assert result.output == (
        f"error: --set {first!r} and --set {second!r} set the same field (or one inside the "
        "other): give it once\n"
    )
