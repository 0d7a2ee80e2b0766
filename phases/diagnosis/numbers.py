"""Small numeric helpers shared by the checks: finite values, series from a log history."""

import math
from typing import Any


def finite(value: Any) -> bool:
    """True for an int/float that is neither NaN nor infinite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def series(log_history: list[dict[str, Any]], key: str) -> list[tuple[int, Any]]:
    """(step, value) for every log entry holding `key` (None/NaN values kept as they are)."""
    return [(int(e.get("step", i)), e[key]) for i, e in enumerate(log_history) if key in e]


def mean(values: list[float]) -> float:
    """Arithmetic mean (0.0 for no values)."""
    return sum(values) / len(values) if values else 0.0


def rounded(value: float, digits: int = 4) -> float:
    """A value rounded for evidence a person reads."""
    return float(f"{value:.{digits}g}")
