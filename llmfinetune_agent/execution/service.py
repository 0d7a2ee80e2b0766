"""Executing runs: create, start, resume after a decision or a crash, and read a run's state.

The CLI, the API and the workers all go through `RunService`. Every execution first claims the
run with a compare-and-set on its status row (LangGraph has no per-thread lock), streams the
graph with `durability="sync"` and the service's `RunContext`, logs progress events, watches
for a cancel request, and settles the run's status from the graph state.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from langgraph.types import Command

from llmfinetune_agent.agents.gates import DecisionError, validate_gate_decision
from llmfinetune_agent.checkpointing import open_checkpointer
from llmfinetune_agent.config import RunConfig
from llmfinetune_agent.context import RunContext
from llmfinetune_agent.execution.cancel import CancelWatch
from llmfinetune_agent.execution.errors import (
    BAD_INPUT_PREFIX,
    ENDED,
    InterruptNotPending,
    InvalidDecision,
    RunBusy,
    RunCancelled,
    RunEnded,
    RunError,
    RunNotFound,
    user_errors,
)
from llmfinetune_agent.execution.run_log import NODE_STARTED
from llmfinetune_agent.graph import build
from llmfinetune_agent.run_store import Heartbeat, RunRecord, RunStore, make_owner
from llmfinetune_agent.settings import Settings

EventSink = Callable[[str, dict[str, Any]], None]
PROGRESS_KINDS = ("training_progress", "evaluation_progress")
PROGRESS_LOG_SECONDS = 1.0


class RunService:
    """Create and drive runs against one database (checkpoints and run store)."""

    def __init__(self, settings: Settings, saver: Any):
        self.settings = settings
        self.saver = saver
        """The checkpoint store, shared with the chat graph's conversations."""
        self.store = RunStore(settings.database_url, lease_seconds=settings.lease_seconds)
        self.graph = build().compile(checkpointer=saver)
        self._last_progress: dict[tuple[str, str], float] = {}
        self.cluster_training = None
        """With the Ray backend, the trainer node trains on the cluster through this."""
        if settings.backend == "ray":
            from llmfinetune_agent.execution.ray_training import ClusterTraining

            self.cluster_training = ClusterTraining(settings)

    # --- creating and reading ---------------------------------------------------------

    def create_run(
        self,
        config: RunConfig,
        *,
        parent_run_id: str | None = None,
        prepare: Callable[[str, Path], None] | None = None,
    ) -> RunRecord:
        """A queued run with its directory and the resolved config written there.

        `prepare(run_id, run_dir)` runs before the run is queued, while no worker can see it:
        a fork writes its first checkpoint there (a worker that took the run before would
        start it from scratch). If it raises, no run is created.
        """
        run_id = uuid.uuid4().hex[:12]
        run_dir = self.settings.runs_dir / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(config.model_dump_json(indent=2))
        if prepare is not None:
            try:
                prepare(run_id, run_dir)
            except BaseException:
                shutil.rmtree(run_dir, ignore_errors=True)
                raise
        return self.store.create_run(
            run_id=run_id,
            name=config.name,
            config=config.model_dump(mode="json"),
            run_dir=str(run_dir),
            parent_run_id=parent_run_id,
        )

    def require(self, run_id: str) -> RunRecord:
        """The run's record, or `RunNotFound`."""
        run = self.store.get_run(run_id=run_id)
        if run is None:
            raise RunNotFound(f"no run with id '{run_id}'")
        return run

    def pending_interrupts(self, run_id: str) -> list[dict[str, Any]]:
        """The run's pending interrupts as `{id, kind, message, details, options}`."""
        return interrupts_of(self.graph.get_state(thread(run_id)))

    def state_values(self, run_id: str) -> dict[str, Any]:
        """The latest graph state of the run (empty before its first step)."""
        return dict(self.graph.get_state(thread(run_id)).values or {})

    # --- executing --------------------------------------------------------------------

    def start(self, run_id: str, *, on_event: EventSink | None = None) -> RunRecord:
        """Execute a queued run until it ends or waits at a gate."""
        run = self.require(run_id)
        initial = self._initial(run)

        def make_input() -> dict[str, Any]:
            # Checked under the claim: a run that has already begun is never restarted.
            if self.state_values(run_id):
                raise RunBusy(f"run {run_id} has already started; resume it instead")
            return initial

        return self._execute(run_id, make_input, on_event=on_event)

    def resume(
        self,
        run_id: str,
        *,
        decision: dict[str, Any] | None = None,
        interrupt_id: str | None = None,
        on_event: EventSink | None = None,
    ) -> RunRecord:
        """Answer a pending interrupt, or (without a decision) continue an interrupted run."""
        run = self.require(run_id)
        if run.status in ENDED:
            raise RunEnded(run)
        if decision is None:
            if self.pending_interrupts(run_id):
                raise InvalidDecision(
                    f"run {run_id} is waiting at a gate: give a decision (approve, reject or edit)"
                )
            resumed = self.state_values(run_id)
            initial = None if resumed else self._initial(run)
            self.store.append_event(run_id=run_id, kind="resumed", payload={"from": run.status})
            return self._execute(run_id, lambda: initial, on_event=on_event)

        def command() -> Command:
            # Checked after the claim: two racing resumes cannot both see it pending.
            pending = {i["id"]: i for i in self.pending_interrupts(run_id)}
            chosen = interrupt_id or (next(iter(pending)) if len(pending) == 1 else None)
            if chosen not in pending:
                raise InterruptNotPending(
                    f"interrupt '{interrupt_id}' is not pending for run {run_id}"
                    + (f"; pending: {list(pending)}" if pending else "; nothing is pending")
                )
            try:
                kind = pending[chosen].get("kind", "")
                value = validate_gate_decision(decision, self.state_values(run_id), kind)
            except DecisionError as exc:
                raise InvalidDecision(str(exc)) from None
            return Command(resume={chosen: value})

        return self._execute(run_id, command, on_event=on_event)

    def _initial(self, run: RunRecord) -> dict[str, Any]:
        return {
            "run_id": run.id,
            "run_dir": run.run_dir,
            "config": run.config,
            "approved": {},
            "decisions": [],
            "log": [],
            "iteration": 1,
            "outcome": "running",
        }

    def _execute(
        self, run_id: str, make_input: Callable[[], Any], *, on_event: EventSink | None
    ) -> RunRecord:
        owner = make_owner()
        before = self.require(run_id)
        watch = CancelWatch(self.store, run_id)  # before the claim: later requests count
        if not self.store.claim_run(run_id=run_id, owner=owner):
            now = self.require(run_id)
            if now.status in ENDED:
                raise RunEnded(now)
            raise RunBusy(f"run {run_id} is being executed by another process")
        try:
            graph_input = make_input()
        except RunError:
            self.store.release_run(run_id=run_id, owner=owner, status=before.status)
            raise
        fields: dict[str, Any] = {"status": "failed"}
        with Heartbeat(self.store, run_id=run_id, owner=owner):
            try:
                self._stream(run_id, graph_input, watch, on_event)
                fields = self._settle(run_id)
                if fields["status"] not in ENDED and watch.requested(now=True):
                    raise RunCancelled(f"run {run_id} was cancelled on request")
            except RunCancelled as exc:
                fields = {"status": "cancelled", "error": str(exc), "pending_interrupt": None}
            except user_errors() as exc:
                fields = {"status": "failed", "error": f"{BAD_INPUT_PREFIX}{exc}"}
            except Exception as exc:  # a bug or an environment failure: keep the details
                log = Path(before.run_dir) / "error.log"
                log.write_text(traceback.format_exc())
                fields = {"status": "failed", "error": f"{type(exc).__name__}: {exc} (see {log})"}
            finally:
                if fields.get("status") == "failed":
                    self._emit(run_id, "failed", {"error": fields.get("error")}, on_event)
                self.store.release_run(run_id=run_id, owner=owner, **fields)
                # Announced only once the run store says so: a client that reacts to the event
                # by listing the run's interrupts must find this one there.
                if fields.get("status") == "awaiting_approval":
                    self._emit(run_id, "interrupt", fields["pending_interrupt"], None)
        return self.require(run_id)

    def _stream(
        self, run_id: str, graph_input: Any, watch: CancelWatch, on_event: EventSink | None
    ) -> None:
        context = RunContext(
            settings=self.settings,
            store_=self.store,
            should_stop=watch.should_stop,
            cluster_training=self.cluster_training,
        )
        stream = self.graph.stream(
            graph_input,
            thread(run_id),
            stream_mode=["updates", "custom", "tasks"],
            durability="sync",
            context=context,
        )

        def emit(kind: str, payload: dict[str, Any]) -> None:
            self._emit(run_id, kind, payload, on_event)
            watch.on_event(kind, payload)

        # Closed on the way out, also when the watch raises: closing waits for the node that
        # is running, so the run is released only once nothing writes to it any more.
        with contextlib.closing(stream):
            for mode, chunk in stream:
                if mode == "custom":
                    emit(chunk.get("kind", "progress"), chunk)
                    continue
                if mode == "tasks":
                    if "input" in chunk:  # a node starts: `runs show` names it while it works
                        self.store.update_run(run_id=run_id, current_node=chunk["name"])
                        emit(NODE_STARTED, {"node": chunk["name"]})
                    continue
                for node, update in chunk.items():
                    if node == "__interrupt__":
                        continue  # settled from get_state once the stream ends
                    for kind, payload in _update_events(node, update or {}):
                        emit(kind, payload)

    def _emit(
        self, run_id: str, kind: str, payload: dict[str, Any], on_event: EventSink | None
    ) -> None:
        if not self._throttled(run_id, kind, payload):
            self.store.append_event(run_id=run_id, kind=kind, payload=payload)
        if on_event:
            on_event(kind, payload)

    def _throttled(self, run_id: str, kind: str, payload: dict[str, Any]) -> bool:
        """Progress events reach the log at most every PROGRESS_LOG_SECONDS (and at the end):
        one durable write per training step measurably slowed small runs."""
        if kind not in PROGRESS_KINDS:
            return False
        done, total = (
            payload.get("step", payload.get("done")),
            payload.get("total_steps", payload.get("total")),
        )
        now, key = time.monotonic(), (run_id, kind)
        if done == total or now - self._last_progress.get(key, 0.0) >= PROGRESS_LOG_SECONDS:
            self._last_progress[key] = now
            return False
        return True

    def _settle(self, run_id: str) -> dict[str, Any]:
        """The run-store fields after a stream ends: waiting, completed, cancelled or failed."""
        state = self.graph.get_state(thread(run_id))
        values = state.values or {}
        if state.interrupts:
            first = state.interrupts[0]
            gate = state.next[0] if state.next else None
            return {
                "status": "awaiting_approval",
                "current_node": gate,
                "pending_interrupt": {"id": first.id, **first.value},
            }
        outcome = values.get("outcome")
        final = values.get("final") or {}
        if outcome == "completed":
            return {
                "status": "completed",
                "model_path": final.get("model_path"),
                "pending_interrupt": None,
            }
        if outcome in ("cancelled", "failed"):
            return {"status": outcome, "error": values.get("reason"), "pending_interrupt": None}
        return {"status": "failed", "error": "the graph stopped without an outcome"}


def interrupts_of(snapshot: Any) -> list[dict[str, Any]]:
    """Pending interrupts of a state snapshot as `{id, kind, message, details, options}`."""
    return [{"id": i.id, **i.value} for i in snapshot.interrupts]


def thread(run_id: str) -> dict[str, Any]:
    """The LangGraph config of the run's thread (`thread_id` is the run id)."""
    return {"configurable": {"thread_id": run_id}}


def _update_events(node: str, update: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Small event records from a node's state update (never the whole state)."""
    for entry in update.get("log") or []:
        if node == "orchestrator":
            yield "route", entry
    for decision in update.get("decisions") or []:
        yield "decision", dict(decision)
    if node != "orchestrator":
        yield "node_finished", {"node": node}


@contextlib.contextmanager
def open_service(settings: Settings | None = None) -> Iterator[RunService]:
    """A `RunService` with its checkpointer open for the duration of the block."""
    settings = settings or Settings.from_env()
    settings.ensure_dirs()
    with open_checkpointer(settings.database_url) as saver:
        yield RunService(settings, saver)
