"""What the diagnosis phase returns: one `Diagnosis` per problem found, JSON-ready."""

from typing import Any, Literal

from pydantic import BaseModel, Field

Severity = Literal["info", "warning", "error"]
DiagnosisKind = Literal[
    "divergence",
    "lr_too_high",
    "underfitting",
    "overfitting",
    "no_effect",
    "ignores_input",
    "format_only",
    "duplicates",
    "leakage",
    "truncation",
    "too_few_examples",
    "empty_outputs",
    "repetition",
    "never_stops",
    "zero_reward_spread",
    "completions_clipped",
    "reward_hacking",
    "preference_saturated",
    "likelihood_displacement",
    "preference_never_ends",
]
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
# How the next iteration uses a fix: train again from the base model, train on from this
# iteration's final checkpoint, or prepare the data again (and then train from the base).
Route = Literal["retrain", "continue", "regenerate_data"]


class Diagnosis(BaseModel):
    """One problem in a run: what it is, how sure and how bad, the evidence, and a fix."""

    kind: DiagnosisKind = Field(description="What went wrong (e.g. 'divergence', 'leakage').")
    severity: Severity = Field(description="'error' breaks the model, 'warning' hurts it.")
    summary: str = Field(description="One sentence for a person.")
    evidence: dict[str, Any] = Field(
        default_factory=dict, description="Numbers, steps and examples the summary rests on."
    )
    patch: dict[str, Any] | None = Field(
        None,
        description=(
            "A run-config patch that fixes it (deep-merged into the config), or None when no "
            "config change can (the rationale then says what to do instead)."
        ),
    )
    rationale: str = Field("", description="Why the patch addresses the cause.")
    expected_effect: str = Field("", description="What should change in the next iteration.")
    route: Route | None = Field(
        None,
        description=(
            "How the next iteration applies the patch: 'retrain' from the base model, "
            "'continue' from this iteration's final checkpoint, or 'regenerate_data'. None: "
            "follows from the patched sections (the run's sections table)."
        ),
    )
