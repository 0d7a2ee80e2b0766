"""The model registry with lineage, on SQLite and PostgreSQL: a database created before the
lineage columns existed gains them when the service starts (its rows kept, read as plain
fine-tunes), two processes starting at once add them once, and new rows keep their lineage."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from llmfinetune_agent.run_store import RunStore, dispose_engine
from llmfinetune_agent.settings import sqlalchemy_url

OLD_MODELS_TABLE = """
CREATE TABLE models (
    id VARCHAR(32) PRIMARY KEY,
    run_id VARCHAR(32),
    path TEXT NOT NULL,
    base_model TEXT NOT NULL,
    config_hash VARCHAR(64),
    data_hash VARCHAR(64),
    metrics_json TEXT NOT NULL,
    created_at TIMESTAMP {tz} NOT NULL
)
"""
LINEAGE = {
    "name": "gguf:q8_0",
    "kind": "gguf",
    "relation": "quantized",
    "parent_ids": ["0ld0ld0ld0ld"],
    "operation": "gguf:q8_0",
    "parameters": {"type": "q8_0"},
    "format": "gguf",
    "sha256": "ab" * 32,
    "bytes": 144_810_720,
    "evaluation": {"kl": 0.0011, "deltas": {"exact_match": 0.0}},
    "verdict": "pass",
    "verdict_reason": "retention >= 100.0%",
    "alias": "champion",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database as an older finetune-agent left it: the models table without lineage, one row."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
    engine = create_engine(sqlalchemy_url(url))
    tz = "WITH TIME ZONE" if request.param == "postgres" else ""
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS models"))
        conn.execute(text(OLD_MODELS_TABLE.format(tz=tz)))
        conn.execute(
            text(
                "INSERT INTO models VALUES ('0ld0ld0ld0ld', 'r1', '/m/final', 'builtin:tiny-llama', "
                "NULL, NULL, '{\"rougeL\": 0.5}', '2026-11-01 10:00:00')"
            )
        )
    engine.dispose()
    yield url
    dispose_engine(url)


def test_an_old_home_keeps_working_and_gains_lineage(old_database: str) -> None:
    store = RunStore(old_database)
    (old,) = store.list_models()
    assert (old.id, old.metrics, old.relation, old.parent_ids, old.alias) == (
        "0ld0ld0ld0ld",
        {"rougeL": 0.5},
        None,
        [],
        None,
    )
    new = store.register_model(run_id="r2", path="/m/q8.gguf", base_model="b", lineage=LINEAGE)
    again = store.get_model(model_id=new.id)
    for key, value in LINEAGE.items():
        assert getattr(again, key) == value, key
    engine = create_engine(sqlalchemy_url(old_database))
    with engine.connect() as conn:
        columns = {c["name"]: c for c in inspect(conn).get_columns("models")}
    engine.dispose()
    assert {"relation", "parent_ids_json", "alias", "sha256", "bytes"} <= set(columns)
    assert all(columns[name]["nullable"] for name in ("relation", "alias", "bytes"))
    store.set_model_alias(model_ids=[new.id], alias="candidate")
    assert store.get_model(model_id=new.id).alias == "candidate"
    with pytest.raises(TypeError, match="Unknown lineage field"):
        store.register_model(run_id=None, path="/x", base_model="b", lineage={"parent": "x"})


def _open_store(url: str) -> int:
    return len(RunStore(url).list_models())


def test_two_processes_upgrading_at_once_add_each_column_once(old_database: str) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        assert pool.map(_open_store, [old_database, old_database]) == [1, 1]
    assert RunStore(old_database).list_models()[0].id == "0ld0ld0ld0ld"
