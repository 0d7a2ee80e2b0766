"""Concurrency: two runs at once in one service, a service killed with runs queued, two
services sharing one database, racing approvals. Each test prints a table of tries and outcomes.

Runs execute in worker processes of `finetune-agent worker` (one per concurrent run, spawned),
so these tests also check that two runs at once no longer share accelerate's state.

    python -m pytest -q -s -m slow tests/reliability/test_concurrency.py
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from api.main import create_app
from llmfinetune_agent.execution import open_service
from llmfinetune_agent.settings import DATABASE_URL_ENV, Settings
from tests.api.conftest import live_server
from tests.reliability.fleet import (
    ENDED,
    event_kinds,
    executor_pid,
    parent_pid,
    print_table,
    records,
    start_worker,
    stop_worker,
    tiny_run_config,
    wait_until,
)

pytestmark = pytest.mark.slow
EXECUTION_LINE = re.compile(
    r"Run (\w+) (started|resumed after a crash|resumed with .*?), now (\w+)"
)


def executions(log: str) -> Counter:
    """How many executions of each run a worker's log reports."""
    return Counter(m.group(1) for m in EXECUTION_LINE.finditer(log))


def completions(log: str) -> Counter:
    return Counter(m.group(1) for m in EXECUTION_LINE.finditer(log) if m.group(3) == "completed")


def wait_until_logged(run_ids: list[str], logs: list[Path]) -> None:
    """Wait for each run's completion line in one of `logs`. A run is completed in the store a
    moment before its worker logs it, so stopping the worker as soon as the store says every
    run ended can cut the last line off (seen on a fast machine: 4 runs in 13 s)."""

    def logged() -> bool:
        counts = sum((completions(log.read_text()) for log in logs), Counter())
        return all(counts[run_id] for run_id in run_ids)

    wait_until("every completion in a worker's log", logged, timeout=60, every=0.3)


@pytest.mark.postgres
def test_twenty_queued_runs_complete_on_two_workers_across_a_service_kill(
    postgres_url: str, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, postgres_url)
    began = time.monotonic()
    peak = 0

    def executing(service, run_ids) -> list:
        nonlocal peak
        now = [r for r in records(service, run_ids).values() if executor_pid(r)]
        peak = max(peak, len(now))
        return now

    with open_service() as service:
        config = tiny_run_config(tiny_model_dir)
        run_ids = [service.create_run(config).id for _ in range(20)]
        logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
        worker = start_worker(logs[0], concurrency=2)

        def midway() -> bool:
            busy = executing(service, run_ids)
            done = sum(service.require(i).status == "completed" for i in run_ids)
            return done >= 6 and len(busy) == 2

        wait_until("6 runs completed and 2 executing", midway, timeout=300)
        cut = {r.id: r.current_node for r in executing(service, run_ids)}
        worker.kill()  # SIGKILL: its worker processes notice and exit by themselves
        worker.wait()
        killed_at = time.monotonic()
        wait_until(
            "the killed service's worker processes to exit",
            lambda: not executing(service, run_ids),
            timeout=10,
        )
        orphaned_s = time.monotonic() - killed_at
        at_kill = {i: r.status for i, r in records(service, run_ids).items()}

        def all_ended() -> bool:
            executing(service, run_ids)  # keeps the peak up to date
            return all(service.require(i).status in ENDED for i in run_ids)

        # A run the dead service was executing can still end in the moment (0.5-2 s) its worker
        # process takes to notice; only those it left running are the restarted one's to finish.
        orphaned = [i for i, status in at_kill.items() if status == "running"]
        worker = start_worker(logs[1], concurrency=2)
        try:
            wait_until("all 20 runs to end", all_ended, timeout=420, every=0.3)
            wait_until_logged([i for i, s in at_kill.items() if s != "completed"], [logs[1]])
        finally:
            texts = [logs[0].read_text(), stop_worker(worker, logs[1])]
        final = records(service, run_ids)

    before, after = executions(texts[0]), executions(texts[1])
    rows = [
        (
            n,
            run_id,
            at_kill[run_id] + (f" @ {cut[run_id]} (killed)" if run_id in cut else ""),
            before[run_id],
            after[run_id],
            final[run_id].status,
        )
        for n, run_id in enumerate(run_ids, 1)
    ]
    print_table(
        "20 queued runs, 2 worker processes, service SIGKILLed mid-way and restarted (Postgres)",
        ("try", "run", "at the kill", "executions before", "after restart", "outcome"),
        rows,
    )
    print(
        f"peak concurrent executions: {peak}; orphaned {orphaned_s:.1f} s after the kill; "
        f"wall {time.monotonic() - began:.0f} s"
    )
    assert [r.status for r in final.values()] == ["completed"] * 20, {
        i: r.error for i, r in final.items() if r.status != "completed"
    }
    assert peak == 2  # two at once, never more
    assert len(cut) == 2 and orphaned_s < 5
    assert 1 <= len(orphaned) <= 2 and set(cut) <= set(orphaned) | {
        i for i, status in at_kill.items() if status == "completed"
    }
    done_before, done_after = completions(texts[0]), completions(texts[1])
    for run_id in run_ids:  # each run executed to its end once: before the kill or after it
        if at_kill[run_id] == "completed":  # its completion line may have died with the worker
            assert done_before[run_id] <= 1 and done_after[run_id] == 0
        else:  # the restarted service finished it, including what the killed one left running
            assert done_before[run_id] == 0 and done_after[run_id] == 1


