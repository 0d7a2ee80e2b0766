"""`langgraph dev` serves `langgraph.json` offline; LangGraph Studio's API drives the graph:
a thread starts the quickstart, stops at `approve_plan`, and resumes with an approval."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

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


@pytest.mark.slow
def test_langgraph_dev_serves_the_graph_and_resumes_an_interrupt(tmp_path, _isolated_home) -> None:
    from langgraph_sdk import get_sync_client

    exe = shutil.which("langgraph")
    assert exe, "langgraph-cli[inmem] is in the dev extra"
    port = free_port()
    env = {
        **os.environ,
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "HF_HUB_OFFLINE": "1",
        "FINETUNE_AGENT_HOME": str(_isolated_home),
    }
    log = (tmp_path / "langgraph-dev.log").open("w")
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
        _wait_ok(f"{url}/ok", server, tmp_path / "langgraph-dev.log")
        client = get_sync_client(url=url)
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
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


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
