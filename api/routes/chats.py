"""`/chats`: conversations with a tuned model that can call tools.

`POST /chats/{id}/messages` answers with server-sent events as the assistant works:
`token` (text as it is generated), `tool_call`, `tool_result`, `message` (the final answer),
then `done` (or `error`). `done` carries the turn's `generation_id`: rate the answer with
`POST /generations/{id}/feedback`. The turn finishes even if the client goes away; `GET
/chats/{id}` shows it afterwards. A turn that fails leaves the conversation as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import StreamingResponse

from api.chat_schemas import ChatCreate, ChatPublic, MessageIn
from api.confinement import inside
from api.deps import SettingsDep
from api.error_excerpts import excerpt
from api.path_strings import invalid, path_problem, refuse_path, refuse_unfit_text
from llmfinetune_agent.chat.models import PROMPT_ARTIFACT_SUFFIX
from llmfinetune_agent.chat.service import ChatError, ChatEvent, ChatService
from llmfinetune_agent.sections import looks_local
from llmfinetune_agent.settings import Settings
from models.prompt_artifact import PromptArtifactError, read_prompt_artifact

router = APIRouter(prefix="/chats", tags=["chats"])

HTTP_STATUS = {"not_found": 404, "conflict": 409, "invalid": 422, "bad_request": 400}
NOT_FOUND = {404: {"description": "No chat with that id."}}
SSE_EXAMPLE = (
    'event: tool_call\ndata: {"id": "call_3f2a", "name": "calculator", "args": '
    '{"expression": "12 * 7"}}\n\nevent: tool_result\ndata: {"role": "tool", "content": "84", '
    '"name": "calculator", "tool_call_id": "call_3f2a", "status": "success"}\n\n'
    'event: token\ndata: {"text": "The answer is 84."}\n\n'
    'event: message\ndata: {"role": "assistant", "content": "The answer is 84."}\n\n'
    'event: done\ndata: {"chat_id": "chat-5e0b3c9a41d2", "seconds": 1.8, '
    '"generation_id": "4f0c9b1e2a7d4c3b8e6f5a1d2c3b4a59"}\n\n'
)


async def get_chats(request: Request) -> ChatService:
    return request.app.state.chats


ChatsDep = Annotated[ChatService, Depends(get_chats)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ChatPublic,
    responses={
        422: {
            "description": "Unknown model, tool or preset, or a model path outside the data roots."
        }
    },
    summary="Start a conversation",
)
def create_chat(body: ChatCreate, chats: ChatsDep, settings: SettingsDep) -> ChatPublic:
    """A new conversation with a registry model (or any model reference a run config accepts),
    a personality preset or your own system prompt, and tools."""
    refuse_unfit_text(body.model_dump(mode="json"), ("body",))
    _confine_model(body.model, settings)
    try:
        return ChatPublic.model_validate(chats.create_chat(body))
    except ChatError as exc:
        raise _http(exc) from None


@router.post(
    "/{chat_id}/messages",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-sent events until the answer is complete.",
            "content": {"text/event-stream": {"example": SSE_EXAMPLE}},
        },
        **NOT_FOUND,
        409: {"description": "The chat is still answering another message."},
        422: {"description": "An empty or overlong message."},
    },
    summary="Send a message (answer streamed as server-sent events)",
)
def post_message(chat_id: str, body: MessageIn, chats: ChatsDep) -> StreamingResponse:
    """The assistant's answer as it happens: tokens, each tool call and its result, the final
    message. The conversation keeps every message (see `GET /chats/{id}`)."""
    refuse_unfit_text(body.content, ("body", "content"))
    try:
        events = chats.send(chat_id, body.content)
    except ChatError as exc:
        raise _http(exc) from None
    return StreamingResponse(
        _server_sent(events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/{chat_id}", response_model=ChatPublic, responses=NOT_FOUND, summary="Show a chat")
def get_chat(chat_id: str, chats: ChatsDep) -> ChatPublic:
    """The conversation's settings and messages, tool calls and their results included."""
    try:
        return ChatPublic.model_validate(chats.describe(chat_id))
    except ChatError as exc:
        raise _http(exc) from None


def _server_sent(events: Iterator[ChatEvent]) -> Iterator[str]:
    for event in events:
        yield f"event: {event.kind}\ndata: {json.dumps(event.data, ensure_ascii=False)}\n\n"


def _confine_model(reference: str, settings: Settings) -> None:
    """A model given as a local path must lie under the data roots, the runs or the models
    folder (as in a run config): otherwise any file on the server could be loaded. So must the
    model a prompt artifact names."""
    refuse_path(reference, ("body", "model"))  # a name no file can have: 422, not an OSError
    if problem := _unconfined(reference, settings):
        raise invalid(("body", "model"), f"the model path {problem}", reference)
    inner = _artifact_model(reference)
    if inner is not None and (problem := path_problem(inner) or _unconfined(inner, settings)):
        raise invalid(
            ("body", "model"),
            f"prompt artifact {reference}: its 'model' {excerpt(inner)!r} {problem}",
            reference,
        )


def _unconfined(reference: str, settings: Settings) -> str | None:
    """Why the local model path `reference` may not be loaded, or None (not local, or inside)."""
    if not reference.strip():  # no path at all (Path("") is the working folder): the service says
        return None
    local = looks_local(reference) or reference.endswith(".json") or Path(reference).exists()
    roots = [*settings.data_roots, settings.runs_dir, settings.models_cache_dir]
    path = Path(reference)
    if not local or (path.is_absolute() and inside(path, roots)):
        return None
    return (
        f"is outside the data roots ({', '.join(map(str, roots))}); use an absolute path "
        "under one of them, a registry id, or a built-in model"
    )


def _artifact_model(reference: str) -> str | None:
    """The `model` of the prompt artifact `reference`, if it is one (the service names what is
    wrong with an artifact it cannot read)."""
    if not (reference.endswith(PROMPT_ARTIFACT_SUFFIX) and Path(reference).is_file()):
        return None
    try:
        return read_prompt_artifact(Path(reference)).model
    except PromptArtifactError:
        return None


def _http(exc: ChatError) -> Exception:
    """The HTTP error for a chat error: 422 in FastAPI's shape (naming the body), else 404/409."""
    code = HTTP_STATUS.get(exc.code, 400)
    if code == 422:
        return invalid(("body", exc.field) if exc.field else ("body",), str(exc), None)
    return HTTPException(code, str(exc))
