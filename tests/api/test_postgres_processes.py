"""Two service processes sharing PostgreSQL: a run started through one is approved through the
other and continues, executed by exactly one worker at a time."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import DATA_ROOT, free_port, small_config, wait_for_status


def _serve(port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    exe = shutil.which("finetune-agent")
    assert exe
    return subprocess.Popen(
        [exe, "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def _wait_up(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-4000:]
        try:
            if httpx.get(f"{url}/healthz", timeout=2).json()["database"] == "postgresql":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(log.read_text()[-4000:])


@pytest.mark.slow
@pytest.mark.postgres
def test_two_processes_share_runs(postgres_url: str, _isolated_home: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FINETUNE_AGENT_DATABASE_URL": postgres_url,
        "FINETUNE_AGENT_HOME": str(_isolated_home),
        "FINETUNE_AGENT_DATA_ROOTS": str(DATA_ROOT),
        "FINETUNE_AGENT_API_KEY": "k",
    }
    ports = [free_port(), free_port()]
    procs = [_serve(p, env, tmp_path / f"serve{i}.log") for i, p in enumerate(ports)]
    headers = {"Authorization": "Bearer k"}
    try:
        clients = [
            httpx.Client(base_url=f"http://127.0.0.1:{p}", headers=headers, timeout=30)
            for p in ports
        ]
        for client, proc, i in zip(clients, procs, range(2), strict=True):
            _wait_up(str(client.base_url), proc, tmp_path / f"serve{i}.log")
        a, b = clients
        run_id = a.post("/runs", json=small_config("pg")).json()["id"]
        gates = []
        for turn in range(10):
            # Every other gate is answered through the other process.
            asker = (b, a)[turn % 2]
            run = wait_for_status(asker, run_id, ("awaiting_approval", "completed", "failed"), 300)
            if run["status"] != "awaiting_approval":
                break
            pending = run["pending_interrupt"]
            gates.append(pending["kind"])
            answer = asker.post(
                f"/runs/{run_id}/interrupts/{pending['id']}", json={"decision": "approve"}
            )
            assert answer.status_code == 202, answer.text
        assert run["status"] == "completed", run["error"]
        assert gates == [
            "approve_plan",
            "approve_data",
            "training_checkpoint",
            "approve_evaluation",
        ]
        assert [d["gate"] for d in run["decisions"]] == gates

        # Each step ran once: two training segments, one finalize, one registered model.
        events = [e for e in _events(b, run_id)]
        kinds = Counter(e for e in events)
        assert kinds["training_result"] == 2
        assert kinds["decision_accepted"] == 4
        models = b.get("/models").json()["data"]
        assert [m["run_id"] for m in models] == [run_id]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _events(client: httpx.Client, run_id: str) -> list[str]:
    kinds = []
    with client.stream("GET", f"/runs/{run_id}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kinds.append(line.removeprefix("event: "))
    return kinds
