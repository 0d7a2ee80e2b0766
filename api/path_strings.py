"""Which strings a request may hand to the file system or the database.

The operating system refuses a NUL byte in a path, a file name over 255 bytes and a path over
4096 bytes; a lone surrogate (`"\\ud800"` is valid JSON) cannot be encoded at all, and
PostgreSQL stores no NUL in text. Each fails deep down (`ValueError`, `OSError`,
`UnicodeEncodeError`, a driver error): checking first turns what would be a 500 into a 422
that names the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.exceptions import RequestValidationError

from api.error_excerpts import excerpt

NAME_MAX_BYTES = 255
PATH_MAX_BYTES = 4096


def text_problem(value: str) -> str | None:
    """What makes `value` unfit to store or look up, or None: a NUL byte, a lone surrogate."""
    if "\x00" in value:
        return "contains a NUL byte (\\x00)"
    try:
        value.encode()
    except UnicodeEncodeError:
        return "contains a lone surrogate, which is not a character (not valid UTF-8)"
    return None


def path_problem(value: str) -> str | None:
    """What makes `value` unfit to name a file, or None: `text_problem`, or too long."""
    problem = text_problem(value)
    if problem:
        return problem
    encoded = value.encode()
    if len(encoded) > PATH_MAX_BYTES:
        return f"is longer than {PATH_MAX_BYTES} bytes, the longest path the system accepts"
    if any(len(name) > NAME_MAX_BYTES for name in encoded.split(b"/")):
        return f"has a name longer than {NAME_MAX_BYTES} bytes, the longest the system accepts"
    return None


def text_problems(value: Any, where: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple, str]]:
    """(location, problem) for every string (keys included) in a JSON value that has one."""
    if isinstance(value, str):
        if problem := text_problem(value):
            yield where, problem
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and (problem := text_problem(key)):
                yield (*where, excerpt(key)), f"the key {problem}"
            yield from text_problems(item, (*where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from text_problems(item, (*where, index))


def refuse_path(value: str, loc: tuple[str, ...]) -> None:
    """A 422 at `loc` (FastAPI's shape) if `value` cannot name a file."""
    if problem := path_problem(value):
        raise invalid(loc, f"the path {problem}", value)


def refuse_unfit_text(value: Any, loc: tuple[str, ...]) -> None:
    """A 422 naming the first string in a JSON value (a request body) with a `text_problem`:
    it would reach the run's checkpoints, which PostgreSQL cannot store with a NUL."""
    for where, problem in text_problems(value, loc):
        raise invalid(where, f"the value {problem}", None)


def invalid(loc: tuple, message: str, value: Any) -> RequestValidationError:
    """A FastAPI-style validation error for one field (the main error handler bounds it)."""
    return RequestValidationError(
        [{"type": "value_error", "loc": loc, "msg": message, "input": value}]
    )
