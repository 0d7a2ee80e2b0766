"""Forking a run from any of its checkpoints (LangGraph time travel), with a config patch.

    history = run_history(service, run_id)          # checkpoints, newest first
    child = fork_run(service, run_id, checkpoint_id=history[3]["checkpoint_id"],
                     patch={"training": {"learning_rate": 1e-4}})
    service.resume(child.id)                         # proceeds through the normal runner

The child is a new run (own id, thread and directory, `parent_run_id` set). Its first
checkpoint holds the parent's state at that checkpoint with the patch applied and the results
the patch makes stale dropped, so the orchestrator redoes only those. The parent's prepared
data is hard-linked (it is only ever replaced, never written in place) and its training and
evaluation outputs are copied, so the parent's state and files stay untouched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from llmfinetune_agent.agents.gates import DecisionError, check_edited_inputs
from llmfinetune_agent.checkpointing import thread_checkpoints
from llmfinetune_agent.config import ConfigError, RunConfig, apply_patch, changed_sections
from llmfinetune_agent.execution import InvalidDecision, RunError, RunNotFound, RunService
from llmfinetune_agent.run_store import RunRecord
from llmfinetune_agent.sections import reset_approvals, stale_results

LINKED_DIRS = ("data",)  # immutable once written: hard links are safe and free
COPIED_DIRS = ("training", "evaluation")  # written in place by later steps: real copies


class CheckpointNotFound(RunNotFound):
    """No checkpoint of the run matches the given id."""


class CheckpointWithoutState(RunError):
    """The checkpoint holds no run state (the run's first, written before it began)."""


def run_history(service: RunService, run_id: str) -> list[dict[str, Any]]:
    """The run's checkpoints, newest first: id, node that wrote it, time, step, next nodes."""
    service.require(run_id)
    return thread_checkpoints(service.graph.checkpointer, run_id)


def find_checkpoint(service: RunService, run_id: str, checkpoint: str) -> dict[str, Any]:
    """The checkpoint whose id is `checkpoint` or starts with it (unambiguously)."""
    history = run_history(service, run_id)
    matches = (
        [c for c in history if c["checkpoint_id"].startswith(checkpoint)] if checkpoint else []
    )
    exact = [c for c in matches if c["checkpoint_id"] == checkpoint]
    if exact or len(matches) == 1:
        return (exact or matches)[0]
    if matches:
        raise InvalidDecision(f"checkpoint '{checkpoint}' is ambiguous: {len(matches)} match")
    raise CheckpointNotFound(
        f"run {run_id} has no checkpoint '{checkpoint}' (see: finetune-agent runs history {run_id})"
    )


def fork_run(
    service: RunService,
    run_id: str,
    *,
    checkpoint_id: str,
    patch: dict[str, Any] | None = None,
) -> RunRecord:
    """Create a child run continuing from `checkpoint_id` of `run_id`, with `patch` applied."""
    parent = service.require(run_id)
    found = find_checkpoint(service, run_id, checkpoint_id)
    cfg = {"configurable": {"thread_id": run_id, "checkpoint_id": found["checkpoint_id"]}}
    values = dict(service.graph.get_state(cfg).values or {})
    if not values.get("config"):
        raise CheckpointWithoutState(
            f"checkpoint {found['checkpoint_id']} holds no run state to fork from: it was "
            "written before the run began; fork from a later one"
        )
    old = RunConfig.model_validate(values["config"])
    try:
        new = apply_patch(old, patch) if patch else old
    except ConfigError as exc:
        issues = "; ".join(map(str, exc.issues))
        raise InvalidDecision(f"the patch is not a valid config: {issues}") from None
    check_patched_inputs(old, new, values)
    _check_parent_files(values, changed_sections(old, new), run_id)

    def prepare(child_id: str, child_dir: Path) -> None:
        # Before the child is queued: a worker polling meanwhile would find it without this
        # state and start it from scratch, and this write would then land on its checkpoints.
        _share_artifacts(Path(parent.run_dir), child_dir)
        state = _moved(values, parent.run_dir, str(child_dir))
        state.update(run_id=child_id, run_dir=str(child_dir), config=new.model_dump(mode="json"))
        state.update(outcome="running", reason="")
        _drop_stale(state, changed_sections(old, new))
        state["log"] = [
            *state.get("log", []),
            {
                "next": "orchestrator",
                "reason": f"forked from run {run_id} at checkpoint {found['checkpoint_id']}",
                "iteration": state.get("iteration", 1),
                "patch": patch,
            },
        ]
        child_cfg = {"configurable": {"thread_id": child_id}}
        service.graph.update_state(child_cfg, state, as_node="__start__")
        service.store.append_event(
            run_id=child_id,
            kind="forked",
            payload={"parent": run_id, "checkpoint_id": found["checkpoint_id"], "patch": patch},
        )

    return service.create_run(new, parent_run_id=run_id, prepare=prepare)


def check_patched_inputs(old: RunConfig, new: RunConfig, state: dict[str, Any]) -> None:
    """`InvalidDecision` for a patch a gate edit would be refused for, judged against the state
    at the fork checkpoint: a local path it changes that does not exist, a local model whose
    config.json cannot be read, a method that cannot learn from the data already prepared."""
    try:
        check_edited_inputs(old, new, state)
    except DecisionError as exc:  # the gate's words, about a patch here
        raise InvalidDecision(str(exc).replace("the edit's ", "the patch's ", 1)) from None


# The files a fork goes on from, by the state result that names them.
_NEEDED_FILES = {"data": ("train_path", "eval_path"), "training": ("model_path",)}


def _check_parent_files(values: dict[str, Any], sections: list[str], run_id: str) -> None:
    """`InvalidDecision` when a file the child would go on from (prepared data, the trained
    model) is gone from the parent's folder; else the child was made and failed on its own
    copy's path, which named no parent file."""
    kept = {**values}
    _drop_stale(kept, sections)
    missing = [
        path
        for result, keys in _NEEDED_FILES.items()
        for key in keys
        if isinstance(kept.get(result), dict)
        and (path := kept[result].get(key))
        and not (key == "eval_path" and not kept[result].get("eval_rows"))
        and not Path(path).exists()
    ]
    if missing:
        raise InvalidDecision(
            f"run {run_id}'s files at this checkpoint are gone ({', '.join(missing)}): the "
            "fork would go on from them. Fork at an earlier checkpoint (before they were made), "
            "or patch the section that makes them (e.g. training) so they are made again."
        )


def _drop_stale(values: dict[str, Any], sections: list[str]) -> None:
    """The results (and their approvals) a patched section invalidates, as an edit does."""
    approved = reset_approvals(dict(values.get("approved") or {}), sections)
    for result in stale_results(sections):
        values[result] = None
    if values.get("evaluation") is None:
        approved.pop("approve_evaluation", None)
    values["approved"] = approved


def _moved(value: Any, old_dir: str, new_dir: str) -> Any:
    """`value` with every path inside the parent's run directory moved to the child's."""
    if isinstance(value, str) and (value == old_dir or value.startswith(old_dir + os.sep)):
        return new_dir + value[len(old_dir) :]
    if isinstance(value, dict):
        return {k: _moved(v, old_dir, new_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_moved(v, old_dir, new_dir) for v in value]
    return value


def _share_artifacts(parent_dir: Path, child_dir: Path) -> None:
    for name in LINKED_DIRS:
        if (parent_dir / name).is_dir():
            shutil.copytree(parent_dir / name, child_dir / name, copy_function=_link_or_copy)
    for name in COPIED_DIRS:
        if (parent_dir / name).is_dir():
            shutil.copytree(parent_dir / name, child_dir / name)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not allowed
        shutil.copy2(source, target)
