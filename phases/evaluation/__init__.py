"""The evaluation phase: metrics of a model on the eval split, and base-versus-tuned reports.

    from phases.evaluation import EvaluationConfig, compare_models, evaluate_model

Heavy libraries (torch, transformers, evaluate) are imported only when a function runs.
"""

from phases.evaluation.comparison import compare_models
from phases.evaluation.config import BUILTIN_METRICS, EvaluationConfig
from phases.evaluation.errors import EvaluationError, EvaluationInputError, MetricUnavailableError
from phases.evaluation.model_evaluation import evaluate_model
from phases.evaluation.results import (
    EvaluationReport,
    EvaluationResult,
    ExampleRow,
    Prediction,
    ThresholdCheck,
)
from phases.evaluation.text_metrics import compute_text_metrics
from phases.evaluation.thresholds import ThresholdRule

__all__ = [
    "BUILTIN_METRICS",
    "EvaluationConfig",
    "EvaluationError",
    "EvaluationInputError",
    "EvaluationReport",
    "EvaluationResult",
    "ExampleRow",
    "MetricUnavailableError",
    "Prediction",
    "ThresholdCheck",
    "ThresholdRule",
    "compare_models",
    "compute_text_metrics",
    "evaluate_model",
]
