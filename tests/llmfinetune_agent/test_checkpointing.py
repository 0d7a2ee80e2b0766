"""Checkpointer: interrupts survive a restart (new saver instance) on SQLite and Postgres."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Interrupt, interrupt

from llmfinetune_agent.checkpointing import make_serializer, open_checkpointer, thread_checkpoints


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'checkpoints.db'}"
    return request.getfixturevalue("postgres_url")


class State(TypedDict, total=False):
    """Plain JSON values only, like the run state."""

    task: str
    plan: str
    decision: str


def build_graph() -> StateGraph:
    """plan -> approve (a gate that only asks) -> END."""

    def plan(state: State) -> dict[str, Any]:
        return {"plan": f"train on {state['task']}"}

    def approve(state: State) -> dict[str, Any]:
        answer = interrupt(
            {"kind": "approve_plan", "message": "Approve?", "details": {"plan": state["plan"]}}
        )
        return {"decision": answer["decision"]}

    graph = StateGraph(State)
    graph.add_node("plan", plan)
    graph.add_node("approve", approve)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "approve")
    graph.add_edge("approve", END)
    return graph


def test_interrupt_survives_restart_and_resumes(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="langgraph")
    thread_id = uuid.uuid4().hex[:12]
    cfg = {"configurable": {"thread_id": thread_id}}
    with open_checkpointer(database_url) as saver:
        graph = build_graph().compile(checkpointer=saver)
        out = graph.invoke({"task": "json"}, cfg, durability="sync")
        assert out["plan"] == "train on json"
        assert len(out["__interrupt__"]) == 1

    # A new saver instance stands in for a restarted process.
    with open_checkpointer(database_url) as saver:
        graph = build_graph().compile(checkpointer=saver)
        state = graph.get_state(cfg)
        assert state.next == ("approve",)
        (pending,) = state.interrupts
        assert isinstance(pending, Interrupt)
        assert pending.value["kind"] == "approve_plan"
        assert pending.value["details"] == {"plan": "train on json"}

        out = graph.invoke(
            Command(resume={pending.id: {"decision": "approve"}}), cfg, durability="sync"
        )
        assert out == {"task": "json", "plan": "train on json", "decision": "approve"}
        assert "__interrupt__" not in out
        done = graph.get_state(cfg)
        assert done.next == () and done.interrupts == ()

        history = thread_checkpoints(saver, thread_id)
    assert [h["step"] for h in history] == sorted((h["step"] for h in history), reverse=True)
    assert history[0]["node"] == ["approve"] and history[0]["next"] == []
    assert history[-1]["source"] == "input" and history[-1]["next"] == ["__start__"]
    gate = next(h for h in history if h["interrupts"])
    assert gate["interrupts"] == [pending.id] and gate["next"] == ["approve"]
    assert gate["node"] == ["plan"]
    assert all(h["time"] and h["checkpoint_id"] for h in history)
    assert history[0]["parent_checkpoint_id"] == history[1]["checkpoint_id"]
    # Strict loading must not have blocked any type langgraph itself stores.
    assert "Blocked deserialization" not in caplog.text


def test_sqlite_checkpointer_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ckpt.db"
    with open_checkpointer(f"sqlite:///{path}") as saver:
        assert saver.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


@dataclass
class NotAllowed:
    """A type outside langgraph's safe list: strict loading must not rebuild it."""

    secret: str


def test_serializer_is_strict() -> None:
    serde = make_serializer()
    plain = {"a": [1, 2.5, "x", None, True], "b": {"c": False}}
    assert serde.loads_typed(serde.dumps_typed(plain)) == plain

    restored = serde.loads_typed(serde.dumps_typed(Interrupt(value={"k": 1}, id="ab" * 16)))
    assert isinstance(restored, Interrupt) and restored.id == "ab" * 16

    blocked = serde.loads_typed(serde.dumps_typed(NotAllowed(secret="s")))
    assert not isinstance(blocked, NotAllowed)
    assert blocked == {"secret": "s"}

    with pytest.raises(TypeError):  # no pickle fallback for unserializable objects
        serde.dumps_typed(object())


@pytest.mark.postgres
def test_setup_waiter_does_not_block_concurrent_index_build(postgres_base_url: str) -> None:
    """A process waiting for the set-up lock must not stall the holder's migrations.

    PostgresSaver's migrations run CREATE INDEX CONCURRENTLY, which waits for every open
    transaction in the database; a waiter blocked inside `pg_advisory_lock` is one, so the
    holder and the waiter deadlocked (two `serve` processes hung at start-up).
    """
    import psycopg
    from psycopg.rows import dict_row

    from llmfinetune_agent.checkpointing import _setup_lock_key

    schema = f"fa_test_{uuid.uuid4().hex[:10]}"
    url = f"{postgres_base_url}?options=-csearch_path%3D{schema}"
    with psycopg.connect(postgres_base_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    outcome: dict[str, Any] = {}

    def open_waiting() -> None:
        try:
            with open_checkpointer(url) as saver, saver.conn.connection() as conn:
                query = "SELECT count(*) AS n FROM pg_tables WHERE schemaname = current_schema()"
                outcome["tables"] = conn.execute(query).fetchone()["n"]
        except Exception as exc:  # reported by the assertion below
            outcome["error"] = exc

    try:
        with (
            psycopg.connect(url, autocommit=True, row_factory=dict_row) as holder,
            psycopg.connect(url, autocommit=True) as migrator,
        ):
            key = _setup_lock_key(holder)
            holder.execute("SELECT pg_advisory_lock(%s, %s)", key)  # "another process" migrates
            migrator.execute("CREATE TABLE t (x int)")
            waiter = threading.Thread(target=open_waiting, daemon=True)
            waiter.start()
            time.sleep(1.0)  # the waiter is now waiting for the lock
            assert waiter.is_alive(), outcome
            migrator.execute("SET statement_timeout = '20s'")
            migrator.execute("CREATE INDEX CONCURRENTLY t_x_idx ON t (x)")  # timed out before
            holder.execute("SELECT pg_advisory_unlock(%s, %s)", key)
            waiter.join(30)
        assert not waiter.is_alive() and "error" not in outcome, outcome
        assert outcome["tables"] >= 5  # t + the saver's four tables
    finally:
        with psycopg.connect(postgres_base_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
