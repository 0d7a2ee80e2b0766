"""The run store: runs and their claims, per-run event logs, and the model registry.

SQLAlchemy 2.x over the same database URL as the checkpointer (SQLite file or Postgres).
Only one process executes a run at a time: it first *claims* the run with a compare-and-set
on the run's row, keeps the claim alive with a `Heartbeat`, and releases it with the new status.

    store = RunStore(settings.database_url, lease_seconds=settings.lease_seconds)
    run = store.create_run(name="quickstart", config=cfg, run_dir=str(run_dir))
    owner = make_owner()
    if store.claim_run(run_id=run.id, owner=owner):
        with Heartbeat(store, run_id=run.id, owner=owner):
            ...  # execute the graph
        store.release_run(run_id=run.id, owner=owner, status="completed")
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    bindparam,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from llmfinetune_agent.store.engine import dispose_engine, engine_for
from llmfinetune_agent.store.owners import Heartbeat, make_owner, owner_process_is_gone
from llmfinetune_agent.store.records import (
    EventRecord,
    ModelRecord,
    RunRecord,
    canonical_json,
    config_hash,
)
from llmfinetune_agent.store.schema import (
    RUN_STATUSES,
    EventRow,
    ModelRow,
    RunRow,
    StoreMetaRow,
    UTCDateTime,
    utcnow,
)

__all__ = [
    "RUN_STATUSES",
    "EventRecord",
    "Heartbeat",
    "ModelRecord",
    "RunRecord",
    "RunStore",
    "config_hash",
    "dispose_engine",
    "make_owner",
]

DEFAULT_CLAIMABLE = ("queued", "awaiting_approval", "running")
_UPDATABLE_FIELDS = ("current_node", "pending_interrupt", "error", "model_path", "config", "status")
_EVENT_INSERT_ATTEMPTS = 50
SUMMARY_FIELDS = (
    "id",
    "name",
    "status",
    "current_node",
    "pending_interrupt",
    "error",
    "model_path",
    "run_dir",
    "parent_run_id",
    "created_at",
    "updated_at",
)
_SUMMARY_COLUMNS = tuple(
    "pending_interrupt_json" if f == "pending_interrupt" else f for f in SUMMARY_FIELDS
)
# Reads and writes go through Core on the tables: no ORM identity map to pay for per row.
_runs = RunRow.__table__
_events = EventRow.__table__
_models = ModelRow.__table__


def _summary_statements(by_status: bool) -> tuple[Select, Select]:
    """The page and count queries of `run_summaries`, built once (keyed by: filter by status)."""
    where = [_runs.c.status == bindparam("status")] if by_status else []
    page = (
        select(*(_runs.c[name] for name in _SUMMARY_COLUMNS))
        .where(*where)
        .order_by(_runs.c.created_at.desc(), _runs.c.id.desc())
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )
    return page, select(func.count()).select_from(_runs).where(*where)


_SUMMARIES = {flag: _summary_statements(flag) for flag in (False, True)}
_GET_RUN = select(_runs).where(_runs.c.id == bindparam("run_id"))  # built once: a hot read
_meta = StoreMetaRow.__table__
_RUNS_VERSION = select(_meta.c.runs_version).where(_meta.c.id == 1)
_BUMP_RUNS_VERSION = (
    update(_meta).where(_meta.c.id == 1).values(runs_version=_meta.c.runs_version + 1)
)


def claim_is_dead(owner: str | None, lease_until: datetime | None) -> bool:
    """A claim nobody holds any more: no lease, a lease that ran out, or a gone owner process."""
    return lease_until is None or lease_until < utcnow() or owner_process_is_gone(owner)


_LINEAGE_JSON = ("parent_ids", "parameters", "evaluation")
_LINEAGE_PLAIN = (
    "name",
    "kind",
    "relation",
    "operation",
    "format",
    "sha256",
    "bytes",
    "verdict",
    "verdict_reason",
    "alias",
)


def _lineage_columns(lineage: dict[str, Any]) -> dict[str, Any]:
    """`register_model`'s lineage fields as column values (lists and dicts become JSON)."""
    unknown = sorted(set(lineage) - {*_LINEAGE_JSON, *_LINEAGE_PLAIN})
    if unknown:
        raise TypeError(f"Unknown lineage field(s) {', '.join(unknown)}.")
    values = {k: v for k, v in lineage.items() if k in _LINEAGE_PLAIN}
    values.update(
        {f"{k}_json": canonical_json(v) for k, v in lineage.items() if k in _LINEAGE_JSON}
    )
    return values


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


