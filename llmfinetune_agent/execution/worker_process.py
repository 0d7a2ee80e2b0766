"""One worker process of the pool: it opens its own service and executes the runs its pool sends.

Started by `RunWorkerPool` with the `spawn` context, so it shares nothing with the service
process or with other workers: not accelerate's process-wide state, not torch's thread pools,
not a half-imported transformers. It takes one run id at a time from its pipe, executes it
(start, resume with an accepted decision, or resume after a crash) and answers
`("done", run_id, retry)`. Its claims carry its own pid (`make_owner`), so when it dies its
runs are orphaned at once and the next worker resumes them from their checkpoints. It exits
when its pool sends `None`, when the pipe closes, or when the pool's process is gone.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import threading
import time
from multiprocessing.connection import Connection

from llmfinetune_agent.execution.decisions import accepted_decision, wait_again
from llmfinetune_agent.execution.errors import RunError
from llmfinetune_agent.execution.service import RunService, open_service
from llmfinetune_agent.settings import Settings

logger = logging.getLogger(__name__)

PARENT_CHECK_SECONDS = 0.5
WARM_MODULES = ("phases.training.trainers", "phases.evaluation.generation")
"""Imported before the worker says it is ready: the seconds a fresh Python spends importing
torch, transformers and trl are then paid before a run is waiting, not inside its first node."""


def serve_runs(
    settings: Settings, conn: Connection, *, parent_pid: int, threads: int, log_level: int | None
) -> None:
    """The worker's main loop (the spawned process's target)."""
    # Ctrl-C reaches the whole process group: the pool decides when a worker stops, and a
    # KeyboardInterrupt inside a run would be settled as a failure.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # before torch is imported
    if log_level is not None:
        logging.basicConfig(level=log_level, format="%(asctime)s %(message)s")
    _exit_with(parent_pid)
    with open_service(settings) as service:
        _warm_up()
        conn.send(("ready", os.getpid()))
        while True:
            try:
                run_id = conn.recv()
            except EOFError:
                return
            if run_id is None:
                return
            conn.send(("done", run_id, _execute_safely(service, run_id)))


def _exit_with(parent_pid: int) -> None:
    """End this process soon after the pool's process dies (a SIGKILL leaves no one to ask).

    Its runs stay `running` under this process's pid, so once it is gone they are orphans
    that a restarted service resumes.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _warm_up() -> None:
    for name in WARM_MODULES:
        with contextlib.suppress(ImportError):  # an optional stack: its first run imports it
            importlib.import_module(name)
    with contextlib.suppress(ImportError):
        from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401  (lazy)
        from trl import SFTConfig, SFTTrainer  # noqa: F401


def _execute_safely(service: RunService, run_id: str) -> bool:
    """Execute the run; True when the pool should wait a while before offering it again."""
    try:
        return execute_run(service, run_id)
    except Exception:  # a worker must survive any single run's failure
        logger.exception("Run %s: the worker failed", run_id)
        return True


def execute_run(service: RunService, run_id: str) -> bool:
    """Start, resume with the accepted decision, or resume after a crash, as the run needs.

    Returns True when it was not executed here (another worker won the claim, or the run
    moved on), so the pool backs off from it.
    """
    try:
        pending = service.pending_interrupts(run_id)
        if pending:
            decision = accepted_decision(service, run_id, pending[0]["id"])
            if decision is None:  # nothing to continue with: wait for a human again
                wait_again(service, run_id, pending[0])
                return False
            how = "resumed with the accepted decision"
            record = service.resume(run_id, decision=decision, interrupt_id=pending[0]["id"])
        elif not service.state_values(run_id):
            how, record = "started", service.start(run_id)
        else:
            how, record = "resumed after a crash", service.resume(run_id)
        logger.info("Run %s %s, now %s", run_id, how, record.status)
        return False
    except RunError as exc:
        logger.info("Run %s not executed here: %s", run_id, exc)
        return True
