"""Request and response bodies of `/chats` (conversations with the assistant), with examples."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api import examples as ex
from llmfinetune_agent.chat.config import ChatConfig

CHAT_ID = "chat-5e0b3c9a41d2"
CALL = {"id": "call_3f2a9c1b7d04", "name": "calculator", "args": {"expression": "12 * 7"}}
MESSAGES: list[dict[str, Any]] = [
    {"role": "user", "content": "What is 12 times 7?"},
    {"role": "assistant", "content": "", "tool_calls": [CALL]},
    {
        "role": "tool",
        "content": "84",
        "name": "calculator",
        "tool_call_id": CALL["id"],
        "status": "success",
    },
    {"role": "assistant", "content": "The answer is 84."},
]
CHAT = {
    "id": CHAT_ID,
    "model": ex.MODEL["id"],
    "preset": "helpful",
    "system_prompt": None,
    "tools": ["calculator", "python"],
    "max_iterations": 5,
    "max_new_tokens": 256,
    "temperature": None,
    "created_at": "2026-12-06T10:18:54.025859+00:00",
    "messages": MESSAGES,
}


class ChatCreate(ChatConfig):
    """A new conversation: the model, its personality and its tools."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra=ex.examples(
            {"model": ex.MODEL["id"], "preset": "coding", "tools": ["calculator", "python"]},
            {"model": "builtin:tiny-llama", "system_prompt": "Answer like a pirate."},
        ),
    )


class ToolCallPublic(BaseModel):
    """A tool the assistant asked for."""

    id: str | None = Field(description="Answered by the tool message with this tool_call_id.")
    name: str
    args: dict[str, Any] = Field(description="The arguments, as the model wrote them.")


class ChatMessagePublic(BaseModel):
    """One message of a conversation."""

    role: Literal["user", "assistant", "tool", "system"]
    content: str
    tool_calls: list[ToolCallPublic] | None = Field(
        None, description="assistant: the tools it called in this message."
    )
    name: str | None = Field(None, description="tool: which tool answered.")
    tool_call_id: str | None = Field(None, description="tool: the call this result answers.")
    status: Literal["success", "error"] | None = Field(
        None, description="tool: 'error' when the call could not be run (bad arguments, ...)."
    )


class ChatPublic(BaseModel):
    """A conversation: its settings and every message, tool calls and results included."""

    model_config = ConfigDict(json_schema_extra=ex.examples(CHAT))

    id: str = Field(description="The chat id (also its LangGraph thread id).")
    model: str
    preset: str
    system_prompt: str | None
    tools: list[str]
    max_iterations: int
    max_new_tokens: int
    temperature: float | None
    created_at: str
    messages: list[ChatMessagePublic]


class MessageIn(BaseModel):
    """A user message."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra=ex.examples({"content": "What is 12 times 7?"})
    )

    content: str = Field(min_length=1, max_length=20_000)
