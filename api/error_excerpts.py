"""How much of a request an error answer may show: a bounded excerpt, never the input.

FastAPI's validation errors carry each failing value as `input`; for a 50 MB body that failed
as a whole, that is a 50 MB answer (and as long again to encode). Here every error shows at most
`EXCERPT_CHARS` of its input and an answer lists at most `MAX_ERRORS` errors.
"""

from __future__ import annotations

import math
import reprlib
from typing import Any

EXCERPT_CHARS = 200
# Our own messages name paths and give advice (two absolute paths pass 200 characters); the
# bound is for a message that echoes a huge value.
MESSAGE_CHARS = 2000
MAX_ERRORS = 20

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = _repr.maxlong = EXCERPT_CHARS
_repr.maxlist = _repr.maxdict = _repr.maxtuple = _repr.maxset = 5
_repr.maxlevel = 3


def excerpt(value: Any) -> Any:
    """`value` if it is short and plain JSON, else a short text standing for it."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):  # NaN and infinities are no JSON: their names instead
        return value if math.isfinite(value) else str(value)
    if isinstance(value, int):
        if abs(value) < 10**18:
            return value
        # str() of an int over 4300 digits raises; say how big instead.
        return (
            _cut(str(value))
            if value.bit_length() < 4000
            else f"an int of {value.bit_length()} bits"
        )
    if isinstance(value, dict | list | tuple | set | frozenset):
        return _repr.repr(value)  # bounded however big or deep the value is
    return _cut(str(value))  # a string, or an exception in an error's `ctx`


def _cut(text: str, limit: int = EXCERPT_CHARS) -> str:
    # A lone surrogate (valid in a JSON string, not in UTF-8) is shown escaped: `\ud800`.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def bounded_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most `MAX_ERRORS` errors, each with an excerpt of its input and of long messages."""
    shown = [_bounded(error) for error in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        shown.append(
            {
                "loc": [],
                "msg": f"{len(errors) - MAX_ERRORS} more errors not shown",
                "type": "too_many_errors",
            }
        )
    return shown


def _bounded(error: dict[str, Any]) -> dict[str, Any]:
    bounded = {
        **error,
        "loc": [excerpt(part) for part in error.get("loc", ())],
        "msg": _cut(str(error.get("msg", "")), MESSAGE_CHARS),
    }
    if "input" in error:
        bounded["input"] = excerpt(error["input"])
    if "ctx" in error:
        bounded["ctx"] = {key: excerpt(value) for key, value in error["ctx"].items()}
    return bounded
