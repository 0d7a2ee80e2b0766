"""`/chats` over real HTTP: bad requests named (422/404), the answer streamed as server-sent
events with each tool call and result, the service answering while the python tool runs, and a
conversation that survives a restart of `serve` and continues with its history."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from llmfinetune_agent.tools.python_sandbox import SandboxLimits
from tests.api.conftest import free_port, live_server
from tests.llmfinetune_agent.chat.tool_model import (
    CALCULATOR_ANSWER,
    CALCULATOR_QUESTION,
    PROGRAM_ANSWER,
    PROGRAM_REQUEST,
    TOOLS_USED,
    fitted_tool_model,
)


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings, workers=False)) as c:
        yield c


def _detail(response) -> str:
    return json.dumps(response.json()["detail"])


def test_bad_chat_requests_name_what_is_wrong(client, tiny_model_dir) -> None:
    unknown_tool = client.post("/chats", json={"model": "builtin:tiny-llama", "tools": ["search"]})
    assert unknown_tool.status_code == 422 and "unknown tool 'search'" in _detail(unknown_tool)
    not_allowed = client.post(
        "/chats", json={"model": "builtin:tiny-llama", "tools": ["os:system"]}
    )
    assert not_allowed.status_code == 422 and "module 'os' is not allow-listed" in _detail(
        not_allowed
    )
    outside = client.post("/chats", json={"model": str(tiny_model_dir)})  # not under a data root
    assert outside.status_code == 422 and "outside the data roots" in _detail(outside)
    assert outside.json()["detail"][0]["loc"] == ["body", "model"]
    etc = client.post("/chats", json={"model": "/etc/passwd"})
    assert etc.status_code == 422
    bad_preset = client.post("/chats", json={"model": "builtin:tiny-llama", "preset": "pirate"})
    assert bad_preset.status_code == 422 and bad_preset.json()["detail"][0]["loc"] == [
        "body",
        "preset",
    ]
    nul = client.post("/chats", json={"model": "builtin:tiny\x00llama"})
    assert nul.status_code == 422 and "NUL" in _detail(nul)
    # a name longer than any file name (schemathesis found it as a 500): an answer, not a crash
    too_long = client.post("/chats", json={"model": "0" * 4000})
    assert too_long.status_code == 422 and too_long.json()["detail"][0]["loc"] == ["body", "model"]
    assert client.get("/chats/chat-000000000000").status_code == 404
    missing = client.post("/chats/chat-000000000000/messages", json={"content": "hi"})
    assert missing.status_code == 404
    assert client.post("/chats/x/messages", json={"content": ""}).status_code == 422


def test_a_model_that_cannot_load_is_refused_when_the_chat_is_created(
    client, tmp_path, monkeypatch
) -> None:
    from huggingface_hub import constants

    # A hub cache holding one model (its config.json: what offline loading reads first).
    cache = tmp_path / "hub"
    snapshot = cache / "models--org--cached" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text('{"model_type": "llama"}')
    (cache / "models--org--cached" / "refs").mkdir()
    (cache / "models--org--cached" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))

    for model in ("nope", "foo/bar", "org/other"):
        refused = client.post("/chats", json={"model": model})
        assert refused.status_code == 422, refused.text
        detail = refused.json()["detail"][0]
        assert detail["loc"] == ["body", "model"]
        assert detail["msg"].startswith(f"model {model!r} is neither a registry id")
        assert "Hugging Face cache" in detail["msg"]
    created = client.post("/chats", json={"model": "org/cached"})  # found, nothing loaded yet
    assert created.status_code == 201, created.text
    assert created.json()["model"] == "org/cached"
    unknown_tool = client.post("/chats", json={"model": "org/cached", "tools": ["search"]})
    assert unknown_tool.json()["detail"][0]["loc"] == ["body", "tools"]


def test_a_chat_is_created_shown_and_answered(client) -> None:
    created = client.post(
        "/chats", json={"model": "builtin:tiny-llama", "preset": "coding", "max_new_tokens": 3}
    )
    assert created.status_code == 201, created.text
    chat = created.json()
    assert (chat["preset"], chat["messages"], chat["id"].startswith("chat-")) == (
        "coding",
        [],
        True,
    )
    with client.stream(
        "POST", f"/chats/{chat['id']}/messages", json={"content": "Hello"}
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        events = _sse(answer.iter_lines())
    assert [kind for kind, _ in events][-2:] == ["message", "done"]
    shown = client.get(f"/chats/{chat['id']}").json()
    assert [(m["role"], m["content"]) for m in shown["messages"]] == [
        ("user", "Hello"),
        ("assistant", events[-2][1]["content"]),
    ]


def _upload_artifact(client, artifact: dict) -> str:
    uploaded = client.post(
        "/data", params={"filename": "prompt.json"}, content=json.dumps(artifact).encode()
    )
    assert uploaded.status_code == 201, uploaded.text
    return uploaded.json()["path"]


def test_a_prompt_artifact_may_only_name_a_model_a_chat_may_load(client, tiny_model_dir) -> None:
    outside = _upload_artifact(client, {"model": str(tiny_model_dir), "system_prompt": "hi"})
    refused = client.post("/chats", json={"model": outside})
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"][0]
    assert detail["loc"] == ["body", "model"]
    assert detail["msg"].startswith(
        f"prompt artifact {outside}: its 'model' {str(tiny_model_dir)!r} is outside the data roots"
    )
    empty = _upload_artifact(client, {"model": "", "system_prompt": "hi"})
    refused = client.post("/chats", json={"model": empty})
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "model"]
    assert refused.json()["detail"][0]["msg"].startswith(
        f"prompt artifact {empty}: its 'model' is empty"
    )
    inside = _upload_artifact(client, {"model": "builtin:tiny-llama", "system_prompt": "hi"})
    assert client.post("/chats", json={"model": inside}).status_code == 201


def test_a_chat_turn_can_be_rated(client) -> None:
    chat = client.post("/chats", json={"model": "builtin:tiny-llama", "max_new_tokens": 3}).json()
    with client.stream("POST", f"/chats/{chat['id']}/messages", json={"content": "Hi"}) as answer:
        kind, done = _sse(answer.iter_lines())[-1]
    assert kind == "done" and done["chat_id"] == chat["id"]
    rated = client.post(
        f"/generations/{done['generation_id']}/feedback",
        json={"rating": "down", "better": "Hello!"},
    )
    assert rated.status_code == 201, rated.text
    assert (rated.json()["generation_id"], rated.json()["rating"]) == (
        done["generation_id"],
        "down",
    )


def _sse(lines) -> list[tuple[str, dict]]:
    return list(_sse_events(lines))


def _sse_events(lines):
    """(event, data) pairs as they arrive."""
    kind = None
    for line in lines:
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            yield kind, json.loads(line[len("data: ") :])


@pytest.fixture(scope="module")
def tool_model_dir() -> Path:
    return fitted_tool_model()


@pytest.mark.slow
def test_tool_events_stream_and_the_service_answers_while_python_runs(
    settings, tool_model_dir
) -> None:
    import dataclasses

    settings = dataclasses.replace(
        settings, data_roots=[*settings.data_roots, tool_model_dir.parent]
    )
    app = create_app(settings, workers=False)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=120) as http:
        app.state.chats.context.sandbox = SandboxLimits(timeout_seconds=3)
        body = {"model": str(tool_model_dir), "tools": TOOLS_USED, "max_new_tokens": 96}
        chat_id = http.post("/chats", json=body).json()["id"]
        seen: list[tuple[str, dict]] = []
        answers_while_running: list[int] = []

        def converse() -> None:
            with http.stream(
                "POST", f"/chats/{chat_id}/messages", json={"content": PROGRAM_REQUEST}
            ) as answer:
                for event in _sse_events(answer.iter_lines()):
                    seen.append(event)

        talker = threading.Thread(target=converse)
        talker.start()
        deadline = time.monotonic() + 120
        while not any(kind == "tool_call" for kind, _ in seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        while not any(kind == "tool_result" for kind, _ in seen) and time.monotonic() < deadline:
            with httpx.Client(base_url=url, timeout=10) as other:
                answers_while_running.append(other.get("/healthz").status_code)
                answers_while_running.append(other.get(f"/chats/{chat_id}").status_code)
        talker.join()
        kinds = [kind for kind, _ in seen if kind != "token"]
    assert kinds == ["tool_call", "tool_result", "message", "done"], seen
    call, result, final = (
        data for kind, data in seen if kind in ("tool_call", "tool_result", "message")
    )
    assert (call["name"], call["args"]) == ("python", {"code": "while True: pass"})
    assert result["content"].startswith("The program was stopped: it ran past its time limit.")
    assert final["content"] == PROGRAM_ANSWER
    assert answers_while_running and set(answers_while_running) == {200}


def _ask(url: str, chat_id: str, text: str) -> list[tuple[str, dict]]:
    """The events answering one message."""
    with httpx.stream(
        "POST", f"{url}/chats/{chat_id}/messages", json={"content": text}, timeout=300
    ) as answer:
        return _sse(answer.iter_lines())


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llmfinetune_agent.cli",
            "serve",
            "--no-workers",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"serve did not start: {log.read_text()}")


@pytest.mark.slow
def test_a_conversation_survives_a_restart_of_serve(tool_model_dir, tmp_path) -> None:
    env = {
        **os.environ,
        "FINETUNE_AGENT_HOME": str(tmp_path / "home"),
        "FINETUNE_AGENT_DATA_ROOTS": str(tool_model_dir.parent),
    }
    port, log = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    server = _serve(env, port, log)
    try:
        body = {"model": str(tool_model_dir), "tools": TOOLS_USED, "max_new_tokens": 96}
        chat_id = httpx.post(f"{url}/chats", json=body, timeout=120).json()["id"]
        first = _ask(url, chat_id, CALCULATOR_QUESTION)
        before = httpx.get(f"{url}/chats/{chat_id}", timeout=30).json()
    finally:
        server.send_signal(signal.SIGKILL)  # no clean shutdown: the store alone must keep it
        server.wait(30)
    assert [m["role"] for m in before["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert first[-2][1]["content"] == CALCULATOR_ANSWER
    server = _serve(env, port, log)
    try:
        after_restart = httpx.get(f"{url}/chats/{chat_id}", timeout=30).json()
        second = _ask(url, chat_id, CALCULATOR_QUESTION)
        continued = httpx.get(f"{url}/chats/{chat_id}", timeout=30).json()
    finally:
        server.terminate()
        server.wait(30)
    assert after_restart == before
    assert second[-2][1]["content"] == CALCULATOR_ANSWER
    assert continued["messages"][:4] == before["messages"]
    assert [m["role"] for m in continued["messages"][4:]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
