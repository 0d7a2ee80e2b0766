"""Conversations over the chat graph: create one, send it messages, read it back.

    with open_checkpointer(settings.database_url) as saver:
        chats = ChatService(settings, saver, store=run_store)
        chat = chats.create_chat(ChatConfig(model="builtin:tiny-llama", tools=["calculator"]))
        for event in chats.send(chat["id"], "What is 12 times 7?"):
            print(event.kind, event.data)      # token..., tool_call, tool_result, message, done

A conversation is a thread of the runs' checkpoint store (`thread_id` = chat id), so it
survives restarts. A turn runs in a thread of its own and finishes even if its reader goes
away; one turn per conversation at a time (`ChatBusy` otherwise). Each finished turn is
recorded as an interaction (`record_chat_turn`) whose id the `done` event carries as
`generation_id` (`POST /generations/{id}/feedback` rates the turn). A turn that fails is
removed again, and so is one a server stop left unfinished: the conversation is as it was
before it, with no unanswered message or tool call without a result.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    ToolMessage,
)

from llmfinetune_agent.chat.config import ChatConfig
from llmfinetune_agent.chat.context import ChatContext
from llmfinetune_agent.chat.graph import build
from llmfinetune_agent.chat.interactions import TurnRecord, record_chat_turn
from llmfinetune_agent.chat.models import ChatModels, ChatModelUnavailable, resolve_chat_model
from llmfinetune_agent.chat.turn_lock import claim_turn, release_turn
from llmfinetune_agent.settings import Settings
from llmfinetune_agent.tools.python_sandbox import SandboxLimits
from llmfinetune_agent.tools.registry import ToolSetupError, check_tool_names

CHAT_ID_PREFIX = "chat-"
MAX_MESSAGE_CHARS = 20_000


class ChatError(Exception):
    """A request about a conversation that cannot be done; `code` maps to an HTTP status,
    `field` names the setting at fault (`model`, `tools`) when one is."""

    code = "bad_request"
    field: str | None = None


class ChatNotFound(ChatError):
    code = "not_found"


class ChatBusy(ChatError):
    code = "conflict"


class ChatInvalid(ChatError):
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ChatEvent:
    """One thing that happened during a turn: `token`, `tool_call`, `tool_result`, `message`
    (the final answer), `done` or `error`."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class ChatService:
    """Conversations in one checkpoint store."""

    def __init__(
        self,
        settings: Settings,
        saver: Any,
        *,
        store: Any = None,
        sandbox: SandboxLimits | None = None,
        models: ChatModels | None = None,
        source: str = "api",
    ) -> None:
        self.settings = settings
        self.store = store
        self.source = source
        self.graph = build().compile(checkpointer=saver)
        self.context = ChatContext(
            settings=settings,
            sandbox=sandbox or SandboxLimits(),
            models_=models or ChatModels(cache_dir=settings.models_cache_dir),
        )

    def create_chat(self, config: ChatConfig) -> dict[str, Any]:
        """A new conversation; its model and tools are checked (and the model found) first."""
        try:
            check_tool_names(config.tools, self.settings.tool_modules)
        except ToolSetupError as exc:
            raise ChatInvalid(str(exc), field="tools") from None
        try:  # finds the folder or the hub cache entry; no weights are loaded here
            resolved = resolve_chat_model(
                config.model, store=self.store, cache_dir=self.settings.models_cache_dir
            )
        except ChatModelUnavailable as exc:
            raise ChatInvalid(str(exc), field="model") from None
        chat_id = CHAT_ID_PREFIX + uuid.uuid4().hex[:12]
        settings = {
            **config.model_dump(),
            "model_path": resolved.path,
            "artifact_prompt": resolved.artifact_prompt,
            "artifact_exemplars": list(resolved.exemplars),
            "created_at": datetime.now(timezone.utc).isoformat(),
        }
        self.graph.invoke(
            {"settings": settings}, _thread(chat_id), context=self.context, durability="sync"
        )
        return self.describe(chat_id)

    def describe(self, chat_id: str) -> dict[str, Any]:
        """The conversation: id, settings and every message (tool calls and results too)."""
        values = self._values(chat_id)
        settings = values["settings"]
        public = {k: settings.get(k) for k in (*ChatConfig.model_fields, "created_at")}
        messages = [message_view(m) for m in values.get("messages", [])]
        return {"id": chat_id, **public, "messages": messages}

    def send(self, chat_id: str, text: str) -> Iterator[ChatEvent]:
        """Start a turn answering `text`; iterate the result for its events as they happen.
        ChatNotFound, ChatBusy (a turn is running) or ChatInvalid before anything starts."""
        check_message(text)
        self._values(chat_id)
        owner = claim_turn(self.settings.database_url, chat_id)
        if owner is None:
            raise ChatBusy(f"chat {chat_id} is answering a message; send yours after it")
        events: queue.Queue[ChatEvent | None] = queue.Queue()
        worker = threading.Thread(
            target=self._run_turn, args=(chat_id, text, owner, events), daemon=True
        )
        worker.start()
        return _drain(events)

    def _run_turn(self, chat_id: str, text: str, owner: str, events: queue.Queue) -> None:
        started = time.monotonic()
        asked = HumanMessage(text, id=uuid.uuid4().hex)
        try:
            values = self._drop_unfinished_turn(chat_id)
            settings = values["settings"]
            new_messages = self._stream_turn(chat_id, asked, events)
            answer = next((m for m in reversed(new_messages) if isinstance(m, AIMessage)), None)
            seconds = round(time.monotonic() - started, 3)
            record = _turn_record(chat_id, text, settings, new_messages, seconds, self.source)
            record.history = conversation(values)
            self._count_tokens(record)
            generation_id = record_chat_turn(record, settings=self.settings)
            events.put(ChatEvent("message", message_view(answer) if answer else {}))
            done = {"chat_id": chat_id, "seconds": seconds, "generation_id": generation_id}
            events.put(ChatEvent("done", done))
        except Exception as exc:  # the reader learns what went wrong; the service goes on
            with contextlib.suppress(Exception):  # else the next turn drops it
                self._drop_unfinished_turn(chat_id, asked.id)
            events.put(ChatEvent("error", {"message": f"{type(exc).__name__}: {exc}"}))
        finally:
            with contextlib.suppress(Exception):  # a stale claim is taken over later anyway
                release_turn(self.settings.database_url, chat_id, owner)
            events.put(None)

    def _count_tokens(self, record: TurnRecord) -> None:
        """The turn's input and answer in tokens of the chat's model (already loaded)."""
        model = self.context.models.get(record.model_path)
        record.input_tokens = model.count_tokens(record.input)
        record.completion_tokens = model.count_tokens(record.output)

    def _drop_unfinished_turn(self, chat_id: str, message_id: str | None = None) -> dict[str, Any]:
        """The chat's values once a turn that did not finish is removed, from its user message
        on: the turn that began with `message_id`, else a last turn left without an answer (a
        server stopped mid-turn). Left in, an unanswered message breaks every later request to
        a template that wants user and assistant turns to alternate."""
        values = self._values(chat_id)
        messages = values.get("messages", [])
        start = _unfinished_turn_start(messages, message_id)
        if start is None:
            return values
        removed = [RemoveMessage(id=m.id) for m in messages[start:] if m.id]
        self.graph.update_state(_thread(chat_id), {"messages": removed}, as_node="start")
        return self._values(chat_id)

    def _stream_turn(
        self, chat_id: str, asked: HumanMessage, events: queue.Queue
    ) -> list[BaseMessage]:
        """Run the graph for one user message, putting token and tool events on `events`."""
        new_messages: list[BaseMessage] = []
        stream = self.graph.stream(
            {"messages": [asked]},
            _thread(chat_id),
            context=self.context,
            stream_mode=["messages", "updates"],
            durability="sync",
        )
        for mode, chunk in stream:
            if mode == "messages":
                message, metadata = chunk
                from_agent = metadata.get("langgraph_node") == "agent"
                if isinstance(message, AIMessageChunk) and message.content and from_agent:
                    events.put(ChatEvent("token", {"text": message.content}))
                continue
            for update in chunk.values():
                for message in (update or {}).get("messages", []):
                    new_messages.append(message)
                    for event in _tool_events(message):
                        events.put(event)
        return new_messages

    def _values(self, chat_id: str) -> dict[str, Any]:
        if not chat_id.startswith(CHAT_ID_PREFIX):
            raise ChatNotFound(f"no chat with id '{chat_id}'")
        values = self.graph.get_state(_thread(chat_id)).values
        if not values or "settings" not in values:
            raise ChatNotFound(f"no chat with id '{chat_id}'")
        return values


