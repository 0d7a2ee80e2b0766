"""The graph state of one run: ids, paths, hashes, metrics and the decision log — never models.

State is rewritten into the checkpoint store at every step, so it holds only small, plain
JSON values. Lists that grow (decisions, the orchestrator's log) use an append reducer.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, get_type_hints

# pydantic (LangGraph's JSON schemas for Studio) needs typing_extensions' TypedDict on 3.11.
from typing_extensions import NotRequired, TypedDict

from llmfinetune_agent.artifacts import Artifact

GateKind = Literal[
    "approve_plan",
    "approve_data",
    "training_checkpoint",
    "approve_evaluation",
    "approve_fixes",
    "approve_release",
]
Outcome = Literal["running", "completed", "cancelled", "failed"]


class Decision(TypedDict):
    """One human (or auto-approve) decision at a gate."""

    gate: str
    decision: Literal["approve", "reject", "edit"]
    patch: dict[str, Any] | None
    comment: str
    time: str
    iteration: int
    route: NotRequired[str]
    """approve_fixes: how the next iteration trains (retrain, continue, regenerate_data,
    reevaluate)."""
    route_reason: NotRequired[str]
    """approve_fixes: why that route (e.g. why continuing was not possible)."""


class RunState(TypedDict, total=False):
    """Everything the orchestrator routes on, as small JSON values."""

    run_id: str
    """The run's id; also the LangGraph thread id."""
    run_dir: str
    """Absolute path of the run directory holding every artifact."""
    config: dict[str, Any]
    """The current resolved run config (edits are applied here)."""
    data: dict[str, Any] | None
    """Prepared data: paths of train/eval jsonl, kind, format, counts, data hash, report path."""
    plan: dict[str, Any] | None
    """The training estimate shown at the plan gate (steps, time, memory)."""
    training: dict[str, Any] | None
    """Latest training result: status, global/total steps, checkpoint and model paths."""
    artifact: Artifact | None
    """What the latest training produced (`{kind, path, parent, ...}`): the evaluator and
    finalize work from it by its kind."""
    warm_start: dict[str, Any] | None
    """The 'continue' route: train on from `checkpoint` (iteration `from_iteration`, at `step`)
    instead of the base model, while `key` (model, data, settings) still matches."""
    evaluation: dict[str, Any] | None
    """Base vs tuned metrics, thresholds passed, report paths."""
    diagnoses: list[dict[str, Any]] | None
    """The debugger's latest diagnoses with their proposed config patches."""
    fix_request: dict[str, Any] | None
    """The reviewer's answer at the fixes gate, until the apply_fixes node applies it."""
    post_training: dict[str, Any] | None
    """The post-training candidates table: each candidate (merge, quantized, GGUF) with its
    measurements, gate verdict and alias, and the champion's index."""
    release: dict[str, Any] | None
    """The release gate's answer: which candidates (by index) to register."""
    final: dict[str, Any] | None
    """The finalized model: path, registry id, model card path."""
    approved: dict[str, bool]
    """Gates passed in the current iteration (keys: gate name, or 'training_checkpoint@0.5')."""
    decisions: Annotated[list[Decision], operator.add]
    """Every decision taken, in order."""
    log: Annotated[list[dict[str, Any]], operator.add]
    """The orchestrator's routing decisions, each with its reason."""
    iteration: int
    """Improvement iteration, starting at 1."""
    iterations: Annotated[list[dict[str, Any]], operator.add]
    """Finished iterations: config patch, metrics, diagnoses, decisions, the fix applied."""
    outcome: Outcome
    """Where the run stands; 'completed', 'cancelled' and 'failed' end it."""
    reason: str
    """Why the run ended, when it ended early."""


def _run_input_keys() -> dict[str, Any]:
    """RunState's keys, plus what a plain run config brings at the top level: its sections
    (from the sections table, so a new section needs no change here), `name`, `task`, and
    Studio's `config_dir`."""
    from llmfinetune_agent.sections import SECTIONS

    keys: dict[str, Any] = get_type_hints(RunState, include_extras=True)
    for name in SECTIONS:
        keys.setdefault(name, dict[str, Any])
    return {**keys, "config_dir": str, "name": str, "task": str}


RunInput = TypedDict("RunInput", _run_input_keys(), total=False)  # type: ignore[misc]
"""What a graph run may start from (the graph's input schema): the service's initial state,
`{"config": {...}}`, or a plain run config with its sections at the top level — as a LangGraph
Studio user pastes it. The `start` node turns the last two into a `RunState`; `config_dir` is
the folder a pasted config's relative data paths are read from (default: `configs/` in the
working directory, else the working directory). The sections `data`, `training` and
`evaluation` share a name with state keys; `start` moves them into `config`."""
