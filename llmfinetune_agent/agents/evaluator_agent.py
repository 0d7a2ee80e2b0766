"""The evaluator agent: base vs tuned model on the eval split, against the thresholds.

A run that diverged has no final model, but often a checkpoint saved before the blow-up: that
checkpoint is evaluated (marked as such) so the iteration has metrics the next one can be
compared with. A diverged run never passes, and metrics that are not finite are kept as null.

The evaluator works from the run's `artifact`: an adapter or a full model is generated with
and scored on text metrics; a prompt is scored the same way against the plain instruction on
the same weights; a reward model is judged by how often it ranks the chosen response of a
held-out pair above the rejected one; other kinds (quantized or GGUF models) are not produced
by training and are refused with a clear message.

The summary kept in state carries the metrics, one `checks` entry per threshold rule and a few
`examples` (worst, best, random rows with base and tuned answers) for the evaluation gate.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from llmfinetune_agent.agents.node_io import emit, run_config
from llmfinetune_agent.artifacts import current_artifact
from llmfinetune_agent.config import RunConfig
from llmfinetune_agent.context import RunContext, run_context
from llmfinetune_agent.improvement import write_iterations_report
from llmfinetune_agent.state import RunState
from phases.evaluation.errors import EvaluationError


def _comparison(kind: str):
    """The evaluation phase's comparison for an artifact kind (None: not evaluable yet)."""
    from phases.evaluation import compare_models
    from phases.evaluation.prompt_comparison import compare_prompts
    from phases.evaluation.reward_comparison import compare_reward_models

    return {
        "adapter": compare_models,
        "model": compare_models,
        "reward_model": compare_reward_models,
        "prompt": compare_prompts,
    }.get(kind)


def evaluator(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Graph node: evaluate, write the report into the run directory, keep the numbers in state."""
    training, artifact = state["training"], current_artifact(state)
    config, cache_dir = run_config(state), run_context(runtime).models_cache
    if _comparison(artifact["kind"]) is None:
        raise EvaluationError(
            f"a '{artifact['kind']}' artifact ({artifact['path']}) cannot be evaluated yet: "
            "the evaluator scores models, adapters, prompts and reward models"
        )
    if training["status"] == "diverged":
        summary = _evaluate_diverged(state, config, artifact, cache_dir)
    else:
        emit("agent", agent="evaluator", message="evaluating base and tuned models")
        summary = _evaluate(state, config, artifact["path"], cache_dir)
    summary = finite_summary(summary)
    _judge_reward_guard(training, summary)
    _add_iterations(state, summary)
    emit("evaluation_result", tuned=summary["tuned"], passed=summary["passed"])
    return {"evaluation": summary}


def _judge_reward_guard(training: dict[str, Any], summary: dict[str, Any]) -> None:
    """An RL run a reward guard stopped never passes: its rewards had stopped teaching (the
    debugger names why); a flagged one keeps its verdict, the flag shown with it."""
    guard = training.get("reward_guard")
    if guard:
        summary["reward_guard"] = guard
        summary["passed"] = summary["passed"] and guard.get("action") != "stop"


def _add_iterations(state: RunState, summary: dict[str, Any]) -> None:
    """From iteration 2 on, the report ends with the table of every iteration, this one
    included (also written to `iterations.md`)."""
    table = write_iterations_report({**state, "evaluation": summary})
    markdown = (summary.get("files") or {}).get("markdown")
    if table and markdown:
        with Path(markdown).open("a", encoding="utf-8") as report:
            report.write("\n".join(["", "## Iterations", "", *table, ""]))


def _evaluate(state: RunState, config: RunConfig, tuned: str, cache_dir: Path) -> dict[str, Any]:
    """Base vs `tuned` (of the run artifact's kind) on the eval split; the report goes to
    `<run_dir>/evaluation`."""
    compare = _comparison(current_artifact(state)["kind"])
    report = compare(
        config.evaluation,
        base=config.model,
        tuned=tuned,
        eval_path=Path(state["data"]["eval_path"]),
        output_dir=Path(state["run_dir"]) / "evaluation",
        cache_dir=cache_dir,
        log_history_path=Path(state["training"]["log_history_path"]),
        progress=lambda done, total: emit("evaluation_progress", done=done, total=total),
    )
    return report.summary()


def _evaluate_diverged(
    state: RunState, config: RunConfig, artifact: dict[str, Any], cache_dir: Path
) -> dict[str, Any]:
    """The newest checkpoint saved before the divergence, evaluated and marked as such."""
    from phases.training.checkpoints import checkpoint_step

    training, checkpoint = state["training"], artifact["path"]
    step, diverged_at = checkpoint_step(Path(checkpoint)), training.get("diverged_at_step")
    note = (
        f"Training diverged at step {diverged_at}: these are the metrics of its last checkpoint "
        f"before that, at step {step} of {training.get('total_steps')} ({checkpoint})."
    )
    emit(
        "agent", agent="evaluator", message=f"evaluating the diverged run's step-{step} checkpoint"
    )
    summary = _evaluate(state, config, checkpoint, cache_dir)
    if not math.isfinite((summary.get("tuned") or {}).get("perplexity", 0.0)):
        note += " Its perplexity is not finite (the mean token loss is NaN or past 709 nats)."
    summary.update(
        passed=False,  # a diverged run is never accepted, whatever its checkpoint scores
        diverged_at_step=diverged_at,
        checkpoint_step=step,
        notes=[note, *summary.get("notes", [])],
    )
    return summary


def finite_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary with NaN/inf metrics as None (JSON has no such numbers), named in
    `not_finite` so a reader can tell "not finite" from "not computed"."""
    out = dict(summary)
    not_finite: set[str] = set()
    for part in ("base", "tuned", "deltas"):
        values = dict(summary.get(part) or {})
        for name, value in values.items():
            if isinstance(value, float) and not math.isfinite(value):
                values[name] = None
                if part != "deltas":
                    not_finite.add(f"{part}.{name}")
        out[part] = values
    if not_finite:
        out["not_finite"] = sorted(not_finite)
    return out