@pytest.mark.postgres
def test_two_services_on_one_database_one_killed_the_other_takes_over(
    postgres_url: str, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, postgres_url)
    began = time.monotonic()
    with open_service() as service:
        config = tiny_run_config(tiny_model_dir)
        run_ids = [service.create_run(config).id for _ in range(4)]
        logs = {name: tmp_path / f"service-{name}.log" for name in "AB"}
        workers = {name: start_worker(logs[name], concurrency=1) for name in "AB"}

        def held_by(name: str) -> list[str]:
            return [
                r.id
                for r in records(service, run_ids).values()
                if (pid := executor_pid(r)) and parent_pid(pid) == workers[name].pid
            ]

        wait_until("both services to execute a run", lambda: held_by("A") and held_by("B"), 300)
        taken = held_by("A")
        taken_pid = executor_pid(service.require(taken[0]))
        workers["A"].kill()
        workers["A"].wait()
        wait_until(
            "service A's worker process to exit",
            lambda: executor_pid(service.require(taken[0])) != taken_pid,
            timeout=10,
        )
        # Ended by then: by A before the kill (or in the moment its worker process takes
        # to notice), or by B. Every other run is B's to finish and log.
        at_kill = {i: r.status for i, r in records(service, run_ids).items()}
        left = [i for i in run_ids if at_kill[i] not in ENDED]
        try:
            wait_until(
                "all runs to end",
                lambda: all(service.require(i).status in ENDED for i in run_ids),
                timeout=300,
                every=0.3,
            )
            wait_until_logged(left, [logs["B"]])
        finally:
            log_b = stop_worker(workers["B"], logs["B"])
        log_a = logs["A"].read_text()
        final = records(service, run_ids)
        resumed = {i: event_kinds(service, i).count("resumed") for i in run_ids}

    done_a, done_b = completions(log_a), completions(log_b)
    rows = [
        (
            run_id,
            "A (killed)" if run_id in taken else ("A" if done_a[run_id] else "-"),
            "B" if executions(log_b)[run_id] else "-",
            resumed[run_id],
            final[run_id].status,
        )
        for run_id in run_ids
    ]
    print_table(
        "two services on one Postgres database, service A SIGKILLed while executing",
        ("run", "service A", "service B", "crash resumes", "outcome"),
        rows,
    )
    print(f"wall {time.monotonic() - began:.0f} s")
    assert [r.status for r in final.values()] == ["completed"] * len(run_ids)
    assert len(taken) == 1
    assert taken[0] in left or at_kill[taken[0]] == "completed"
    for run_id in left:  # B finished A's run and every other one still to do, each once
        assert done_b[run_id] == 1 and done_a[run_id] == 0
    # A completion just before the kill may have lost its log line with service A.
    assert all(done_a[i] + done_b[i] <= 1 for i in run_ids)


def test_twenty_double_approvals_accept_one_and_refuse_the_other(tiny_model_dir: Path) -> None:
    settings = Settings.from_env()
    config = tiny_run_config(tiny_model_dir, approve_plan=True)
    with open_service(settings) as service:
        waiting = []
        for _ in range(20):
            run = service.start(service.create_run(config).id)  # until the plan gate
            assert run.status == "awaiting_approval", run.error
            waiting.append(run)

        rows = []
        # workers=False: no execution after a decision, so each run stays queued with it.
        with (
            live_server(create_app(settings, workers=False)) as url,
            httpx.Client(base_url=url, timeout=30) as client,
            ThreadPoolExecutor(2) as pool,
        ):
            for trial, run in enumerate(waiting, 1):
                barrier = threading.Barrier(2)
                path = f"/runs/{run.id}/interrupts/{run.pending_interrupt['id']}"

                def approve(path: str = path, barrier: threading.Barrier = barrier) -> int:
                    barrier.wait()
                    return client.post(path, json={"decision": "approve"}).status_code

                codes = sorted(f.result() for f in [pool.submit(approve) for _ in range(2)])
                accepted = event_kinds(service, run.id).count("decision_accepted")
                rows.append((trial, run.id, " + ".join(map(str, codes)), accepted))
        print_table(
            "20 double approvals of one gate, two concurrent POSTs each",
            ("try", "run", "answers", "decisions accepted"),
            rows,
        )
        assert [r[2] for r in rows] == ["202 + 409"] * 20
        assert [r[3] for r in rows] == [1] * 20
        assert {service.require(r.id).status for r in waiting} == {"queued"}
