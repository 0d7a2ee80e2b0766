"""Run store: CRUD, claims under races and crashes, gap-free event logs, models, settings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from llmfinetune_agent.run_store import (
    Heartbeat,
    RunStore,
    config_hash,
    dispose_engine,
    make_owner,
)
from llmfinetune_agent.settings import (
    Settings,
    SettingsError,
    psycopg_conninfo,
    sqlalchemy_url,
    sqlite_path,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        yield request.getfixturevalue("postgres_url")
        return
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    yield url
    dispose_engine(url)


@pytest.fixture
def store(database_url: str) -> RunStore:
    return RunStore(database_url)


def new_run(store: RunStore, **kwargs: object) -> str:
    return store.create_run(name="r", config={"k": 1}, run_dir="/tmp/r", **kwargs).id


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# -- runs -----------------------------------------------------------------------------------


def test_create_get_list_update(tmp_path: Path) -> None:
    store = RunStore(f"sqlite:///{tmp_path / 'runs.db'}")
    config = {"name": "q", "training": {"epochs": 3}}
    first = store.create_run(name="q", config=config, run_dir=str(tmp_path / "q"))
    assert len(first.id) == 12 and int(first.id, 16) >= 0
    assert first.status == "queued" and first.owner is None and first.lease_until is None
    assert first.config == config and first.config_hash == config_hash(config)
    assert first.created_at.tzinfo is not None
    ids = [first.id] + [
        store.create_run(name=f"r{i}", config={"i": i}, run_dir="/x", parent_run_id=first.id).id
        for i in range(6)
    ]
    assert store.update_run(run_id=ids[2], status="cancelled")
    assert store.update_run(run_id=ids[4], status="cancelled")

    page, total = store.list_runs(limit=3)
    assert total == 7 and [r.id for r in page] == ids[::-1][:3]  # newest first
    page, total = store.list_runs(limit=3, offset=6)
    assert total == 7 and [r.id for r in page] == [ids[0]]
    page, total = store.list_runs(status="cancelled")
    assert total == 2 and {r.id for r in page} == {ids[2], ids[4]}
    assert store.list_runs(status="running") == ([], 0)

    assert store.get_run(run_id="nope") is None
    assert store.get_run(run_id=ids[3]).parent_run_id == first.id

    interrupt = {"kind": "approve_plan", "message": "Go?", "options": ["approve", "reject"]}
    new_config = {**config, "training": {"epochs": 1}}
    assert store.update_run(
        run_id=first.id, current_node="plan_gate", pending_interrupt=interrupt, config=new_config
    )
    got = store.get_run(run_id=first.id)
    assert got.pending_interrupt == interrupt and got.current_node == "plan_gate"
    assert got.config == new_config and got.config_hash == config_hash(new_config)
    assert got.config_hash != first.config_hash and got.updated_at >= first.updated_at
    assert store.update_run(run_id=first.id, pending_interrupt=None)
    assert store.get_run(run_id=first.id).pending_interrupt is None

    with pytest.raises(TypeError, match="owner_secret"):
        store.update_run(run_id=first.id, owner_secret="x")
    with pytest.raises(ValueError, match="'done'"):
        store.update_run(run_id=first.id, status="done")
    assert not store.update_run(run_id="nope", error="x")


def test_config_hash_is_canonical() -> None:
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    assert len(config_hash({})) == 64


# -- claims ---------------------------------------------------------------------------------


def race_claim(store: RunStore, run_id: str, racers: int) -> dict[str, bool]:
    """`racers` threads call `claim_run` at the same moment; owner -> whether it won."""
    barrier = threading.Barrier(racers)
    results: dict[str, bool] = {}

    def claim(owner: str) -> None:
        barrier.wait()
        results[owner] = store.claim_run(run_id=run_id, owner=owner)

    threads = [threading.Thread(target=claim, args=(make_owner(),)) for _ in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_claim_race_has_exactly_one_winner(store: RunStore) -> None:
    for _ in range(20):
        run_id = new_run(store)
        results = race_claim(store, run_id, racers=4)
        winners = [o for o, won in results.items() if won]
        assert len(results) == 4 and len(winners) == 1, results
        run = store.get_run(run_id=run_id)
        assert run.status == "running" and run.owner == winners[0]


def test_live_claim_is_refused(store: RunStore) -> None:
    run_id = new_run(store)
    holder = make_owner()  # this process: alive
    assert store.claim_run(run_id=run_id, owner=holder)
    run = store.get_run(run_id=run_id)
    assert run.lease_until > run.updated_at + timedelta(seconds=50)
    assert not store.claim_run(run_id=run_id, owner=make_owner())
    assert not store.claim_run(run_id=run_id, owner=holder)  # not re-entrant
    assert run_id not in store.recover_orphans()
    assert store.get_run(run_id=run_id).owner == holder


def test_claim_of_dead_process_is_taken_over(store: RunStore) -> None:
    run_id = new_run(store)
    dead_owner = f"{socket.gethostname()}:{dead_pid()}:crashed1"
    assert store.claim_run(run_id=run_id, owner=dead_owner)  # lease is fresh
    assert run_id in store.recover_orphans()
    taker = make_owner()
    assert store.claim_run(run_id=run_id, owner=taker)
    assert store.get_run(run_id=run_id).owner == taker
    assert run_id not in store.recover_orphans()


def test_expired_lease_is_taken_over_other_host_is_not_declared_dead(database_url: str) -> None:
    short = RunStore(database_url, lease_seconds=1)
    run_id = new_run(short)
    remote = "another-host.example:1:abcd"  # pid 1 there says nothing about a process here
    assert short.claim_run(run_id=run_id, owner=remote)
    assert not short.claim_run(run_id=run_id, owner=make_owner())
    time.sleep(1.1)
    assert run_id in short.recover_orphans()
    taker = make_owner()
    assert short.claim_run(run_id=run_id, owner=taker)
    assert not short.renew_lease(run_id=run_id, owner=remote)  # the old owner lost it


def test_claim_respects_allowed_statuses(store: RunStore) -> None:
    run_id = new_run(store, status="failed")
    assert not store.claim_run(run_id=run_id, owner=make_owner())
    owner = make_owner()
    assert store.claim_run(run_id=run_id, owner=owner, allowed_from=("failed",))
    assert not store.claim_run(run_id="missing", owner=make_owner())
    done = new_run(store, status="completed")
    assert not store.claim_run(run_id=done, owner=make_owner())


def test_release_and_renew_only_by_owner(store: RunStore) -> None:
    run_id = new_run(store)
    owner, other = make_owner(), make_owner()
    assert store.claim_run(run_id=run_id, owner=owner)
    before = store.get_run(run_id=run_id).lease_until
    assert not store.renew_lease(run_id=run_id, owner=other)
    assert store.renew_lease(run_id=run_id, owner=owner)
    assert store.get_run(run_id=run_id).lease_until > before
    # Status changes need the claim: without an owner, a claimed run is left alone.
    assert not store.update_run(run_id=run_id, status="cancelled")
    assert not store.update_run(run_id=run_id, owner=other, current_node="x")
    assert store.update_run(run_id=run_id, owner=owner, current_node="trainer")

    assert not store.release_run(run_id=run_id, owner=other, status="completed")
    interrupt = {"kind": "approve_data", "message": "ok?"}
    assert store.release_run(
        run_id=run_id, owner=owner, status="awaiting_approval", pending_interrupt=interrupt
    )
    run = store.get_run(run_id=run_id)
    assert run.status == "awaiting_approval" and run.pending_interrupt == interrupt
    assert run.owner is None and run.lease_until is None and run.current_node == "trainer"
    assert not store.release_run(run_id=run_id, owner=owner, status="completed")
    # Awaiting approval: anyone may claim it again to resume.
    assert store.claim_run(run_id=run_id, owner=other)


def test_heartbeat_renews_and_notices_loss(store: RunStore) -> None:
    run_id = new_run(store)
    owner = make_owner()
    assert store.claim_run(run_id=run_id, owner=owner)
    first_lease = store.get_run(run_id=run_id).lease_until
    with Heartbeat(store, run_id=run_id, owner=owner, interval=0.05) as beat:
        deadline = time.monotonic() + 10
        while beat.renewals < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert beat.renewals >= 2 and not beat.lost.is_set()
        assert store.get_run(run_id=run_id).lease_until > first_lease
        assert store.release_run(run_id=run_id, owner=owner, status="failed", error="boom")
        assert beat.lost.wait(10)
    assert store.get_run(run_id=run_id).error == "boom"


# -- events ---------------------------------------------------------------------------------


def test_event_seq_gap_free_with_concurrent_writers(store: RunStore) -> None:
    run_id = new_run(store)
    other_run = new_run(store)
    assert store.append_event(run_id=other_run, kind="node_start", payload={}) == 1
    per_writer = 40
    seqs: dict[str, list[int]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)

    def write(name: str) -> None:
        barrier.wait()
        for i in range(per_writer):
            seq = store.append_event(run_id=run_id, kind="step", payload={"w": name, "i": i})
            seqs[name].append(seq)

    threads = [threading.Thread(target=write, args=(n,)) for n in seqs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    for got in seqs.values():
        assert got == sorted(got) and len(set(got)) == per_writer
    assert sorted(seqs["a"] + seqs["b"]) == list(range(1, 2 * per_writer + 1))
    events = store.list_events(run_id=run_id)
    assert [e.seq for e in events] == list(range(1, 2 * per_writer + 1))
    for writer, got in seqs.items():  # each seq carries the payload its writer sent
        mine = [e for e in events if e.payload["w"] == writer]
        assert [e.seq for e in mine] == got and [e.payload["i"] for e in mine] == list(range(40))
    tail = store.list_events(run_id=run_id, after_seq=75, limit=3)
    assert [e.seq for e in tail] == [76, 77, 78] and all(e.kind == "step" for e in tail)
    assert [e.seq for e in store.list_events(run_id=other_run)] == [1]
    assert store.append_event(run_id=other_run, kind="node_end", payload={"ok": True}) == 2


@pytest.mark.postgres
def test_event_seq_collision_is_retried(postgres_url: str) -> None:
    """A writer that bypasses the advisory lock takes the next seq first: append retries."""
    import psycopg

    store = RunStore(postgres_url)
    run_id = new_run(store)
    assert store.append_event(run_id=run_id, kind="a", payload={}) == 1
    result: list[int] = []
    with psycopg.connect(postgres_url) as rogue:  # one open transaction
        rogue.execute(
            "INSERT INTO run_events (run_id, seq, time, kind, payload_json) "
            "VALUES (%s, 2, now(), 'rogue', '{}')",
            (run_id,),
        )
        writer = threading.Thread(
            target=lambda: result.append(
                store.append_event(run_id=run_id, kind="b", payload={"n": 1})
            )
        )
        writer.start()
        time.sleep(0.5)  # the writer now waits on seq 2's uncommitted index entry
        assert not result
        rogue.commit()
    writer.join(10)
    assert result == [3]
    events = store.list_events(run_id=run_id)
    assert [(e.seq, e.kind) for e in events] == [(1, "a"), (2, "rogue"), (3, "b")]


# -- model registry -------------------------------------------------------------------------


def test_runs_version_moves_with_every_run_write_and_only_then(store: RunStore) -> None:
    """The listing cache's token: any create or update (from any store on the database)."""
    other = RunStore(store.database_url)  # another process's view of the same database
    start = store.runs_version()
    run = other.create_run(name="v", config={"a": 1}, run_dir="/tmp/v")
    after_create = store.runs_version()
    assert after_create > start
    store.get_run(run_id=run.id)
    store.run_summaries()
    assert store.runs_version() == after_create  # reads change nothing
    owner = make_owner()
    assert other.claim_run(run_id=run.id, owner=owner)
    after_claim = store.runs_version()
    assert after_claim > after_create
    assert not store.claim_run(run_id=run.id, owner=make_owner())  # a failed CAS writes nothing
    assert store.runs_version() == after_claim
    assert other.renew_lease(run_id=run.id, owner=owner)
    assert other.release_run(run_id=run.id, owner=owner, status="completed")
    assert store.runs_version() == after_claim + 2
    summaries, count = store.run_summaries(status="completed")
    assert count >= 1 and summaries[0]["id"] == run.id and summaries[0]["status"] == "completed"


