"""The tool loop with a real (tiny, fitted) model: the assistant calls the calculator, reads the
result and answers with it; every call and result is kept in the conversation; the CLI does a
turn without a terminal and continues a conversation by id."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmfinetune_agent.chat.config import ChatConfig
from llmfinetune_agent.chat.service import ChatService
from llmfinetune_agent.checkpointing import open_checkpointer
from llmfinetune_agent.settings import Settings
from llmfinetune_agent.tools.python_sandbox import SandboxLimits
from tests.llmfinetune_agent.chat.tool_model import (
    CALCULATOR_ANSWER,
    CALCULATOR_QUESTION,
    fitted_tool_model,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tool_model_dir() -> Path:
    return fitted_tool_model()


def test_the_assistant_calls_the_calculator_and_answers_with_its_result(
    tool_model_dir: Path,
) -> None:
    settings = Settings.from_env()
    settings.ensure_dirs()
    config = ChatConfig(
        model=str(tool_model_dir), tools=["calculator", "python"], max_new_tokens=96
    )
    with open_checkpointer(settings.database_url) as saver:
        chats = ChatService(settings, saver, sandbox=SandboxLimits(timeout_seconds=3))
        chat_id = chats.create_chat(config)["id"]
        events = list(chats.send(chat_id, CALCULATOR_QUESTION))
        messages = chats.describe(chat_id)["messages"]
    kinds = [e.kind for e in events if e.kind != "token"]
    assert kinds == ["tool_call", "tool_result", "message", "done"]
    call, result, final = (
        e.data for e in events if e.kind in ("tool_call", "tool_result", "message")
    )
    assert (call["name"], call["args"]) == ("calculator", {"expression": "2 + 3"})
    assert (result["content"], result["status"], result["tool_call_id"]) == (
        "5",
        "success",
        call["id"],
    )
    assert final["content"] == CALCULATOR_ANSWER
    tokens = "".join(e.data["text"] for e in events if e.kind == "token")
    assert tokens == CALCULATOR_ANSWER  # the answer streamed; the call held back, not shown
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1]["tool_calls"] == [call] and messages[2]["content"] == "5"


def test_chat_message_works_without_a_terminal(tool_model_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "FINETUNE_AGENT_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "llmfinetune_agent.cli", "chat", str(tool_model_dir)]
    first = subprocess.run(
        [
            *command,
            "--tools",
            "calculator,python",
            "--max-new-tokens",
            "96",
            "--message",
            CALCULATOR_QUESTION,
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout == CALCULATOR_ANSWER + "\n"
    assert '[calculator] {"expression": "2 + 3"}' in first.stderr
    assert "[calculator ->] 5" in first.stderr
    chat_id = next(
        line.split()[1] for line in first.stderr.splitlines() if line.startswith("chat ")
    )
    again = subprocess.run(
        [sys.executable, "-m", "llmfinetune_agent.cli", "chat", "--chat", chat_id],
        input=CALCULATOR_QUESTION + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )  # standard input that is not a terminal: one message per line
    assert again.returncode == 0, again.stderr
    assert again.stdout == CALCULATOR_ANSWER + "\n"
    unknown = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmfinetune_agent.cli",
            "chat",
            "--chat",
            "chat-000000000000",
            "-m",
            "hi",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert unknown.returncode == 2 and "no chat with id 'chat-000000000000'" in unknown.stderr