def check_message(text: str) -> None:
    """ChatInvalid unless `text` is a message a chat takes (some text, not too long)."""
    if not text.strip() or len(text) > MAX_MESSAGE_CHARS:
        raise ChatInvalid(f"a message is 1 to {MAX_MESSAGE_CHARS} characters of text")


def message_view(message: BaseMessage) -> dict[str, Any]:
    """A message as plain JSON: role, content, and tool calls or the call a result answers."""
    if isinstance(message, ToolMessage):
        return {
            "role": "tool",
            "content": str(message.content),
            "name": message.name,
            "tool_call_id": message.tool_call_id,
            "status": message.status,
        }
    role = {"human": "user", "ai": "assistant"}.get(message.type, message.type)
    view: dict[str, Any] = {"role": role, "content": str(message.content)}
    if isinstance(message, AIMessage) and message.tool_calls:
        view["tool_calls"] = [
            {"id": c.get("id"), "name": c["name"], "args": c["args"]} for c in message.tool_calls
        ]
    return view


def conversation(values: dict[str, Any]) -> list[dict[str, str]]:
    """A chat's messages so far as user and assistant turns: what was asked and the answers,
    without the tool rounds in between (a call and its result are not a turn of their own)."""
    turns = []
    for message in values.get("messages", []):
        if isinstance(message, HumanMessage):
            turns.append({"role": "user", "content": str(message.content)})
        elif isinstance(message, AIMessage) and not message.tool_calls:
            turns.append({"role": "assistant", "content": str(message.content)})
    return turns


