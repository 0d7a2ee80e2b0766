"""The `GET /runs` window cache: the same pages as the database, inside and past the window,
and never stale after a write."""

from __future__ import annotations

import json

from api.listing import ListingCache
from llmfinetune_agent.run_store import RunStore


def _page(cache: ListingCache, status: str | None, limit: int, offset: int) -> dict:
    return json.loads(cache.page(status=status, limit=limit, offset=offset))


def test_pages_match_the_database_inside_and_past_the_window(settings) -> None:
    store = RunStore(settings.database_url)
    ids = [store.create_run(name=f"r{i}", config={}, run_dir=f"/r{i}").id for i in range(7)]
    store.update_run(run_id=ids[0], status="cancelled")
    cache = ListingCache(store, window=3)
    for status in (None, "queued", "cancelled"):
        for limit, offset in ((2, 0), (3, 0), (2, 2), (3, 4), (5, 6), (2, 50)):
            got = _page(cache, status, limit, offset)
            want_runs, want_count = store.run_summaries(status=status, limit=limit, offset=offset)
            assert got["count"] == want_count, (status, limit, offset)
            assert [r["id"] for r in got["data"]] == [r["id"] for r in want_runs]
    newest_first = [r["id"] for r in _page(cache, None, 10, 0)["data"]]
    assert sorted(newest_first) == sorted(ids) and newest_first[0] in ids[-2:]


def test_a_write_is_seen_by_the_next_page(settings) -> None:
    store = RunStore(settings.database_url)
    run = store.create_run(name="w", config={}, run_dir="/w")
    cache = ListingCache(store)
    assert _page(cache, None, 10, 0)["data"][0]["current_node"] is None
    store.update_run(run_id=run.id, current_node="trainer")
    assert _page(cache, None, 10, 0)["data"][0]["current_node"] == "trainer"
    store.create_run(name="w2", config={}, run_dir="/w2")
    assert _page(cache, None, 10, 0)["count"] == 2
