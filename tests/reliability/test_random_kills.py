"""Random SIGKILLs: eleven runs, each one's worker process killed at a moment drawn from a
seeded generator, then resumed to completion by the pool's replacement worker, with every
approval asked once. Prints a table of tries (where each kill landed) and outcomes.

Training is long enough (60 steps, a checkpoint every 10) that a drawn moment falls inside
the run even on a fast machine; on a slow one the kills land earlier in the run.

    python -m pytest -q -s -m slow tests/reliability/test_random_kills.py
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from llmfinetune_agent.execution import RunWorkerPool, accept_decision, open_service
from tests.reliability.fleet import (
    ENDED,
    executor_pid,
    print_table,
    tiny_run_config,
    wait_until,
)

RUNS = 11
AT_LEAST_KILLED = 10  # a run may still finish before its moment (a faster execution)
SEED = 13
GATES = ["approve_plan", "approve_evaluation"]


@pytest.mark.slow
def test_runs_killed_at_random_moments_resume_to_completion_asking_once(
    tiny_model_dir: Path,
) -> None:
    rng = random.Random(SEED)
    began = time.monotonic()
    config = tiny_run_config(
        tiny_model_dir, max_steps=60, save_steps=10, approve_plan=True, approve_evaluation=True
    )
    with open_service() as service:
        run_ids = [service.create_run(config).id for _ in range(RUNS)]
        # Seconds of execution (time seen `running`, gates excluded) before the kill.
        kill_after = {run_id: round(rng.uniform(0.2, 3.0), 2) for run_id in run_ids}
        pool = RunWorkerPool(service, size=2, poll_seconds=0.2)
        pool.start()
        try:
            killed = drive(service, pool, kill_after)
        finally:
            pool.stop()
        rows, failures = [], []
        for n, run_id in enumerate(run_ids, 1):
            run, events = service.require(run_id), service.store.list_events(run_id=run_id)
            asked = Counter(e.payload.get("kind") for e in events if e.kind == "interrupt")
            decided = [d["gate"] for d in service.state_values(run_id).get("decisions", [])]
            restart = [e.payload["step"] for e in events if e.kind == "training_resumed"]
            rows.append(
                (
                    n,
                    run_id,
                    f"{kill_after[run_id]:.2f}",
                    killed.get(run_id, "finished first"),
                    sum(e.kind == "resumed" for e in events),
                    ",".join(map(str, restart)) or "-",
                    "/".join(str(asked[g]) for g in GATES),
                    run.status,
                )
            )
            if run.status != "completed" or decided != GATES or list(asked.values()) != [1, 1]:
                failures.append((run_id, run.status, run.error, decided, dict(asked)))
    print_table(
        f"{RUNS} runs, each SIGKILLed once at a seeded random moment (seed {SEED}), 2 workers",
        ("try", "run", "kill at s", "killed in", "crash resumes", "training from step")
        + ("asked plan/eval", "outcome"),
        rows,
    )
    print(f"killed {len(killed)} of {RUNS}; wall {time.monotonic() - began:.0f} s")
    assert not failures
    assert len(killed) >= AT_LEAST_KILLED
    assert all(row[4] >= 1 for row in rows if row[1] in killed)  # each kill was resumed


def drive(service, pool: RunWorkerPool, kill_after: dict[str, float]) -> dict[str, str]:
    """Approve every gate once and kill each run's worker once, until every run has ended;
    {run: node it was killed in}."""
    ran = dict.fromkeys(kill_after, 0.0)
    killed: dict[str, str] = {}
    answered: set[str] = set()
    last = time.monotonic()

    def step() -> bool:
        nonlocal last
        now = time.monotonic()
        elapsed, last = now - last, now
        for run_id in kill_after:
            run = service.require(run_id)
            pending = run.pending_interrupt
            if run.status == "awaiting_approval" and pending["id"] not in answered:
                answered.add(pending["id"])
                accept_decision(
                    service,
                    run_id=run_id,
                    interrupt_id=pending["id"],
                    decision={"decision": "approve"},
                )
                pool.notify()
            pid = executor_pid(run)
            if pid is None or run_id in killed:
                continue
            ran[run_id] += elapsed
            if ran[run_id] >= kill_after[run_id]:
                os.kill(pid, signal.SIGKILL)
                killed[run_id] = run.current_node or "(starting)"
        return all(service.require(r).status in ENDED for r in kill_after)

    wait_until("every run to end", step, timeout=600, every=0.05)
    return killed
