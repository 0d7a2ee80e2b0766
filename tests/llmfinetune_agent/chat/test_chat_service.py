"""Conversations kept in the checkpoint store: created with a checked model and tools, their
history kept across a new service on the same database, one turn at a time, every turn recorded
as an interaction; the chat model adapter renders bound tools and streams what it generates."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from sqlalchemy import insert

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
from llmfinetune_agent.chat.turn_lock import claim_turn
from llmfinetune_agent.chat_model import LocalChatModel, PromptTooLong, reply_message
from llmfinetune_agent.checkpointing import open_checkpointer
from llmfinetune_agent.feedback_store import FeedbackStore
from llmfinetune_agent.settings import Settings
from llmfinetune_agent.store.engine import engine_for
from llmfinetune_agent.store.schema import ChatTurnRow, utcnow
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


def test_one_turn_at_a_time_across_processes(settings, tiny_model_dir) -> None:
    """The busy lock was a set in one process: `chat --chat ID` beside `serve` answered the
    same chat at once (one answer lost), and each turn's start now drops an unfinished turn."""
    with open_checkpointer(settings.database_url) as saver:
        chats = ChatService(settings, saver)
        chat = chats.create_chat(ChatConfig(model=str(tiny_model_dir), max_new_tokens=2))
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:  # another live process on this host answers the chat
            live = f"{socket.gethostname()}:{other.pid}:feed"
            _hold(settings, chat["id"], live)
            with pytest.raises(ChatBusy, match="is answering a message"):
                chats.send(chat["id"], "one")
        finally:
            other.kill()
            other.wait()
        # Its process is gone: the claim is taken over, and released after the turn.
        assert [e.kind for e in _events(chats, chat["id"], "two")][-1] == "done"
        assert claim_turn(settings.database_url, chat["id"]) is not None


def _hold(settings: Settings, chat_id: str, owner: str) -> None:
    with engine_for(settings.database_url).begin() as conn:
        conn.execute(insert(ChatTurnRow).values(chat_id=chat_id, owner=owner, since=utcnow()))


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


def test_each_turn_carries_the_id_feedback_rates(settings, tiny_model_dir) -> None:
    with open_checkpointer(settings.database_url) as saver:
        chats = ChatService(settings, saver)
        chat = chats.create_chat(ChatConfig(model=str(tiny_model_dir), max_new_tokens=2))
        done = _events(chats, chat["id"], "Hello")[-1]
    assert done.kind == "done"
    turn = FeedbackStore(settings.database_url).get_interaction(
        interaction_id=done.data["generation_id"]
    )
    assert (turn["chat_id"], turn["prompt"]) == (chat["id"], "Hello")


STRICT_TEMPLATE = (  # as Llama 2's and Mistral's: user and assistant turns must alternate
    "{% set ns = namespace(last='assistant') %}{% for m in messages %}"
    "{% if m['role'] != 'system' %}{% if (m['role'] == 'user') == (ns.last == 'user') %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant') }}"
    "{% endif %}{% set ns.last = m['role'] %}{% endif %}"
    "{{ '<|' + m['role'] + '|>\\n' + m['content'] + '</s>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


@pytest.fixture
def strict_model_dir(tiny_model_dir, tmp_path) -> Path:
    """The tiny Llama with a chat template that refuses two user turns in a row."""
    folder = tmp_path / "strict-llama"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "chat_template.jinja").write_text(STRICT_TEMPLATE)
    return folder


def test_a_failed_turn_leaves_the_conversation_as_it_was(settings, strict_model_dir) -> None:
    with open_checkpointer(settings.database_url) as saver:
        chats = ChatService(settings, saver)
        chat = chats.create_chat(ChatConfig(model=str(strict_model_dir), max_new_tokens=2))
        strict_model_dir.rename(strict_model_dir.with_name("moved"))  # the folder is gone
        failed = _events(chats, chat["id"], "hi")
        assert [e.kind for e in failed] == ["error"]
        assert chats.describe(chat["id"])["messages"] == []
        strict_model_dir.with_name("moved").rename(strict_model_dir)
        answered = _events(chats, chat["id"], "hi again")
        messages = chats.describe(chat["id"])["messages"]
    assert [e.kind for e in answered][-2:] == ["message", "done"], answered
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "hi again"),
        ("assistant", answered[-2].data["content"]),
    ]
    assert [t["input"] for t in read_chat_turns(settings)] == ["hi again"]


