"""`langgraph dev` serves `langgraph.json` offline; LangGraph Studio's API drives the graph:
a thread starts the quickstart (from the service's initial state, a plain run config as in
configs/, or `{"config": ...}`), stops at `approve_plan`, and resumes with an approval."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmfinetune_agent.config import parse_run_config
from tests.api.conftest import REPO, free_port, small_config


def initial_state(run_dir: Path) -> dict:
    """What `RunService` feeds a new run; Studio users paste the same as the graph's input."""
    config = parse_run_config(small_config("studio")).model_dump(mode="json")
    return {
        "run_id": run_dir.name,
        "run_dir": str(run_dir),
        "config": config,
        "approved": {},
        "decisions": [],
        "log": [],
        "iteration": 1,
        "outcome": "running",
    }


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    """`langgraph dev` on a free port, run from the repository (as a user runs it), with its
    own home; yields a `langgraph_sdk` client and that home."""
    from langgraph_sdk import get_sync_client

    exe = shutil.which("langgraph")
    assert exe, "langgraph-cli[inmem] is in the dev extra"
    tmp = tmp_path_factory.mktemp("studio")
    port, home = free_port(), tmp / "home"
    env = {
        **os.environ,
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "HF_HUB_OFFLINE": "1",
        "FINETUNE_AGENT_HOME": str(home),
    }
    log_path = tmp / "langgraph-dev.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [
            exe,
            "dev",
            "--no-browser",
            "--no-reload",
            "--port",
            str(port),
            "--config",
            str(REPO / "langgraph.json"),
        ],
        cwd=REPO,  # graph paths are relative to it; `dev` keeps state in .langgraph_api/
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ok(f"{url}/ok", server, log_path)
        yield get_sync_client(url=url), home
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.mark.slow
def test_langgraph_dev_serves_the_graph_and_resumes_an_interrupt(tmp_path, studio) -> None:
    client, _ = studio
    assert any(a["graph_id"] == "finetune_agent" for a in client.assistants.search())

    run_dir = tmp_path / "runs" / "studio1"
    run_dir.mkdir(parents=True)
    thread = client.threads.create()
    client.runs.wait(thread["thread_id"], "finetune_agent", input=initial_state(run_dir))
    state = client.threads.get_state(thread["thread_id"])
    (interrupt,) = state["interrupts"]
    assert interrupt["value"]["kind"] == "approve_plan"
    assert interrupt["value"]["options"] == ["approve", "reject", "edit"]

    resume = {interrupt["id"]: {"decision": "approve", "comment": "from Studio"}}
    client.runs.wait(thread["thread_id"], "finetune_agent", command={"resume": resume})
    state = client.threads.get_state(thread["thread_id"])
    assert [d["gate"] for d in state["values"]["decisions"]] == ["approve_plan"]
    assert state["values"]["decisions"][0]["comment"] == "from Studio"
    assert state["interrupts"][0]["value"]["kind"] == "approve_data"
    assert (run_dir / "data" / "train.jsonl").is_file()


def quickstart_as_pasted() -> dict[str, Any]:
    """configs/quickstart.json as a Studio user pastes it: relative data paths kept (only the
    model is the tiny built-in one, to stay fast)."""
    config = json.loads((REPO / "configs" / "quickstart-tiny.json").read_text())
    config["model"]["name_or_path"] = "builtin:tiny-llama"
    assert not Path(config["data"]["train"]).is_absolute()
    return config


@pytest.mark.slow
def test_a_thread_starts_from_a_plain_run_config_or_a_config_object(studio) -> None:
    client, home = studio
    config = quickstart_as_pasted()
    train = (REPO / "configs" / config["data"]["train"]).resolve()
    for graph_input in (config, {"config": config}):
        thread_id = client.threads.create()["thread_id"]
        client.runs.wait(thread_id, "finetune_agent", input=graph_input)
        state = client.threads.get_state(thread_id)
        assert [i["value"]["kind"] for i in state["interrupts"]] == ["approve_plan"], state
        values = state["values"]
        # The run id is the thread id; its directory is made under the home, config written.
        assert values["run_id"] == thread_id
        run_dir = home / "runs" / thread_id
        assert values["run_dir"] == str(run_dir) and (run_dir / "config.json").is_file()
        # Relative data paths were read from configs/, as the CLI reads them from the
        # config file's folder; the data was prepared from that file.
        assert values["config"]["data"]["train"] == str(train)
        assert values["data"]["train_rows"] > 0 and (run_dir / "data" / "train.jsonl").is_file()
        assert values["config"]["model"]["name_or_path"] == "builtin:tiny-llama"
        assert values.get("model") is None and values.get("hitl") is None  # not left as state


def _wait_ok(url: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"langgraph dev exited:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"langgraph dev did not answer:\n{log.read_text()[-4000:]}")


@pytest.mark.slow
def test_the_assistant_graph_answers_and_remembers_in_studio(studio) -> None:
    client, _ = studio
    assert any(a["graph_id"] == "assistant" for a in client.assistants.search())
    thread_id = client.threads.create()["thread_id"]
    settings = {"model": "builtin:tiny-llama", "max_new_tokens": 3}
    first = {"settings": settings, "messages": [{"role": "user", "content": "Hi"}]}
    client.runs.wait(thread_id, "assistant", input=first)
    client.runs.wait(
        thread_id, "assistant", input={"messages": [{"role": "user", "content": "Again"}]}
    )
    values = client.threads.get_state(thread_id)["values"]
    assert [m["type"] for m in values["messages"]] == ["human", "ai", "human", "ai"]
    assert values["settings"]["model_path"].endswith("tiny-llama")
