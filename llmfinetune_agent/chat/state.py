"""The graph state of one conversation: its settings and its messages (tool calls included).

The conversation is a LangGraph thread (`thread_id` = the chat id) in the same checkpoint store
as runs, so it survives restarts. Messages are langchain-core messages; the strict msgpack
serializer stores and rebuilds them (they are among its safe types).
"""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

# pydantic (LangGraph's JSON schemas for Studio) needs typing_extensions' TypedDict on 3.11.
from typing_extensions import TypedDict


class ChatState(TypedDict, total=False):
    """A conversation: what it was set up with, and everything said in it."""

    settings: dict[str, Any]
    """`ChatConfig` fields, plus `model_path` (the resolved model), `artifact_prompt` and
    `artifact_exemplars` (the system text and exemplar turns of a prompt artifact, if the model
    is one)."""
    messages: Annotated[list[AnyMessage], add_messages]
    """User, assistant and tool messages in order; each tool call is in an assistant message's
    `tool_calls`, its result a tool message answering that call's id."""
    rounds: int
    """Tool rounds taken for the current user message (reset when one arrives)."""