def _check_status(status: str) -> None:
    if status not in RUN_STATUSES:
        raise ValueError(
            f"Unknown run status {status!r}; expected one of {', '.join(RUN_STATUSES)}."
        )


def _column_values(fields: dict[str, Any]) -> dict[str, Any]:
    """Turn `update_run` keyword fields into column values (dicts become JSON)."""
    unknown = sorted(set(fields) - set(_UPDATABLE_FIELDS))
    if unknown:
        raise TypeError(
            f"Cannot update run field(s) {', '.join(unknown)}; "
            f"updatable: {', '.join(_UPDATABLE_FIELDS)}."
        )
    values: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "config":
            values["config_json"] = canonical_json(value)
            values["config_hash"] = config_hash(value)
        elif key == "pending_interrupt":
            values["pending_interrupt_json"] = None if value is None else canonical_json(value)
        else:
            if key == "status":
                _check_status(value)
            values[key] = value
    return values


class RunStore:
    """Runs, events and registered models in one SQL database (see the module docstring)."""

    def __init__(self, database_url: str, *, lease_seconds: int = 60) -> None:
        self.database_url = database_url
        self.lease_seconds = lease_seconds
        self.engine = engine_for(database_url)  # shared per URL; creates the tables once
        # Reads need no transaction: READ COMMITTED gives each statement its own snapshot
        # anyway, and on Postgres the BEGIN and the ROLLBACK at check-in were two of a read's
        # four round trips. (SQLite's driver opens no transaction for a SELECT already.)
        self.reader = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.engine.dialect.name == "postgresql"
            else self.engine
        )

    # -- runs ---------------------------------------------------------------------------------

    def create_run(
        self,
        *,
        name: str,
        config: dict[str, Any],
        run_dir: str,
        status: str = "queued",
        parent_run_id: str | None = None,
        run_id: str | None = None,
    ) -> RunRecord:
        """Insert a new run (id: 12 hex digits unless given) and return its snapshot."""
        _check_status(status)
        now = utcnow()
        values = dict(
            id=run_id or _new_id(),
            name=name,
            status=status,
            config_json=canonical_json(config),
            config_hash=config_hash(config),
            run_dir=run_dir,
            parent_run_id=parent_run_id,
            current_node=None,
            pending_interrupt_json=None,
            error=None,
            model_path=None,
            owner=None,
            lease_until=None,
            created_at=now,
            updated_at=now,
        )
        with self.engine.begin() as conn:
            conn.execute(insert(_runs).values(**values))
            conn.execute(_BUMP_RUNS_VERSION)
        return RunRecord.from_row(SimpleNamespace(**values))

    def get_run(self, *, run_id: str) -> RunRecord | None:
        """The run's current snapshot, or None if there is no such run."""
        with self.reader.connect() as conn:
            row = conn.execute(_GET_RUN, {"run_id": run_id}).first()
        return RunRecord.from_row(row) if row is not None else None

    def list_runs(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[RunRecord], int]:
        """One page of runs, newest first, and the total count matching `status`."""
        where = [RunRow.status == status] if status is not None else []
        page = (
            select(_runs)
            .where(*where)
            .order_by(RunRow.created_at.desc(), RunRow.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self.reader.connect() as conn:
            rows = conn.execute(page).all()
            total = conn.execute(select(func.count()).select_from(_runs).where(*where)).scalar()
        return [RunRecord.from_row(r) for r in rows], int(total or 0)

    def run_summaries(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """`list_runs` for listings: one page as plain dicts of the `SUMMARY_FIELDS`, without
        the config (parsing 50 configs per page was most of a `GET /runs`)."""
        page, count = _SUMMARIES[status is not None]
        params = {"status": status, "limit": limit, "offset": offset}
        with self.reader.connect() as conn:
            rows = conn.execute(page, params).all()
            total = conn.execute(count, params).scalar()
        summaries = []
        for row in rows:
            summary = dict(zip(SUMMARY_FIELDS, row, strict=True))
            pending = summary["pending_interrupt"]
            summary["pending_interrupt"] = json.loads(pending) if pending is not None else None
            summaries.append(summary)
        return summaries, int(total or 0)

    def update_run(self, *, run_id: str, owner: str | None = None, **fields: Any) -> bool:
        """Change fields of a run: current_node, pending_interrupt, error, model_path, config,
        status. Returns False when nothing was updated.

        With `owner`, only a run still claimed by that owner is updated. A `status` change
        without `owner` applies only to an unclaimed run (e.g. cancelling a queued run).
        """
        values = _column_values(fields)
        if not values:
            return self.get_run(run_id=run_id) is not None
        conditions: list[ColumnElement[bool]] = [RunRow.id == run_id]
        if owner is not None:
            conditions.append(RunRow.owner == owner)
        elif "status" in values:
            conditions.append(RunRow.owner.is_(None))
        return self._update_one(conditions, values)

    def _update_one(
        self, conditions: Iterable[ColumnElement[bool]], values: dict[str, Any]
    ) -> bool:
        """One UPDATE statement; True if it changed exactly one row (the compare-and-set)."""
        stmt = update(RunRow).where(*conditions).values(**values, updated_at=utcnow())
        with self.engine.begin() as conn:
            changed = conn.execute(stmt).rowcount == 1
            if changed:
                conn.execute(_BUMP_RUNS_VERSION)
            return changed

    def runs_version(self) -> int:
        """A counter that changes whenever any run is created or updated (by any process)."""
        with self.reader.connect() as conn:
            return int(conn.execute(_RUNS_VERSION).scalar_one())

    # -- claims -------------------------------------------------------------------------------

    def claim_run(
        self, *, run_id: str, owner: str, allowed_from: Iterable[str] = DEFAULT_CLAIMABLE
    ) -> bool:
        """Atomically make `owner` the one executor of the run; False if someone else holds it.

        Claimable: a run whose status is in `allowed_from` and is not `running`, or a `running`
        run (if "running" is allowed) whose claim is dead: its lease ran out, or its owner was a
        process on this host that no longer exists. The UPDATE re-checks what was observed, so
        of two racing claimers exactly one wins. Claims are not re-entrant.
        """
        allowed = tuple(allowed_from)
        for status in allowed:
            _check_status(status)
        with self.reader.connect() as conn:
            seen = conn.execute(
                select(RunRow.status, RunRow.owner, RunRow.lease_until).where(RunRow.id == run_id)
            ).first()
        if seen is None or seen.status not in allowed:
            return False
        now = utcnow()
        conditions: list[ColumnElement[bool]] = [RunRow.id == run_id, RunRow.status == seen.status]
        if seen.status == "running":
            owner_match = (
                RunRow.owner.is_(None) if seen.owner is None else RunRow.owner == seen.owner
            )
            conditions.append(owner_match)
            lease_dead = seen.lease_until is None or seen.lease_until < now
            if lease_dead:
                if seen.lease_until is not None:  # unless renewed meanwhile
                    conditions.append(RunRow.lease_until < now)
            elif not owner_process_is_gone(seen.owner):
                return False
        values = {
            "status": "running",
            "owner": owner,
            "lease_until": now + timedelta(seconds=self.lease_seconds),
        }
        return self._update_one(conditions, values)

    def is_interrupted(self, run: RunRecord) -> bool:
        """True for a `running` run whose claim is dead (lease ran out, or its owner process on
        this host is gone): a crash or SIGKILL stopped it, and `resume` would pick it up.

        A display-only reading; the stored status stays `running`, which claiming relies on.
        """
        if run.status != "running":
            return False
        return claim_is_dead(run.owner, run.lease_until)

    def renew_lease(self, *, run_id: str, owner: str) -> bool:
        """Extend the owner's lease by `lease_seconds`; False if the run is no longer theirs."""
        until = utcnow() + timedelta(seconds=self.lease_seconds)
        conditions = [RunRow.id == run_id, RunRow.owner == owner, RunRow.status == "running"]
        return self._update_one(conditions, {"lease_until": until})

    def release_run(self, *, run_id: str, owner: str, status: str, **fields: Any) -> bool:
        """Give up the claim, setting the final or paused `status` (and any `update_run` fields).

        Only the current owner can release; returns False otherwise.
        """
        values = _column_values({**fields, "status": status})
        values.update(owner=None, lease_until=None)
        return self._update_one([RunRow.id == run_id, RunRow.owner == owner], values)

    def recover_orphans(self, *, statuses: Iterable[str] = ("running",)) -> list[str]:
        """Ids of runs in `statuses` that nobody holds a live claim on, oldest first.

        Meant for service start-up: these are the runs a crashed process left behind.
        """
        wanted = tuple(statuses)
        for status in wanted:
            _check_status(status)
        query = (
            select(RunRow.id, RunRow.owner, RunRow.lease_until)
            .where(RunRow.status.in_(wanted))
            .order_by(RunRow.created_at)
        )
        now = utcnow()
        with self.reader.connect() as conn:
            rows = conn.execute(query).all()
        return [
            r.id
            for r in rows
            if r.lease_until is None or r.lease_until < now or owner_process_is_gone(r.owner)
        ]

    # -- events -------------------------------------------------------------------------------

    def append_event(self, *, run_id: str, kind: str, payload: dict[str, Any]) -> int:
        """Append to the run's event log; returns the event's `seq` (1, 2, 3, ... per run).

        The seq is computed inside the INSERT; two writers that pick the same one collide on
        the (run_id, seq) unique constraint, and the loser retries with the next number. (On
        Postgres a per-run advisory lock makes such collisions rare; SQLite serializes writes.)
        """
        payload_json = canonical_json(payload)
        next_seq = select(
            literal(run_id, String),
            func.coalesce(func.max(EventRow.seq), 0) + 1,
            literal(utcnow(), UTCDateTime),
            literal(kind, String),
            literal(payload_json, String),
        ).where(EventRow.run_id == run_id)
        stmt = (
            insert(EventRow)
            .from_select(["run_id", "seq", "time", "kind", "payload_json"], next_seq)
            .returning(EventRow.seq)
        )
        for attempt in range(_EVENT_INSERT_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    if conn.dialect.name == "postgresql":
                        # Queue writers of one run instead of letting them collide and retry.
                        conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(run_id))))
                    return int(conn.execute(stmt).scalar_one())
            except IntegrityError:
                if attempt == _EVENT_INSERT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def list_events(
        self, *, run_id: str, after_seq: int = 0, limit: int = 1000
    ) -> list[EventRecord]:
        """The run's events with seq > `after_seq`, in order, at most `limit` of them."""
        query = (
            select(_events)
            .where(EventRow.run_id == run_id, EventRow.seq > after_seq)
            .order_by(EventRow.seq)
            .limit(limit)
        )
        with self.reader.connect() as conn:
            return [EventRecord.from_row(r) for r in conn.execute(query)]

    def latest_event(self, *, run_id: str, kind: str, after_seq: int = 0) -> EventRecord | None:
        """The run's newest event of `kind` with seq > `after_seq`, or None."""
        query = (
            select(_events)
            .where(EventRow.run_id == run_id, EventRow.kind == kind, EventRow.seq > after_seq)
            .order_by(EventRow.seq.desc())
            .limit(1)
        )
        with self.reader.connect() as conn:
            row = conn.execute(query).first()
        return EventRecord.from_row(row) if row is not None else None

    # -- model registry -----------------------------------------------------------------------

    def register_model(
        self,
        *,
        run_id: str | None,
        path: str,
        base_model: str,
        config_hash: str | None = None,
        data_hash: str | None = None,
        metrics: dict[str, Any] | None = None,
        lineage: dict[str, Any] | None = None,
    ) -> ModelRecord:
        """Record a produced model with its lineage; returns it with a new 12-hex id.

        `lineage` holds the registry's lineage fields (`name`, `kind`, `relation`,
        `parent_ids`, `operation`, `parameters`, `format`, `sha256`, `bytes`, `evaluation`,
        `verdict`, `verdict_reason`, `alias`); unknown keys are an error."""
        values = dict(
            id=_new_id(),
            run_id=run_id,
            path=path,
            base_model=base_model,
            config_hash=config_hash,
            data_hash=data_hash,
            metrics_json=canonical_json(metrics or {}),
            created_at=utcnow(),
            **_lineage_columns(lineage or {}),
        )
        with self.engine.begin() as conn:
            conn.execute(insert(_models).values(**values))
        return ModelRecord.from_row(SimpleNamespace(**values))

    def list_models(self, *, run_id: str | None = None) -> list[ModelRecord]:
        """Registered models, newest first (only one run's if `run_id` is given)."""
        query = select(_models).order_by(ModelRow.created_at.desc(), ModelRow.id)
        if run_id is not None:
            query = query.where(ModelRow.run_id == run_id)
        with self.reader.connect() as conn:
            return [ModelRecord.from_row(r) for r in conn.execute(query)]

    def set_model_alias(self, *, model_ids: list[str], alias: str) -> None:
        """Give these registered models one alias (e.g. `candidate` for a former champion)."""
        with self.engine.begin() as conn:
            conn.execute(update(_models).where(_models.c.id.in_(model_ids)).values(alias=alias))

    def get_model(self, *, model_id: str) -> ModelRecord | None:
        """One registered model, or None."""
        with self.reader.connect() as conn:
            row = conn.execute(select(_models).where(_models.c.id == model_id)).first()
        return ModelRecord.from_row(row) if row is not None else None
