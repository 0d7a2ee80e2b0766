"""The `evaluation` section of a run config (metrics, thresholds, generation)."""

import difflib

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BUILTIN_METRICS = ("rouge1", "rouge2", "rougeL", "bleu", "bertscore", "exact_match", "perplexity")


class EvaluationConfig(BaseModel):
    """What to measure on the eval split, and what counts as good enough."""

    model_config = ConfigDict(extra="forbid")

    metrics: list[str] = Field(
        default_factory=lambda: ["rougeL", "bleu", "exact_match", "perplexity"],
        description=(
            "Metrics to compute: rouge1, rouge2, rougeL, bleu, bertscore, exact_match, perplexity, "
            "or a user metric 'package.module:function' taking (predictions, references) and "
            "returning a float."
        ),
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description=(
            'Minimum acceptable value per metric of the tuned model, e.g. {"rougeL": 0.6}; for '
            "perplexity (lower is better) the value is a maximum. Each key must be in 'metrics'."
        ),
    )
    max_new_tokens: int = Field(64, gt=0, description="Tokens generated per eval example.")
    batch_size: int = Field(16, gt=0, description="Examples generated together (left padding).")
    do_sample: bool = Field(False, description="Sample instead of greedy decoding.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature (with do_sample).")
    max_examples: int | None = Field(
        None, gt=0, description="Evaluate at most this many eval examples (all by default)."
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

    @model_validator(mode="after")
    def _thresholds_name_metrics(self) -> "EvaluationConfig":
        unknown = sorted(set(self.thresholds) - set(self.metrics))
        if unknown:
            raise ValueError(
                f"evaluation.thresholds names {unknown}, which are not in evaluation.metrics "
                f"{self.metrics}; add them to metrics or remove their thresholds."
            )
        return self
