"""The run store's tables: runs, their event logs, and the model registry."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

RUN_STATUSES = ("queued", "running", "awaiting_approval", "completed", "failed", "cancelled")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, whatever the backend stores.

    SQLite has no timezone type: values are stored as naive UTC and made aware again on load,
    so comparisons such as `lease_until < now` stay correct on both backends.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the run store needs timezone-aware UTC")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


class RunRow(Base):
    """One fine-tuning run; `thread_id` in the checkpointer is the same id."""

    __tablename__ = "runs"
    __table_args__ = (
        # list_runs pages newest first, optionally by status: both orders come from an index.
        Index("ix_runs_status_created_at", "status", "created_at", "id"),
        Index("ix_runs_created_at", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(32))
    config_json: Mapped[str] = mapped_column(Text)
    config_hash: Mapped[str] = mapped_column(String(64))
    run_dir: Mapped[str] = mapped_column(Text)
    current_node: Mapped[str | None] = mapped_column(String(200), nullable=True)
    pending_interrupt_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    model_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(300), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    parent_run_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StoreMetaRow(Base):
    """One row (id 1): `runs_version` goes up by one in the same transaction as every write to
    `runs`, so a reader can tell with one primary-key read whether anything there changed
    (the API's listing cache). A counter, not a timestamp: clocks of several hosts disagree."""

    __tablename__ = "store_meta"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    runs_version: Mapped[int] = mapped_column(BigInteger, default=0)


class EventRow(Base):
    """One entry of a run's event log; `seq` counts from 1 per run, without gaps."""

    __tablename__ = "run_events"
    __table_args__ = (UniqueConstraint("run_id", "seq", name="uq_run_events_run_id_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(32), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(100))
    payload_json: Mapped[str] = mapped_column(Text)


class ModelRow(Base):
    """A model a run produced, with what it was made from (lineage).

    The lineage columns came later than the table: they are nullable, and `engine.py` adds
    them to a database created before them (a row from then reads as a plain fine-tune)."""

    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    path: Mapped[str] = mapped_column(Text)
    base_model: Mapped[str] = mapped_column(Text)
    config_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    data_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    metrics_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    relation: Mapped[str | None] = mapped_column(String(32), nullable=True)
    parent_ids_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    operation: Mapped[str | None] = mapped_column(String(200), nullable=True)
    parameters_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    format: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    evaluation_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    verdict: Mapped[str | None] = mapped_column(String(16), nullable=True)
    verdict_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    alias: Mapped[str | None] = mapped_column(String(32), nullable=True)


class InteractionRow(Base):
    """One answer the service served (a generate call, a chat turn), which feedback can rate."""

    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_model_created", "model_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    prompt: Mapped[str] = mapped_column(Text)
    messages_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    output: Mapped[str] = mapped_column(Text)
    details_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FeedbackRow(Base):
    """What a user said about one interaction: thumbs up/down, a better answer, a comment."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    interaction_id: Mapped[str] = mapped_column(String(32), index=True)
    rating: Mapped[str | None] = mapped_column(String(8), nullable=True)
    better: Mapped[str | None] = mapped_column(Text, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChatTurnRow(Base):
    """The process answering a chat's message now: one turn per conversation at a time, across
    every process on the database (serve, the CLI, other servers)."""

    __tablename__ = "chat_turns"

    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(300))
    since: Mapped[datetime] = mapped_column(UTCDateTime)
