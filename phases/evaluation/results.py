"""What the evaluation phase returns: small, JSON-serializable result models."""

from typing import Any, Literal

from pydantic import BaseModel, Field


class Prediction(BaseModel):
    """One eval example: what the model was asked, what was expected, what it answered."""

    input: str = Field(description="The prompt as a person reads it (chat turns as 'role: text').")
    expected: str | None = Field(description="The reference answer (None for plain text data).")
    got: str | None = Field(description="The model's answer (None when nothing was generated).")
    score: float | None = Field(
        description="This row's score by the result's row_metric (ranks the report's examples)."
    )
    scores: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "Per-row scores: rougeL, exact_match, and json_valid / json_field_accuracy when the "
            "reference is JSON."
        ),
    )


class EvaluationResult(BaseModel):
    """Metrics and predictions of one model on one eval set."""

    model: str = Field(description="The evaluated model (path or hub id).")
    metrics: dict[str, float] = Field(description="Metric name -> value on the eval set.")
    predictions: list[Prediction] = Field(description="Per-example inputs, references, answers.")
    n_examples: int = Field(description="Number of eval examples evaluated.")
    seconds: float = Field(description="Wall time of the evaluation (loading included).")
    row_metric: str | None = Field(
        None,
        description="The per-row score in Prediction.score: json_field_accuracy or rougeL.",
    )


class ThresholdCheck(BaseModel):
    """Whether the tuned model clears one rule of one metric's threshold."""

    metric: str = Field(description="The metric checked.")
    rule: Literal["min", "max", "above_base", "below_base"] = Field(
        description="min/max: an absolute bound; above_base/below_base: a margin over the base."
    )
    bound: float = Field(description="The configured number (the bound, or the margin).")
    required: float | None = Field(
        description="The value the tuned model had to reach (None when the base is missing)."
    )
    tuned: float | None = Field(description="The tuned model's value (None if not computed).")
    base: float | None = Field(description="The base model's value (None if not evaluated).")
    higher_is_better: bool = Field(description="False for perplexity.")
    passed: bool = Field(description="True when the tuned value is on the good side.")
    summary: str = Field(
        description="One line for people, e.g. 'exact_match 0.12 < 0.80 required'."
    )


class ExampleRow(BaseModel):
    """One eval row shown to a person: what was asked, expected, and what each model said."""

    which: Literal["worst", "best", "random"] = Field(description="Why this row was picked.")
    row: int = Field(description="Index of the row in the evaluated eval split.")
    input: str = Field(description="The prompt (truncated to about 300 characters).")
    reference: str | None = Field(description="The expected answer (truncated).")
    base_output: str | None = Field(description="The base model's answer (None if not compared).")
    tuned_output: str | None = Field(description="The tuned model's answer (truncated).")
    score: float | None = Field(description="The tuned answer's per-row score (row_metric).")


class EvaluationReport(BaseModel):
    """Base versus tuned model on the same eval set, with deltas and threshold checks."""

    base: EvaluationResult | None = Field(description="The base model (None if not compared).")
    tuned: EvaluationResult = Field(description="The fine-tuned model.")
    deltas: dict[str, float] = Field(description="Tuned minus base, per metric both have.")
    checks: list[ThresholdCheck] = Field(description="One check per rule of each threshold.")
    passed: bool = Field(
        description="True when every check passed (there are none only when nothing could be "
        "compared: no thresholds and no base model)."
    )
    acceptance: str = Field(
        "",
        description="The rule the checks come from: the configured thresholds, or the default "
        "(not worse than the base on the primary metric and, for JSON answers, the JSON metrics).",
    )
    examples: list[ExampleRow] = Field(
        default_factory=list, description="A few rows (worst, best, random) with both answers."
    )
    base_from_cache: bool = Field(False, description="The base result was reused from the cache.")
    files: dict[str, str] = Field(
        default_factory=dict, description="Written report files: json, markdown, loss_plot."
    )
    notes: list[str] = Field(default_factory=list, description="Things the reader should know.")

    @property
    def thresholds(self) -> dict[str, ThresholdCheck]:
        """The checks by metric (by 'metric.rule' when one metric has several rules)."""
        counts: dict[str, int] = {}
        for check in self.checks:
            counts[check.metric] = counts.get(check.metric, 0) + 1
        return {
            (c.metric if counts[c.metric] == 1 else f"{c.metric}.{c.rule}"): c for c in self.checks
        }

    def summary(self) -> dict[str, Any]:
        """The small, JSON-ready part that run state and the API carry (no per-row answers)."""
        return {
            "base": self.base.metrics if self.base else {},
            "tuned": self.tuned.metrics,
            "deltas": self.deltas,
            "thresholds": {k: v.model_dump(mode="json") for k, v in self.thresholds.items()},
            "checks": [check.model_dump(mode="json") for check in self.checks],
            "passed": self.passed,
            "acceptance": self.acceptance,
            "examples": [example.model_dump(mode="json") for example in self.examples],
            "row_metric": self.tuned.row_metric,
            "base_from_cache": self.base_from_cache,
            "report_path": self.files.get("markdown"),
            "files": self.files,
            "notes": self.notes,
        }
