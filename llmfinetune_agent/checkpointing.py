"""The LangGraph checkpoint store: SQLite (embedded default) or Postgres, picked by the URL.

with open_checkpointer(settings.database_url) as saver:
    graph = build().compile(checkpointer=saver)
    graph.invoke(inputs, {"configurable": {"thread_id": run_id}}, durability="sync")
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from llmfinetune_agent.settings import (
    database_backend,
    make_sqlite_folder,
    psycopg_conninfo,
    sqlite_path,
)

SQLITE_TIMEOUT_SECONDS = 30
CONNECT_TIMEOUT_SECONDS = 10
_postgres_setup_done: set[str] = set()
_postgres_setup_lock = threading.Lock()


class CheckpointStoreError(RuntimeError):
    """The checkpoint database cannot be opened or is not set up the way runs need."""


def make_serializer() -> JsonPlusSerializer:
    """Strict msgpack: no pickle, and only langgraph's built-in safe list may be rebuilt.

    `allowed_msgpack_modules=None` means "SAFE_MSGPACK_TYPES only" (Interrupt, Send, Command,
    datetime, UUID...); our state is plain JSON, so nothing else needs to be importable.
    """
    return JsonPlusSerializer(pickle_fallback=False, allowed_msgpack_modules=None)


@contextmanager
def open_checkpointer(database_url: str) -> Iterator[BaseCheckpointSaver]:
    """Open the checkpointer for `database_url`, set up its tables, close it on exit."""
    if database_backend(database_url) == "postgresql":
        with _open_postgres(psycopg_conninfo(database_url)) as saver:
            yield saver
    else:
        with _open_sqlite(sqlite_path(database_url)) as saver:
            yield saver


@contextmanager
def _open_sqlite(path: str) -> Iterator[BaseCheckpointSaver]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    if path != ":memory:":
        make_sqlite_folder(path)
    try:
        conn = sqlite3.connect(path, check_same_thread=False, timeout=SQLITE_TIMEOUT_SECONDS)
    except sqlite3.Error as exc:
        raise CheckpointStoreError(f"Cannot open the SQLite checkpoint file {path}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout={SQLITE_TIMEOUT_SECONDS * 1000}")
        saver = SqliteSaver(conn, serde=make_serializer())
        saver.setup()  # also switches the file to WAL
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if path != ":memory:" and mode.lower() != "wal":
            raise CheckpointStoreError(
                f"SQLite checkpoint file {path} is in journal mode {mode!r}, not WAL; "
                "WAL is needed so readers never block the running graph. "
                "Is the file on a network filesystem?"
            )
        yield saver
    finally:
        conn.close()


@contextmanager
def _open_postgres(conninfo: str) -> Iterator[BaseCheckpointSaver]:
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool, PoolTimeout

    try:  # one plain connection first: the pool would retry for its whole timeout, silently
        psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_SECONDS).close()
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointStoreError(
            f"Cannot connect to the Postgres checkpoint database: {reason}. "
            "Check FINETUNE_AGENT_DATABASE_URL and that the server is running."
        ) from exc
    pool = ConnectionPool(
        conninfo,
        min_size=1,
        max_size=4,
        open=False,
        kwargs={"autocommit": True, "row_factory": dict_row, "prepare_threshold": 0},
        # Servers and proxies drop idle connections: recycle them before they do.
        max_idle=300,
        max_lifetime=1800,
        check=ConnectionPool.check_connection,
        name="finetune-agent-checkpoints",
    )
    try:
        pool.open(wait=True, timeout=15)
    except PoolTimeout as exc:
        pool.close()
        raise CheckpointStoreError(
            f"Cannot connect to the Postgres checkpoint database: {exc}. "
            "Check FINETUNE_AGENT_DATABASE_URL and that the server is running."
        ) from exc
    try:
        saver = PostgresSaver(pool, serde=make_serializer())
        with _postgres_setup_lock:
            if conninfo not in _postgres_setup_done:
                _setup_serialized(pool, saver)
                _postgres_setup_done.add(conninfo)
        yield saver
    finally:
        pool.close()


# Advisory-lock class for PostgresSaver.setup(); the second key is the target schema's hash,
# so only processes migrating the same schema wait on each other.
_SETUP_LOCK_CLASS = 0x66696E65
SETUP_LOCK_WAIT_SECONDS = 300
_SETUP_LOCK_POLL_SECONDS = 0.2


def _setup_serialized(pool: Any, saver: Any) -> None:
    """Run the saver's migrations under a Postgres advisory lock.

    Two processes starting at once on an empty database otherwise both insert the same
    migration row and one dies with a unique violation.

    The lock is polled with `pg_try_advisory_lock`, never waited for in `pg_advisory_lock`:
    the migrations run `CREATE INDEX CONCURRENTLY`, which waits for every transaction open
    in the database to end, and a blocked `pg_advisory_lock` call is such a transaction.
    The holder's index build would then wait for the waiter, the waiter for the holder's
    lock: a deadlock Postgres cannot see (the holder's two sessions are linked only in
    our process), so both servers hung silently at start-up.
    """
    with pool.connection() as lock_conn:
        key = _setup_lock_key(lock_conn)
        _acquire_setup_lock(lock_conn, key)
        try:
            saver.setup()
        finally:
            lock_conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def _setup_lock_key(conn: Any) -> tuple[int, int]:
    """The (class, schema hash) advisory key for migrating the schema `conn` creates tables in."""
    row = conn.execute("SELECT hashtext(coalesce(current_schema(), '')) AS h").fetchone()
    return _SETUP_LOCK_CLASS, row["h"]


def _acquire_setup_lock(conn: Any, key: tuple[int, int]) -> None:
    """Take the setup lock, polling so that no transaction of ours stays open while waiting."""
    deadline = time.monotonic() + SETUP_LOCK_WAIT_SECONDS
    while not conn.execute("SELECT pg_try_advisory_lock(%s, %s) AS ok", key).fetchone()["ok"]:
        if time.monotonic() > deadline:
            raise CheckpointStoreError(
                f"Another process has held the checkpoint set-up lock (advisory key {key}) for "
                f"over {SETUP_LOCK_WAIT_SECONDS} s; look for it in pg_locks/pg_stat_activity."
            )
        time.sleep(_SETUP_LOCK_POLL_SECONDS)


def thread_checkpoints(saver: BaseCheckpointSaver, thread_id: str) -> list[dict[str, Any]]:
    """One entry per checkpoint of a thread, newest first, for `runs history`.

    Each entry: `checkpoint_id`, `parent_checkpoint_id`, `step`, `source` (input/loop/update),
    `time` (ISO 8601), `node` (the nodes whose writes made this checkpoint), `next` (the nodes
    scheduled to run from it) and `interrupts` (ids of interrupts raised there).
    """
    entries: list[dict[str, Any]] = []
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    for item in saver.list(config):
        checkpoint, metadata = item.checkpoint, item.metadata or {}
        parent = (item.parent_config or {}).get("configurable", {})
        entries.append(
            {
                "checkpoint_id": item.config["configurable"]["checkpoint_id"],
                "parent_checkpoint_id": parent.get("checkpoint_id"),
                "step": metadata.get("step"),
                "source": metadata.get("source"),
                "time": checkpoint.get("ts"),
                "next": _scheduled_nodes(checkpoint.get("updated_channels") or []),
                "interrupts": [
                    getattr(value, "id", None)
                    for _task, channel, values in item.pending_writes or []
                    if channel == "__interrupt__"
                    for value in (values if isinstance(values, list | tuple) else [values])
                ],
            }
        )
    # A checkpoint was written by the nodes its parent scheduled.
    for newer, older in zip(entries, entries[1:], strict=False):
        newer["node"] = list(older["next"])
    if entries:
        entries[-1]["node"] = []
    return entries


def _scheduled_nodes(updated_channels: list[str]) -> list[str]:
    """Nodes a checkpoint triggers: StateGraph routes through `branch:to:<node>` channels."""
    if "__start__" in updated_channels:
        return ["__start__"]
    prefix = "branch:to:"
    return sorted(c[len(prefix) :] for c in updated_channels if c.startswith(prefix))
