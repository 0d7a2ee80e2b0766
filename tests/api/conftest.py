"""Fixtures for the REST API tests: settings on the per-test home, a small run config, and a
real uvicorn server on a free loopback port (SSE needs a real server to stream)."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from llmfinetune_agent.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DATA_ROOT = REPO / "configs" / "data"


def small_config(name: str = "api-small") -> dict[str, Any]:
    """The quickstart, cut down so a whole run takes well under a minute on CPU."""
    config = json.loads((REPO / "configs" / "quickstart-tiny.json").read_text())
    config["name"] = name
    config["data"]["train"] = str(DATA_ROOT / "quickstart" / "train.jsonl")
    config["training"].update(max_steps=4, save_steps=2)
    config["evaluation"].update(max_examples=4, max_new_tokens=8)
    return config


@pytest.fixture
def settings(_isolated_home: Path) -> Settings:
    """Settings from the environment (the per-test home); data roots: <home>/data, configs/data."""
    base = Settings.from_env()
    return dataclasses.replace(base, data_roots=[base.home / "data", DATA_ROOT])


@pytest.fixture
def client_and_model(settings: Settings, tiny_model_dir: Path):
    """A test client of the app (no run workers) and the id of the tiny Llama registered in it."""
    from fastapi.testclient import TestClient

    from api.main import create_app

    with TestClient(create_app(settings, workers=False)) as client:
        store = client.app.state.service.store
        model = store.register_model(run_id=None, path=str(tiny_model_dir), base_model="tiny")
        yield client, model.id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def wait_for_status(
    client: httpx.Client | Any, run_id: str, statuses: tuple[str, ...], timeout: float = 120
) -> dict[str, Any]:
    """Poll `GET /runs/{id}` until its status is one of `statuses`."""
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/runs/{run_id}").json()
        if run["status"] in statuses:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} stayed {run['status']}: {run.get('error')}")
        time.sleep(0.2)


@contextmanager
def serve_process(home: Path, log_path: Path, **env: str) -> Iterator[str]:
    """`finetune-agent serve` as a user runs it, on a free port, with its own home and data
    roots `configs/`; yields its base URL and stops it (SIGTERM) afterwards."""
    import os
    import shutil
    import subprocess

    exe = shutil.which("finetune-agent")
    assert exe, "the project is installed (pip install -e .)"
    port = free_port()
    environ = {
        **os.environ,
        "FINETUNE_AGENT_HOME": str(home),
        "FINETUNE_AGENT_DATA_ROOTS": str(REPO / "configs"),
        **env,
    }
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [exe, "serve", "--port", str(port), "--log-level", "warning"],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"serve exited: {log_path.read_text()[-3000:]}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not start: {log_path.read_text()[-3000:]}")
                time.sleep(0.2)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
