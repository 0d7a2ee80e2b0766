"""Fast JSON responses for the hot read endpoints (`GET /runs`, `GET /runs/{id}`).

The routes still declare their `response_model` for OpenAPI, but hand back bytes from orjson:
FastAPI's re-validation of the returned object through the model cost more than the query
(benchmarks/api_latency.py). The values come straight from the store and `describe_run`,
which already have the declared shapes (tests/api check both against the schema).
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

import orjson
from fastapi import Response


def _default(value: Any) -> Any:
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, set | frozenset):  # orjson writes lists and tuples itself
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(content: Any) -> bytes:
    """JSON bytes via orjson (NaN/inf become null, as JSON has neither)."""
    return orjson.dumps(content, default=_default, option=orjson.OPT_NON_STR_KEYS)


class FastJSONResponse(Response):
    """A JSON response serialized with `dumps`; give it bytes to send them as they are."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else dumps(content)
