"""The `evaluation` section of a run config (metrics, thresholds, generation)."""

import difflib

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.config import MAX_TOKENS
from phases.evaluation.json_metrics import JSON_ROW_METRICS
from phases.evaluation.thresholds import (
    SHAPES,
    Threshold,
    direction_problems,
    normalize_thresholds,
    uses_base,
)
from phases.evaluation.tool_metrics import TOOL_METRICS

BUILTIN_METRICS = (
    "rouge1",
    "rouge2",
    "rougeL",
    "bleu",
    "bertscore",
    "exact_match",
    "json_valid",
    "json_field_accuracy",
    *TOOL_METRICS,
    "perplexity",
)
# Added to the metrics when (nearly) every reference is a JSON object.
JSON_DEFAULT_METRICS = ("exact_match", *JSON_ROW_METRICS)
# Metrics a threshold may name without listing them: added when the data calls for them.
AUTO_METRICS = (*JSON_DEFAULT_METRICS, *TOOL_METRICS)


class EvaluationConfig(BaseModel):
    """What to measure on the eval split, and what counts as good enough."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    metrics: list[str] = Field(
        default_factory=lambda: ["rougeL", "bleu", "exact_match", "perplexity"],
        description=(
            "Metrics to compute: rouge1, rouge2, rougeL, bleu, bertscore, exact_match, "
            "json_valid, json_field_accuracy, tool_call_parseable, tool_call_exact, "
            "tool_name_accuracy, perplexity, or a user metric "
            "'package.module:function' taking (predictions, references) and returning a float. "
            "When at least 90% of the eval references are JSON objects, exact_match, json_valid "
            "and json_field_accuracy are added to this list by default (ROUGE on JSON rewards "
            "copying the format); exact_match then compares JSON references as parsed JSON "
            "(key order and whitespace do not matter). When eval turns call tools, "
            "tool_call_parseable, tool_call_exact and tool_name_accuracy are added."
        ),
    )
    thresholds: dict[str, Threshold] = Field(
        default_factory=dict,
        description=(
            "What the tuned model must reach, per metric: "
            + SHAPES
            + ". above_base/below_base compare with the base model (tuned >= base + above_base; "
            'tuned <= base - below_base for perplexity), e.g. {"exact_match": {"min": 0.8}, '
            '"rougeL": {"above_base": 0.1}}. Each key must be in \'metrics\' (or be '
            "exact_match / json_valid / json_field_accuracy / a tool metric, which are then "
            "computed)."
        ),
    )
    max_new_tokens: int = Field(
        64, gt=0, le=MAX_TOKENS, description="Tokens generated per eval example."
    )
    batch_size: int = Field(
        16, gt=0, le=4096, description="Examples generated together (left padding)."
    )
    do_sample: bool = Field(False, description="Sample instead of greedy decoding.")
    # Past about 10 sampling is uniform noise over the vocabulary.
    temperature: float = Field(
        1.0, gt=0, le=10, description="Sampling temperature (with do_sample)."
    )
    max_examples: int | None = Field(
        None,
        gt=0,
        le=10_000_000,
        description="Evaluate at most this many eval examples (all by default).",
    )
    exact_match_normalize: bool = Field(
        True,
        description=(
            "For exact_match, compare after lowercasing, stripping and collapsing whitespace."
        ),
    )
    compare_base: bool = Field(
        True, description="Also evaluate the base model on the same eval set and report deltas."
    )

    @field_validator("metrics")
    @classmethod
    def _metrics_known(cls, metrics: list[str]) -> list[str]:
        unknown = [m for m in metrics if m not in BUILTIN_METRICS and ":" not in m]
        if unknown:
            hints = [
                difflib.get_close_matches(m, BUILTIN_METRICS, n=1, cutoff=0.5) for m in unknown
            ]
            raise ValueError(
                f"unknown metric(s) {unknown}"
                + "".join(f" (did you mean '{h[0]}'?)" for h in hints if h)
                + f"; built-in metrics are {list(BUILTIN_METRICS)}, or name a user function "
                "as 'package.module:function'"
            )
        return metrics

    @field_validator("thresholds", mode="before")
    @classmethod
    def _threshold_shapes(cls, thresholds: object) -> object:
        return normalize_thresholds(thresholds)

    @model_validator(mode="after")
    def _thresholds_name_metrics(self) -> "EvaluationConfig":
        unknown = sorted(set(self.thresholds) - set(self.metrics) - set(AUTO_METRICS))
        if unknown:
            raise ValueError(
                f"evaluation.thresholds names {unknown}, which are not in evaluation.metrics "
                f"{self.metrics}; add them to metrics or remove their thresholds."
            )
        problems = direction_problems(self.thresholds)
        if problems:
            raise ValueError("evaluation.thresholds: " + "; ".join(problems) + ".")
        relative = uses_base(self.thresholds)
        if relative and not self.compare_base:
            raise ValueError(
                f"evaluation.thresholds for {relative} compare with the base model, but "
                "evaluation.compare_base is false; set it to true or use min/max."
            )
        return self

    def with_metrics_for(self, references: list[str | None]) -> "EvaluationConfig":
        """This config with the metrics the data calls for: the JSON metrics when (nearly) all
        references are JSON objects, the tool metrics when some call tools, and any metric a
        threshold names."""
        from phases.evaluation.json_metrics import JSON_DEFAULT_SHARE, json_reference_share
        from phases.evaluation.tool_metrics import has_tool_references

        wanted = list(self.metrics)
        if json_reference_share(references) >= JSON_DEFAULT_SHARE:
            wanted += [m for m in JSON_DEFAULT_METRICS if m not in wanted]
        if has_tool_references(references):
            wanted += [m for m in TOOL_METRICS if m not in wanted]
        wanted += [m for m in self.thresholds if m not in wanted]
        if wanted == self.metrics:
            return self
        return self.model_copy(update={"metrics": wanted})
