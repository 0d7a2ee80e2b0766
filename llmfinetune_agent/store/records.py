"""Read-only snapshots of run-store rows, safe to hand across threads and to the API.

`from_row` takes anything with the table's column names as attributes (a SQLAlchemy `Row`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal data, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def config_hash(config: dict[str, Any]) -> str:
    """sha256 hex digest of the config's canonical JSON."""
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RunRecord:
    """A run as stored, with its config and pending interrupt parsed from JSON."""

    id: str
    name: str
    status: str
    config: dict[str, Any]
    config_hash: str
    run_dir: str
    current_node: str | None
    pending_interrupt: dict[str, Any] | None
    error: str | None
    model_path: str | None
    owner: str | None
    lease_until: datetime | None
    parent_run_id: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> RunRecord:
        pending = row.pending_interrupt_json
        return cls(
            id=row.id,
            name=row.name,
            status=row.status,
            config=json.loads(row.config_json),
            config_hash=row.config_hash,
            run_dir=row.run_dir,
            current_node=row.current_node,
            pending_interrupt=json.loads(pending) if pending is not None else None,
            error=row.error,
            model_path=row.model_path,
            owner=row.owner,
            lease_until=row.lease_until,
            parent_run_id=row.parent_run_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@dataclass(frozen=True)
class EventRecord:
    """One event of a run's log."""

    id: int
    run_id: str
    seq: int
    time: datetime
    kind: str
    payload: dict[str, Any]

    @classmethod
    def from_row(cls, row: Any) -> EventRecord:
        return cls(
            id=row.id,
            run_id=row.run_id,
            seq=row.seq,
            time=row.time,
            kind=row.kind,
            payload=json.loads(row.payload_json),
        )


@dataclass(frozen=True)
class ModelRecord:
    """A registered model and its lineage: the run, base model, config and data it came from,
    its parents in the registry and how it was made from them, and its gate's verdict."""

    id: str
    run_id: str | None
    path: str
    base_model: str
    config_hash: str | None
    data_hash: str | None
    metrics: dict[str, Any]
    created_at: datetime
    name: str | None = None
    kind: str | None = None
    relation: str | None = None
    parent_ids: list[str] = field(default_factory=list)
    operation: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    format: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    evaluation: dict[str, Any] = field(default_factory=dict)
    verdict: str | None = None
    verdict_reason: str | None = None
    alias: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> ModelRecord:
        def parsed(name: str, empty: Any) -> Any:
            text = getattr(row, name, None)
            return json.loads(text) if text else empty

        return cls(
            id=row.id,
            run_id=row.run_id,
            path=row.path,
            base_model=row.base_model,
            config_hash=row.config_hash,
            data_hash=row.data_hash,
            metrics=json.loads(row.metrics_json),
            created_at=row.created_at,
            name=getattr(row, "name", None),
            kind=getattr(row, "kind", None),
            relation=getattr(row, "relation", None),
            parent_ids=parsed("parent_ids_json", []),
            operation=getattr(row, "operation", None),
            parameters=parsed("parameters_json", {}),
            format=getattr(row, "format", None),
            sha256=getattr(row, "sha256", None),
            bytes=getattr(row, "bytes", None),
            evaluation=parsed("evaluation_json", {}),
            verdict=getattr(row, "verdict", None),
            verdict_reason=getattr(row, "verdict_reason", None),
            alias=getattr(row, "alias", None),
        )
