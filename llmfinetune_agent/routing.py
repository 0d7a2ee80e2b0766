"""The routing policy: a deterministic function from run state to the next node, with why.

The policy reads only state (and the config inside it), so the same state always routes the
same way — after a crash, a resume, or a fork. It imports no node: the orchestrator node
(`agents/orchestrator.py`) records each choice and goes there.

A failing iteration goes to the debugger, then the fixes gate; approved fixes (or, with
approve_fixes off, the debugger's own) are applied by the `apply_fixes` node and start the next
iteration, up to `debugger.max_iterations`. A reviewer's rejection of the evaluation always
reaches the fixes gate (their own patch is an answer there); only a reject at that gate ends
the run. A diverged training is evaluated at its last checkpoint (when one was saved) before
the debugger, without the evaluation gate: a diverged run is never accepted.
An accepted model with post-training steps goes to the post_training node (candidates made and
gated, failures rolled back), then to the release gate, then to finalize.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from llmfinetune_agent.improvement import fix_decision, fixable, usable_warm_start
from llmfinetune_agent.state import Outcome, RunState

END = "__end__"
Destination = Literal[
    "data_generator",
    "planner",
    "knowledge_retrieval",
    "trainer",
    "evaluator",
    "debugger",
    "apply_fixes",
    "post_training",
    "finalize",
    "gate_plan",
    "gate_data",
    "gate_training",
    "gate_evaluation",
    "gate_fixes",
    "gate_release",
    "__end__",
]


class Choice(NamedTuple):
    """Where the run goes next and why; `outcome` is set when the choice ends the run."""

    node: Destination
    reason: str
    outcome: Outcome | None = None


ENDED = ("completed", "cancelled", "failed")


def checkpoint_key(fraction: float) -> str:
    """The `approved` key of the training gate at one fraction (e.g. 'training_checkpoint@0.5')."""
    return f"training_checkpoint@{fraction:g}"


def next_training_stop(state: RunState) -> float | None:
    """The first training fraction whose gate has not been passed, or None to train to the end."""
    hitl = state["config"]["hitl"]
    approved = state.get("approved", {})
    for fraction in hitl["training_checkpoints"]:
        if not approved.get(checkpoint_key(fraction)):
            return fraction
    return None


def choose_next(state: RunState) -> Choice:
    """The whole routing policy of a run, in order of the typical path. The first choice of an
    iteration started by fixes also says which route the fixes took."""
    choice = _choose(state)
    started = fix_decision(state)
    iteration = state.get("iteration", 1)
    first = not any(e.get("iteration") == iteration for e in state.get("log") or [])
    if started and started.get("route") and first and choice.node != END:
        route = f" (iteration {iteration} route '{started['route']}': {started['route_reason']})"
        return choice._replace(reason=choice.reason + route)
    return choice


def _choose(state: RunState) -> Choice:
    if state.get("outcome") in ENDED:
        return Choice(END, f"the run is {state['outcome']}")
    if state.get("fix_request"):
        return Choice(
            "apply_fixes", "the reviewer answered the fixes gate; start the next iteration"
        )
    for rule in (_data_rules, _training_rules, _evaluation_rules, _release_rules):
        choice = rule(state)
        if choice:
            return Choice(*choice)
    if not state.get("final"):
        return Choice(
            "finalize", "the evaluated model is accepted; merge, document and register it"
        )
    return Choice(END, "the model is registered", outcome="completed")


def _data_rules(state: RunState) -> tuple[str, ...] | None:
    config, approved, data = state["config"], state.get("approved", {}), state.get("data")
    if not data:
        return "data_generator", "the seed data has not been validated and split yet"
    if not state.get("plan"):
        return "planner", "the data is validated; estimate the training's cost"
    if config["hitl"]["approve_plan"] and not approved.get("approve_plan"):
        return "gate_plan", "the plan needs approval before any compute is spent"
    if config["knowledge"]["enabled"] and not data.get("retrieval_done"):
        return "knowledge_retrieval", "knowledge sources are configured and not yet indexed"
    if config["data_generation"]["enabled"] and not data.get("generation_done"):
        return "data_generator", "data generation is enabled and has not run for this data"
    if config["hitl"]["approve_data"] and not approved.get("approve_data"):
        return "gate_data", "the final training data needs approval before training"
    return None


def _training_rules(state: RunState) -> tuple[str, ...] | None:
    training = state.get("training")
    if not training:
        warm_start = usable_warm_start(state)
        if warm_start:
            return "trainer", (
                f"train on from iteration {warm_start['from_iteration']}'s checkpoint at step "
                f"{warm_start['step']}"
            )
        return "trainer", "the data is ready and no model has been trained yet"
    status = training["status"]
    if status == "paused":
        fraction = training.get("fraction")
        if fraction is not None and not state.get("approved", {}).get(checkpoint_key(fraction)):
            return "gate_training", f"training paused at {fraction:.0%} for approval"
        return "trainer", "the training checkpoint was approved; continue training"
    if status == "diverged":
        why = f"training diverged at step {training.get('diverged_at_step')}"
        if training.get("checkpoint_path") and not state.get("evaluation"):
            # The last checkpoint before the blow-up gives this iteration metrics to compare with.
            return "evaluator", f"{why}; evaluate its last checkpoint before diagnosing it"
        return _to_debugger(state, why)
    if status == "cancelled":
        return END, "training was cancelled", "cancelled"
    if status == "failed":  # the training engine crashed (AutoTrain): its own words end the run
        return END, training.get("message") or "training failed", "failed"
    return None


def _evaluation_rules(state: RunState) -> tuple[str, ...] | None:
    evaluation, approved = state.get("evaluation"), state.get("approved", {})
    if not evaluation:
        return "evaluator", "the model is trained and not yet evaluated"
    if state["config"]["hitl"]["approve_evaluation"]:
        verdict = approved.get("approve_evaluation")
        if verdict is None:
            return "gate_evaluation", "the evaluation needs approval"
        if verdict is False:
            return _to_debugger(state, "the reviewer rejected the evaluation")
        return None
    if not evaluation.get("passed", True):
        return _to_debugger(state, "the tuned model fails its acceptance checks")
    return None


def _release_rules(state: RunState) -> tuple[str, ...] | None:
    """After an accepted evaluation: make and gate the post-training candidates (when the
    config asks for any), then ask which to release; a rejected release ends the run."""
    config = state["config"]
    post_training = config["post_training"]
    if not (post_training.get("quantize") or post_training.get("merge")):
        return None
    if not state.get("post_training"):
        return "post_training", "the accepted model has post-training steps (merge, quantize)"
    if config["hitl"].get("approve_release", True) and not state.get("release"):
        if state.get("approved", {}).get("approve_release") is False:
            return END, "the release was rejected", "cancelled"
        return "gate_release", "the candidates need a decision: which to register"
    return None


def _to_debugger(state: RunState, why: str) -> tuple[str, ...]:
    """The improvement loop: diagnose once per iteration; then ask to apply the fixes (or apply
    them when approve_fixes is off) while iterations remain. A reviewer's rejection always
    reaches the fixes gate, where the reviewer may give their own patch; without a reviewer,
    a run with no fix (or no iteration left) ends failed."""
    config = state["config"]
    rejected = state.get("approved", {}).get("approve_evaluation") is False
    if not config["debugger"]["enabled"]:
        if rejected:
            return "gate_fixes", f"{why}; the debugger is disabled: ask for the reviewer's own fix"
        return END, f"{why}, and the debugger is disabled", "failed"
    diagnoses = state.get("diagnoses")
    if diagnoses is None:
        return "debugger", f"{why}; diagnose it"
    fixes = fixable(diagnoses)
    limit, iteration = config["debugger"]["max_iterations"], state.get("iteration", 1)
    if rejected:
        return _after_rejection(state, why, fixes, iteration <= limit)
    if not fixes:
        found = ", ".join(sorted({d["kind"] for d in diagnoses})) or "nothing"
        return END, f"{why}, and the debugger proposed no fix (found: {found})", "failed"
    if iteration > limit:
        return (
            END,
            f"{why}; the debugger proposed fixes, but debugger.max_iterations ({limit}) "
            "improvement iteration(s) are used up",
            "failed",
        )
    if not config["hitl"]["approve_fixes"]:
        return "apply_fixes", f"{why}; apply the debugger's fixes (approve_fixes is off)"
    return "gate_fixes", f"{why}; the debugger proposes {len(fixes)} fix(es)"


def _after_rejection(
    state: RunState, why: str, fixes: list[dict[str, Any]], iterations_left: bool
) -> tuple[str, ...]:
    """A human rejected the evaluation: apply the debugger's fixes unasked only when
    approve_fixes is off and they may (fixes exist, iterations remain); otherwise ask."""
    if fixes and iterations_left and not state["config"]["hitl"]["approve_fixes"]:
        return "apply_fixes", f"{why}; apply the debugger's fixes (approve_fixes is off)"
    if not fixes:
        return "gate_fixes", f"{why}; the debugger proposes no fix: ask for the reviewer's own"
    if not iterations_left:
        limit = state["config"]["debugger"]["max_iterations"]
        return "gate_fixes", (
            f"{why}; debugger.max_iterations ({limit}) is used up: ask the reviewer whether to "
            "go on"
        )
    return "gate_fixes", f"{why}; the debugger proposes {len(fixes)} fix(es)"