def test_model_registry_round_trip(store: RunStore) -> None:
    run_id = new_run(store)
    metrics = {"rougeL": 0.71, "perplexity": 3.2}
    model = store.register_model(
        run_id=run_id,
        path="/home/runs/x/merged",
        base_model="builtin:tiny-llama",
        config_hash="c" * 64,
        data_hash="d" * 64,
        metrics=metrics,
    )
    second = store.register_model(run_id=None, path="/m2", base_model="gpt2")
    assert store.get_model(model_id=model.id) == model
    assert model.metrics == metrics and model.run_id == run_id and len(model.id) == 12
    assert store.get_model(model_id="missing") is None
    listed = store.list_models()
    assert {m.id for m in listed} >= {model.id, second.id}
    assert [m.id for m in store.list_models(run_id=run_id)] == [model.id]
    assert second.metrics == {} and second.config_hash is None


@pytest.mark.postgres
def test_processes_starting_together_create_tables_once(
    postgres_url: str, postgres_base_url: str
) -> None:
    """API and workers start at once on an empty database: none fails creating tables."""
    import psycopg

    schema = f"fa_init_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_base_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{postgres_base_url}?options=-csearch_path%3D{schema}"
    start_at = time.time() + 2.5  # after the imports, all three open the store together
    code = (
        "import sys, time\n"
        "from llmfinetune_agent.run_store import RunStore\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "RunStore(sys.argv[1]).create_run(name='p', config={}, run_dir='/x')\n"
    )
    try:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, url, str(start_at)],
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], errors
        assert RunStore(url).list_runs()[1] == 3
    finally:
        dispose_engine(url)
        with psycopg.connect(postgres_base_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


# -- settings -------------------------------------------------------------------------------


def test_settings_defaults_and_overrides(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, _isolated_home: Path
) -> None:
    names = ("DATABASE_URL", "LEASE_SECONDS", "DATA_ROOTS", "API_KEY", "MAX_CONCURRENT_RUNS")
    for name in (*names, "GENERATION_MAX_BATCH", "GENERATION_BATCH_WINDOW_MS"):
        monkeypatch.delenv(f"FINETUNE_AGENT_{name}", raising=False)
    s = Settings.from_env()
    assert s.home == _isolated_home.resolve() and not s.home.exists()
    assert s.database_url == f"sqlite:///{s.home / 'finetune-agent.db'}"
    assert sqlite_path(s.database_url) == str(s.home / "finetune-agent.db")
    assert (s.lease_seconds, s.api_key, s.max_concurrent_runs) == (60, None, 1)
    assert (s.generation_max_batch, s.generation_batch_window_ms) == (16, 25)
    assert s.data_roots == [s.home / "data", Path.cwd().resolve()]
    assert s.runs_dir == s.home / "runs" and s.models_cache_dir == s.home / "models"
    s.ensure_dirs()
    assert s.runs_dir.is_dir() and s.models_cache_dir.is_dir()

    monkeypatch.setenv("FINETUNE_AGENT_DATABASE_URL", "postgresql://u:pw@db:5432/x")
    monkeypatch.setenv("FINETUNE_AGENT_LEASE_SECONDS", "15")
    monkeypatch.setenv("FINETUNE_AGENT_DATA_ROOTS", os.pathsep.join(["/d1", str(tmp_path)]))
    monkeypatch.setenv("FINETUNE_AGENT_API_KEY", "k")
    monkeypatch.setenv("FINETUNE_AGENT_MAX_CONCURRENT_RUNS", "3")
    monkeypatch.setenv("FINETUNE_AGENT_GENERATION_MAX_BATCH", "1")
    monkeypatch.setenv("FINETUNE_AGENT_GENERATION_BATCH_WINDOW_MS", "20")
    s = Settings.from_env()
    assert (s.lease_seconds, s.api_key, s.max_concurrent_runs) == (15, "k", 3)
    assert (s.generation_max_batch, s.generation_batch_window_ms) == (1, 20)
    assert s.data_roots == [Path("/d1"), tmp_path.resolve()]
    assert sqlalchemy_url(s.database_url) == "postgresql+psycopg://u:pw@db:5432/x"
    assert psycopg_conninfo("postgresql+psycopg://u@h/x") == "postgresql://u@h/x"


def test_settings_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINETUNE_AGENT_LEASE_SECONDS", "soon")
    with pytest.raises(SettingsError, match="FINETUNE_AGENT_LEASE_SECONDS='soon'"):
        Settings.from_env()
    monkeypatch.setenv("FINETUNE_AGENT_LEASE_SECONDS", "0")
    with pytest.raises(SettingsError, match="must be 1 or more"):
        Settings.from_env()
    monkeypatch.delenv("FINETUNE_AGENT_LEASE_SECONDS")
    monkeypatch.setenv("FINETUNE_AGENT_DATABASE_URL", "mysql://root:hunter2@h/db")
    with pytest.raises(SettingsError, match="FINETUNE_AGENT_DATABASE_URL") as info:
        Settings.from_env()
    assert "hunter2" not in str(info.value)
