"""Conversations kept in the checkpoint store: created with a checked model and tools, their
history kept across a new service on the same database, one turn at a time, every turn recorded
as an interaction; the chat model adapter renders bound tools and streams what it generates."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from llmfinetune_agent.chat.config import ChatConfig
from llmfinetune_agent.chat.graph import graph as studio_graph
from llmfinetune_agent.chat.interactions import read_chat_turns
from llmfinetune_agent.chat.service import (
    ChatBusy,
    ChatInvalid,
    ChatNotFound,
    ChatService,
    conversation,
)
from llmfinetune_agent.chat_model import LocalChatModel, reply_message
from llmfinetune_agent.checkpointing import open_checkpointer
from llmfinetune_agent.feedback_store import FeedbackStore
from llmfinetune_agent.settings import Settings
from llmfinetune_agent.tools.registry import calculator_tool
from models.config import ModelConfig


@pytest.fixture
def settings() -> Settings:
    settings = Settings.from_env()
    settings.ensure_dirs()
    return settings


def _events(chats: ChatService, chat_id: str, text: str) -> list:
    return list(chats.send(chat_id, text))


def test_a_conversation_keeps_its_history_across_a_new_service(settings, tiny_model_dir) -> None:
    config = ChatConfig(model=str(tiny_model_dir), preset="teacher", max_new_tokens=4)
    with open_checkpointer(settings.database_url) as saver:
        chats = ChatService(settings, saver)
        chat = chats.create_chat(config)
        events = _events(chats, chat["id"], "Hello there")
    assert [e.kind for e in events][-2:] == ["message", "done"]
    first_answer = events[-2].data
    with open_checkpointer(settings.database_url) as saver:  # another process, same database
        chats = ChatService(settings, saver)
        before = chats.describe(chat["id"])
        _events(chats, chat["id"], "Tell me more")
        after = chats.describe(chat["id"])
    assert before["preset"] == "teacher" and before["model"] == str(tiny_model_dir)
    assert before["messages"] == [{"role": "user", "content": "Hello there"}, first_answer]
    assert after["messages"][:2] == before["messages"]
    assert [m["role"] for m in after["messages"]] == ["user", "assistant", "user", "assistant"]
    turns = read_chat_turns(settings)
    assert [t["input"] for t in turns] == ["Hello there", "Tell me more"]
    assert turns[0]["output"] == first_answer["content"] and turns[0]["chat_id"] == chat["id"]
    # Each recorded turn carries the conversation it answered, so its export has the context.
    asked = [i["messages"] for i in FeedbackStore(settings.database_url).list_interactions()]
    assert asked == [after["messages"][:1], after["messages"][:3]]


def test_conversation_keeps_the_asked_turns_and_answers_not_the_tool_rounds() -> None:
    call = {"name": "calculator", "args": {"expression": "2*3"}, "id": "c1"}
    values = {
        "messages": [
            HumanMessage("What is 2*3?"),
            AIMessage("", tool_calls=[call]),
            ToolMessage("6", tool_call_id="c1", name="calculator"),
            AIMessage("It is 6."),
            HumanMessage("Thanks"),
        ]
    }
    assert conversation(values) == [
        {"role": "user", "content": "What is 2*3?"},
        {"role": "assistant", "content": "It is 6."},
        {"role": "user", "content": "Thanks"},
    ]


def test_bad_settings_are_refused_before_a_chat_exists(settings, tiny_model_dir) -> None:
    with open_checkpointer(settings.database_url) as saver:
        chats = ChatService(settings, saver)
        with pytest.raises(ChatInvalid, match="unknown tool 'search'"):
            chats.create_chat(ChatConfig(model=str(tiny_model_dir), tools=["search"]))
        with pytest.raises(ChatInvalid, match="model 'builtin:gpt-9' is neither a registry id"):
            chats.create_chat(ChatConfig(model="builtin:gpt-9"))
        with pytest.raises(ChatNotFound):
            chats.describe("chat-000000000000")
        with pytest.raises(ChatNotFound):
            chats.send("3d3b70c9259c", "hi")  # a run's thread is not a chat


def test_config_rules_name_the_field() -> None:
    with pytest.raises(ValueError, match="preset 'custom' needs a system_prompt"):
        ChatConfig(model="m", preset="custom")
    with pytest.raises(ValueError, match="either preset 'coding' or your own system_prompt"):
        ChatConfig(model="m", preset="coding", system_prompt="Be terse.")
    assert ChatConfig(model="m", system_prompt="Be terse.").preset == "custom"


def test_one_turn_at_a_time(settings, tiny_model_dir) -> None:
    with open_checkpointer(settings.database_url) as saver:
        chats = ChatService(settings, saver)
        chat = chats.create_chat(ChatConfig(model=str(tiny_model_dir), max_new_tokens=2))
        model = chats.context.models.get(chats.describe(chat["id"]) and _path(chats, chat["id"]))
        model._model()  # loaded; now hold its generation lock so the first turn waits on it
        with model._lock:
            first = chats.send(chat["id"], "one")
            with pytest.raises(ChatBusy, match="is answering a message"):
                chats.send(chat["id"], "two")
        assert [e.kind for e in first][-1] == "done"
        assert len(_events(chats, chat["id"], "three")) >= 2


def _path(chats: ChatService, chat_id: str) -> str:
    return chats.graph.get_state({"configurable": {"thread_id": chat_id}}).values["settings"][
        "model_path"
    ]


def test_the_studio_graph_runs_a_turn_without_a_checkpointer(tiny_model_dir) -> None:
    state = studio_graph.invoke(
        {
            "settings": {"model": str(tiny_model_dir), "max_new_tokens": 3},
            "messages": [HumanMessage("Hi")],
        }
    )
    assert [m.type for m in state["messages"]] == ["human", "ai"]
    assert state["settings"]["model_path"] == str(Path(tiny_model_dir).resolve())


def test_bound_tools_are_rendered_in_the_prompt_and_streaming_matches_invoke(
    tiny_model_dir,
) -> None:
    model = LocalChatModel(
        local_model=ModelConfig(name_or_path=str(tiny_model_dir)), do_sample=False, max_new_tokens=8
    )
    schema = convert_to_openai_tool(calculator_tool())
    prompt = model.render_prompt([HumanMessage("What is 2 plus 3?")], tools=[schema])
    assert prompt.startswith("<|system|>\nTools:\n") and '"name": "calculator"' in prompt
    bound = model.bind_tools([calculator_tool()])
    invoked = bound.invoke("What is 2 plus 3?")
    streamed = None
    for chunk in bound.stream("What is 2 plus 3?"):
        streamed = chunk if streamed is None else streamed + chunk
    assert (streamed.content, streamed.tool_calls) == (invoked.content, invoked.tool_calls)
    plain = model.invoke("Hello")
    assert "".join(c.content for c in model.stream("Hello")) == plain.content


def test_a_reply_with_calls_becomes_tool_calls() -> None:
    tools = [convert_to_openai_tool(calculator_tool())]
    reply = reply_message(
        'Sure.\n<tool_call>{"name": "calculator", "arguments": {"expression": "2+3"}}</tool_call>',
        tools,
    )
    assert isinstance(reply, AIMessage) and reply.content == "Sure."
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        ("calculator", {"expression": "2+3"})
    ]
    broken = reply_message('<tool_call>{"name": "calculator", "arguments": </tool_call>', tools)
    assert broken.tool_calls == [] and broken.response_metadata["tool_call_problems"]
    assert reply_message("<tool_call>{}</tool_call>", None).content == "<tool_call>{}</tool_call>"
