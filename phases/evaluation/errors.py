"""Errors of the evaluation phase, each written for the user who meets it."""


class EvaluationError(Exception):
    """Base class: something about the evaluation could not be done."""


class EvaluationInputError(EvaluationError):
    """The eval data cannot be evaluated (unreadable file, bad record, no references)."""


class MetricUnavailableError(EvaluationError):
    """A metric is unknown, or needs a package that is not installed."""
