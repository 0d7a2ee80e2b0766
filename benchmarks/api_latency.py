"""Latency of `GET /runs` and `GET /runs/{id}` under 50 concurrent clients.

Fills a fresh store (SQLite in a temp home, or FINETUNE_AGENT_DATABASE_URL) with 1,000 runs,
starts `finetune-agent serve --no-workers` (uvicorn) on loopback in its own process, and has
50 clients, each on its own keep-alive connection, issue requests back to back (a closed loop:
a client sends its next request when the last one is answered), after a warm-up. Prints
p50/p99 per endpoint; the last line is `RESULT api_p99_ms=<p99 over all requests>` (goal:
<= 50). Every run carries real graph state: the setup runs the quickstart once (about 30 s)
and copies its final checkpoint to each run's thread, so `GET /runs/{id}` loads and decodes a
completed run's state (decisions, routing log, data report, metrics) as it would in use.

    python benchmarks/api_latency.py [--runs 1000] [--clients 50] [--requests 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from bench_setup import free_port, start_server

STATUSES = ("completed", "failed", "cancelled", "awaiting_approval", "queued")
WARM_UP = 5  # request pairs per client before the clock starts


def fill_store(database_url: str, home: Path, runs: int) -> list[str]:
    """`runs` runs with a realistic config, in a mix of statuses; returns their ids."""
    import json

    from llmfinetune_agent.run_store import RunStore

    repo = Path(__file__).resolve().parent.parent
    config = json.loads((repo / "configs" / "quickstart-tiny.json").read_text())
    store = RunStore(database_url)
    ids = []
    for i in range(runs):
        run = store.create_run(
            name=f"bench-{i}",
            config=config,
            run_dir=str(home / "runs" / f"bench{i}"),
            status=STATUSES[i % len(STATUSES)],
        )
        ids.append(run.id)
    return ids


def give_runs_real_state(env: dict[str, str], ids: list[str]) -> None:
    """Run the quickstart for real in this store, then copy its final checkpoint to every run."""
    from llmfinetune_agent.checkpointing import open_checkpointer

    repo = Path(__file__).resolve().parent.parent
    exe = shutil.which("finetune-agent") or f"{sys.executable} -m llmfinetune_agent.cli"
    quickstart = subprocess.run(
        [*exe.split(), "run", str(repo / "configs" / "quickstart-tiny.json"), "--auto-approve"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    done = re.search(r"run ([0-9a-f]+): completed", quickstart.stdout)
    if done is None:
        raise RuntimeError(f"the quickstart did not complete:\n{quickstart.stdout[-2000:]}")
    with open_checkpointer(env["FINETUNE_AGENT_DATABASE_URL"]) as saver:
        source = saver.get_tuple(_thread(done.group(1)))
        for run_id in ids:
            saver.put(
                _thread(run_id),
                source.checkpoint,
                source.metadata,
                source.checkpoint["channel_versions"],
            )


def _thread(run_id: str) -> dict:
    return {"configurable": {"thread_id": run_id, "checkpoint_ns": ""}}


class KeepAliveConnection:
    """One HTTP/1.1 keep-alive connection issuing GETs, parsing just status and Content-Length.

    A load generator must cost far less than the server it measures: httpx's AsyncClient
    tops out near 350 requests/s on this 2-core machine even against a route returning a
    constant, so its own queueing, not the server, would set the percentiles.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> KeepAliveConnection:
        return cls(*await asyncio.open_connection(host, port))

    async def get(self, path: str) -> tuple[int, bytes]:
        """GET `path`; returns (status, body)."""
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *headers = head.decode("latin-1").split("\r\n")
        length = next(
            int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:")
        )
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def client_loop(
    port: int, ids: list[str], requests: int, seed: int, start: asyncio.Barrier
) -> dict[str, list[float]]:
    """One client: a connection of its own, a warm-up, then `requests` GETs back to back."""
    rng = random.Random(seed)
    times: dict[str, list[float]] = {"GET /runs": [], "GET /runs/{id}": []}
    connection = await KeepAliveConnection.open("127.0.0.1", port)
    try:
        for run_id in rng.sample(ids, WARM_UP):  # connection open, code paths exercised
            await connection.get(f"/runs/{run_id}")
            await connection.get(f"/runs?limit=50&offset={rng.randrange(0, 900)}")
        await start.wait()  # every client warmed up: all start together
        for i in range(requests):
            if i % 2 == 0:
                key, url = "GET /runs", f"/runs?limit=50&offset={rng.randrange(0, 900)}"
            else:
                key, url = "GET /runs/{id}", f"/runs/{rng.choice(ids)}"
            began = time.perf_counter()
            status, body = await connection.get(url)
            times[key].append((time.perf_counter() - began) * 1000)
            if status != 200:
                raise RuntimeError(f"{url} answered {status}: {body[:200]!r}")
    finally:
        connection.close()
    return times


async def measure(port: int, ids: list[str], clients: int, requests: int) -> dict[str, list[float]]:
    """Every client connects and warms up, then all start together."""
    start = asyncio.Barrier(clients)
    tasks = [client_loop(port, ids, requests, seed, start) for seed in range(clients)]
    results = await asyncio.gather(*tasks)
    merged: dict[str, list[float]] = {}
    for result in results:
        for key, values in result.items():
            merged.setdefault(key, []).extend(values)
    return merged


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=100, help="per client")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="fa-bench-"))
    env = {**os.environ, "FINETUNE_AGENT_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env.pop("FINETUNE_AGENT_API_KEY", None)
    database_url = (
        env.get("FINETUNE_AGENT_DATABASE_URL") or f"sqlite:///{home / 'finetune-agent.db'}"
    )
    env["FINETUNE_AGENT_DATABASE_URL"] = database_url
    ids = fill_store(database_url, home, args.runs)
    give_runs_real_state(env, ids)
    port = free_port()
    server = start_server(env, port)
    try:
        shown = httpx.get(f"http://127.0.0.1:{port}/runs/{ids[0]}").json()
        assert shown["decisions"] and shown["metrics"]["tuned"], "the runs carry no state"
        times = asyncio.run(measure(port, ids, args.clients, args.requests))
    finally:
        server.terminate()
        server.wait(20)
        shutil.rmtree(home, ignore_errors=True)
    every = [v for values in times.values() for v in values]
    for key, values in times.items():
        print(
            f"{key:16} n={len(values):5}  p50={percentile(values, 50):7.1f} ms  "
            f"p99={percentile(values, 99):7.1f} ms"
        )
    print(f"{args.clients} clients, {args.runs} runs in the store, {len(every)} requests")
    print(f"RESULT api_p99_ms={percentile(every, 99):.1f}")


if __name__ == "__main__":
    main()