def test_a_turn_a_server_stop_cut_short_is_dropped_before_the_next(
    settings, strict_model_dir
) -> None:
    call = {"name": "calculator", "args": {"expression": "2*3"}, "id": "call_1"}
    killed = {  # what the store holds when the server stops mid-turn
        "before the model answered": [HumanMessage("two")],
        "before the tool ran": [HumanMessage("two"), AIMessage("", tool_calls=[call])],
    }
    with open_checkpointer(settings.database_url) as saver:
        chats = ChatService(settings, saver)
        for when, unfinished in killed.items():
            chat = chats.create_chat(ChatConfig(model=str(strict_model_dir), max_new_tokens=2))
            _events(chats, chat["id"], "one")
            before = chats.describe(chat["id"])["messages"]
            thread = {"configurable": {"thread_id": chat["id"]}}
            chats.graph.update_state(thread, {"messages": unfinished}, as_node="agent")
            answered = _events(chats, chat["id"], "three")
            after = chats.describe(chat["id"])["messages"]
            assert [e.kind for e in answered][-1] == "done", (when, answered)
            assert after[:2] == before and after[2] == {"role": "user", "content": "three"}
            assert [m["role"] for m in after] == ["user", "assistant", "user", "assistant"]


def test_a_prompt_that_does_not_fit_beside_the_reply_loses_its_oldest_turns(
    tiny_model_dir,
) -> None:
    model = LocalChatModel(
        local_model=ModelConfig(name_or_path=str(tiny_model_dir)), cut_overlong=False
    )
    tools = [convert_to_openai_tool(calculator_tool())]
    system = SystemMessage("You answer in one short sentence and never use lists.")
    turns = [HumanMessage("What is the capital of France? " * 8), AIMessage("Paris. " * 8)]
    turns += [HumanMessage("And of Italy? " * 8), AIMessage("Rome. " * 8)]
    latest = HumanMessage("And of Spain?")
    window = 1024  # the tiny Llama's context

    def ids(messages, max_new=1):
        return model._prompt_ids(messages, tools, max_new)

    kept = ids([system, *turns[2:], latest])  # the first question and answer dropped
    assert ids([system, *turns, latest], window - len(kept)) == kept
    smallest = ids([system, latest])
    assert ids([system, *turns, latest], window - len(smallest)) == smallest
    with pytest.raises(PromptTooLong, match="reduce max_new_tokens or the message"):
        ids([system, *turns, latest], window - len(smallest) + 1)
    # Other users of the adapter (data generation) keep the end of an overlong prompt.
    model.cut_overlong = True
    assert ids([system, latest], window - 16) == smallest[-16:]


def test_a_turn_whose_prompt_does_not_fit_is_refused(settings, tiny_model_dir) -> None:
    with open_checkpointer(settings.database_url) as saver:
        chats = ChatService(settings, saver)
        chat = chats.create_chat(ChatConfig(model=str(tiny_model_dir), max_new_tokens=1020))
        events = _events(chats, chat["id"], "Hello there")
        messages = chats.describe(chat["id"])["messages"]
    assert [e.kind for e in events] == ["error"]
    assert events[0].data["message"].startswith("PromptTooLong: the system prompt, tools and")
    assert (
        "max_new_tokens 1020 leaves them 4 of the model's 1024-token context"
        in (events[0].data["message"])
    )
    assert messages == []


def test_a_prompt_artifact_names_its_unusable_model(settings, tmp_path) -> None:
    empty, outside = tmp_path / "empty.json", tmp_path / "nowhere.json"
    empty.write_text('{"model": "", "system_prompt": "Be terse."}')
    outside.write_text('{"model": "/no/such/model", "system_prompt": "Be terse."}')
    with open_checkpointer(settings.database_url) as saver:
        chats = ChatService(settings, saver)
        with pytest.raises(ChatInvalid, match=f"prompt artifact {empty}: its 'model' is empty"):
            chats.create_chat(ChatConfig(model=str(empty)))
        with pytest.raises(ChatInvalid) as refused:
            chats.create_chat(ChatConfig(model=str(outside)))
    assert str(refused.value).startswith(
        f"prompt artifact {outside}: its 'model': model '/no/such/model' is neither"
    )
    assert refused.value.field == "model"


def test_a_tool_named_twice_is_offered_once_whoever_sets_the_chat_up() -> None:
    """The REST API and the CLI both build a ChatConfig: a repeated tool name is kept once
    there (it was de-duplicated by the CLI only, so a POST /chats offered it twice)."""
    config = ChatConfig(model="m", tools=["calculator", "python", "calculator"])
    assert config.tools == ["calculator", "python"]
