"""Request bodies the API reads: bounded in size and shape before FastAPI parses them.

An ASGI middleware. A body over the limit is a 413 before it is read: on its Content-Length,
or counted as a chunked body arrives (`POST /data` has its own, larger, upload limit and
streams to disk). A JSON body is parsed here first, off the event loop when it is big, and
refused (422) when it is not JSON or holds more than `MAX_JSON_VALUES` values or nests deeper
than `MAX_JSON_DEPTH`: FastAPI parses and validates on the event loop, and 2 million list
items in a 4 MB body took it over a minute (every other request waited). What passes is cheap
to parse again and to validate.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import HTTPException, status
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UPLOAD_PATH = "/data"
MAX_JSON_VALUES = 10_000
MAX_JSON_DEPTH = 64
_INLINE_BYTES = 64 * 1024  # smaller bodies are checked on the loop: a thread hop costs more


class BodyLimits:
    """413 above `max_json_bytes` (`max_upload_bytes` for `POST /data`); JSON checked first."""

    def __init__(self, app: ASGIApp, *, max_json_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        if "content-length" not in headers and "transfer-encoding" not in headers:
            return await self.app(scope, receive, send)  # no body
        upload = scope["path"] == UPLOAD_PATH
        limit = self.max_upload_bytes if upload else self.max_json_bytes
        if _declared_length(headers) > limit:
            return await _too_large(limit, upload)(scope, receive, send)
        if upload:
            return await self.app(scope, _counted(receive, limit), send)
        body = await _read(receive, limit)
        if body is None:
            return await _too_large(limit, upload)(scope, receive, send)
        if _is_json(headers.get("content-type")):
            check = json_problems if len(body) < _INLINE_BYTES else _off_loop_json_problems
            if problems := await check(body):
                return await _invalid(problems)(scope, receive, send)
        await self.app(scope, _replay(body, receive), send)


def _declared_length(headers: Headers) -> int:
    text = headers.get("content-length", "")
    if not text.isascii() or not text.isdigit():
        return 0  # the HTTP parser answers 400 for a malformed one
    return int(text) if len(text) < 19 else 2**63


async def _read(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes `limit` bytes."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away; the app will see it too
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            return None
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives `body` once, then what the client sends (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _counted(receive: Receive, limit: int) -> Receive:
    """A receive that raises a 413 once more than `limit` bytes have arrived."""
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        size += len(message.get("body", b""))
        if size > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, _too_large_message(limit, True))
        return message

    return counted


def _too_large(limit: int, upload: bool) -> JSONResponse:
    return JSONResponse(
        {"detail": _too_large_message(limit, upload)},
        status_code=status.HTTP_413_CONTENT_TOO_LARGE,
    )


def _too_large_message(limit: int, upload: bool) -> str:
    if upload:
        return f"the upload is larger than the limit of {limit} bytes"
    return (
        f"the request body is larger than the limit of {limit} bytes for JSON requests "
        "(FINETUNE_AGENT_MAX_JSON_BYTES); upload data files with POST /data and name them in "
        "the config"
    )


def _is_json(content_type: str | None) -> bool:
    """FastAPI's rule: application/json or application/*+json (other bodies are not parsed)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def _off_loop_json_problems(body: bytes) -> list[dict[str, Any]]:
    return await run_in_threadpool(_json_problems, body)


async def json_problems(body: bytes) -> list[dict[str, Any]]:
    return _json_problems(body)


def _json_problems(body: bytes) -> list[dict[str, Any]]:
    """FastAPI-style errors for a body that is not JSON, or too big a tree; [] if it is fine.

    The tree is measured by scanning tokens, stopping at the bound, before `json.loads`:
    parsing 2 million values holds the GIL (the event loop with it) for a tenth of a second.
    """
    if problem := _shape_problem(body):
        return [{"type": "json_too_complex", "loc": ["body"], "msg": problem}]
    try:
        json.loads(body)
    except json.JSONDecodeError as exc:
        return [_error(("body", exc.pos), "JSON decode error", {"error": exc.msg})]
    except (ValueError, RecursionError) as exc:  # not UTF-8, or an int of over 4300 digits
        return [_error(("body",), "JSON decode error", {"error": str(exc)[:200]})]
    return []


# A string, an opening or closing bracket, or any other run of value characters.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[{]|[\]}]|[^\s\[\]{},:"]+')


def loads_typed_json(text: str) -> Any:
    """`json.loads` for JSON typed into a form field or carried as a string inside a body:
    too many values or too deep a tree is a ValueError saying so, as it is for a body, never
    a RecursionError."""
    if problem := _shape_problem(text.encode("utf-8", "surrogatepass"), "the JSON"):
        raise ValueError(problem)
    return json.loads(text)


def _shape_problem(body: bytes, what: str = "the JSON body") -> str | None:
    """Too many values (keys counted) or too deep, or None; malformed JSON is left to
    `json.loads`."""
    count = depth = 0
    for token in _TOKEN.finditer(body):
        first = token.group()[:1]
        if first in (b"]", b"}"):
            depth -= 1
            continue
        count += 1
        if count > MAX_JSON_VALUES:
            return (
                f"{what} holds more than {MAX_JSON_VALUES} values; upload data files "
                "with POST /data and name them in the config"
            )
        if first in (b"[", b"{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return f"{what} nests deeper than {MAX_JSON_DEPTH} levels"
    return None


def _error(loc: tuple, msg: str, ctx: dict[str, str] | None = None) -> dict[str, Any]:
    return {"type": "json_invalid", "loc": list(loc), "msg": msg, "ctx": ctx or {}}


def _invalid(problems: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": problems}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
