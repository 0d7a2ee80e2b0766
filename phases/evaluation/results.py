"""What the evaluation phase returns: small, JSON-serializable result models."""

from pydantic import BaseModel, Field


class Prediction(BaseModel):
    """One eval example: what the model was asked, what was expected, what it answered."""

    input: str = Field(description="The prompt as a person reads it (chat turns as 'role: text').")
    expected: str | None = Field(description="The reference answer (None for plain text data).")
    got: str | None = Field(description="The model's answer (None when nothing was generated).")
    score: float | None = Field(description="Per-example ROUGE-L F-measure against the reference.")


class EvaluationResult(BaseModel):
    """Metrics and predictions of one model on one eval set."""

    model: str = Field(description="The evaluated model (path or hub id).")
    metrics: dict[str, float] = Field(description="Metric name -> value on the eval set.")
    predictions: list[Prediction] = Field(description="Per-example inputs, references, answers.")
    n_examples: int = Field(description="Number of eval examples evaluated.")
    seconds: float = Field(description="Wall time of the evaluation (loading included).")


class ThresholdCheck(BaseModel):
    """Whether the tuned model clears one metric threshold."""

    threshold: float = Field(description="The configured bound.")
    value: float | None = Field(description="The tuned model's value (None if not computed).")
    higher_is_better: bool = Field(description="False for perplexity: the bound is a maximum.")
    passed: bool = Field(description="True when the value is on the good side of the bound.")


class EvaluationReport(BaseModel):
    """Base versus tuned model on the same eval set, with deltas and threshold checks."""

    base: EvaluationResult | None = Field(description="The base model (None if not compared).")
    tuned: EvaluationResult = Field(description="The fine-tuned model.")
    deltas: dict[str, float] = Field(description="Tuned minus base, per metric both have.")
    thresholds: dict[str, ThresholdCheck] = Field(description="One check per configured threshold.")
    passed: bool = Field(description="True when every threshold passed (or none was set).")
    base_from_cache: bool = Field(False, description="The base result was reused from the cache.")
    files: dict[str, str] = Field(
        default_factory=dict, description="Written report files: json, markdown, loss_plot."
    )
    notes: list[str] = Field(default_factory=list, description="Things the reader should know.")