def _unfinished_turn_start(messages: list[BaseMessage], message_id: str | None) -> int | None:
    """Where the turn to remove starts: the user message `message_id`, else the last user
    message when the conversation does not end with an answer; None if there is none."""
    if message_id is None:
        last = messages[-1] if messages else None
        if last is None or (isinstance(last, AIMessage) and not last.tool_calls):
            return None
        starts = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
    else:
        starts = [i for i, m in enumerate(messages) if m.id == message_id]
    return starts[-1] if starts else None


def _tool_events(message: BaseMessage) -> Iterator[ChatEvent]:
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            yield ChatEvent(
                "tool_call", {"id": call.get("id"), "name": call["name"], "args": call["args"]}
            )
    elif isinstance(message, ToolMessage):
        yield ChatEvent("tool_result", message_view(message))


def prompt_version(settings: dict[str, Any]) -> str | None:
    """A short sha256 of the prompt artifact a chat applies (None without one)."""
    if not settings.get("artifact_prompt") and not settings.get("artifact_exemplars"):
        return None
    text = json.dumps([settings.get("artifact_prompt"), settings.get("artifact_exemplars")])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _turn_record(
    chat_id: str,
    text: str,
    settings: dict[str, Any],
    new_messages: list[BaseMessage],
    seconds: float,
    source: str,
) -> TurnRecord:
    results = {m.tool_call_id: m for m in new_messages if isinstance(m, ToolMessage)}
    calls = [
        {
            "name": call["name"],
            "args": call["args"],
            "result": str(results[call["id"]].content) if call.get("id") in results else None,
            "status": results[call["id"]].status if call.get("id") in results else None,
        }
        for m in new_messages
        if isinstance(m, AIMessage)
        for call in m.tool_calls
    ]
    answers = [m for m in new_messages if isinstance(m, AIMessage)]
    return TurnRecord(
        chat_id=chat_id,
        model=settings["model"],
        model_path=settings["model_path"],
        input=text,
        output=str(answers[-1].content) if answers else "",
        tool_calls=calls,
        seconds=seconds,
        prompt_version=prompt_version(settings),
        source=source,
    )


def _drain(events: queue.Queue) -> Iterator[ChatEvent]:
    while (event := events.get()) is not None:
        yield event


def _thread(chat_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": chat_id}}
