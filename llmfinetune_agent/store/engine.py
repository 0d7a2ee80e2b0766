"""One SQLAlchemy engine per database URL, shared by every `RunStore` in the process."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, inspect, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from llmfinetune_agent.settings import (
    SettingsError,
    database_backend,
    make_sqlite_folder,
    sqlalchemy_url,
    sqlite_path,
)
from llmfinetune_agent.store.schema import Base, StoreMetaRow

SQLITE_BUSY_TIMEOUT_SECONDS = 30
_CREATE_TABLES_LOCK = 7_412_356_001  # any constant bigint, private to finetune-agent
_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def engine_for(database_url: str) -> Engine:
    """The process-wide engine for `database_url`, created (with its tables) on first use."""
    with _engines_lock:
        engine = _engines.get(database_url)
        if engine is None:
            engine = _create(database_url)
            _create_tables(engine)
            _engines[database_url] = engine
        return engine


def _create_tables(engine: Engine) -> None:
    """`create_all`, safe when several processes (API, workers) start at once on one database,
    then the columns added since a table was created (`add_missing_columns`)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:  # the lock serializes creators until this commit
            conn.execute(select(func.pg_advisory_xact_lock(_CREATE_TABLES_LOCK)))
            Base.metadata.create_all(conn)
            add_missing_columns(conn)
            conn.execute(
                pg_insert(StoreMetaRow).values(id=1, runs_version=0).on_conflict_do_nothing()
            )
        return
    # SQLite's write lock, taken up front (BEGIN IMMEDIATE waits on the busy timeout), does
    # what the advisory lock does above: a second process starting at once finds it all done.
    with engine.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        Base.metadata.create_all(conn)
        add_missing_columns(conn)
        conn.execute(
            sqlite_insert(StoreMetaRow).values(id=1, runs_version=0).on_conflict_do_nothing()
        )
        conn.commit()


def add_missing_columns(conn: Connection) -> list[str]:
    """Add to existing tables the columns the schema has gained since they were created (the
    store has no migrations: tables come from `create_all`, which never alters a table).
    Only nullable columns are ever added, so rows written before stay valid. Returns
    `table.column` of each column added."""
    existing_tables = set(inspect(conn).get_table_names())
    added = []
    for table in Base.metadata.sorted_tables:
        if table.name not in existing_tables:
            continue
        present = {c["name"] for c in inspect(conn).get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise RuntimeError(
                    f"the run store's table {table.name} lacks column {column.name}, which "
                    "cannot be added to existing rows (it is not nullable)"
                )
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
            added.append(f"{table.name}.{column.name}")
    return added


def dispose_engine(database_url: str) -> None:
    """Close the pooled connections of one URL's engine (tests, shutdown)."""
    with _engines_lock:
        engine = _engines.pop(database_url, None)
    if engine is not None:
        engine.dispose()


def _create(database_url: str) -> Engine:
    if database_backend(database_url) == "postgresql":
        # Sized for an API thread pool of a few dozen; pre-ping survives server-side idle drops.
        return create_engine(
            sqlalchemy_url(database_url),
            pool_size=10,
            max_overflow=20,
            pool_pre_ping=True,
            pool_recycle=1800,
        )
    path = sqlite_path(database_url)
    if path == ":memory:":
        raise SettingsError(
            "The run store needs a SQLite file (sqlite:///path/to/file.db), not an in-memory "
            "database: every pooled connection would see a different empty database."
        )
    make_sqlite_folder(path)
    engine = create_engine(
        database_url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        # SQLite connections are cheap; many lets concurrent API readers proceed under WAL.
        pool_size=10,
        max_overflow=40,
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        mode = _enable_wal(cursor)
        if str(mode).lower() != "wal":
            raise RuntimeError(f"SQLite refused WAL journal mode (got {mode!r})")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe under WAL, much faster commits
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> str:
    """Switch the database file to WAL (a persistent setting) and return the journal mode.

    The switch needs an exclusive lock and SQLite answers "database is locked" at once, without
    its busy handler, when another process holds one (two services opening a new file together),
    so it is retried here for the busy timeout; once a file is in WAL nothing needs the lock.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    while True:
        mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() == "wal":
            return mode
        try:
            return cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
