"""The interactions and feedback tables on SQLite and PostgreSQL, and what feedback exports as:
preference pairs from better answers and from thumbs, KTO rows from thumbs."""

from __future__ import annotations

import pytest

from llmfinetune_agent.feedback_store import FeedbackStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path) -> FeedbackStore:
    if request.param == "sqlite":
        return FeedbackStore(f"sqlite:///{tmp_path / 'store.db'}")
    return FeedbackStore(request.getfixturevalue("postgres_url"))


def _served(store: FeedbackStore, prompt: str, output: str, model: str = "m1") -> str:
    return store.record_interaction(model_id=model, source="api", prompt=prompt, output=output)


def test_feedback_becomes_pairs_and_kto_rows(store: FeedbackStore) -> None:
    better = _served(store, "Ann, 31", "Ann is a person")
    up, down = _served(store, "Bo, 40", '{"name": "Bo"}'), _served(store, "Bo, 40", "Bo?")
    _served(store, "Cy, 9", "unrated")
    other = _served(store, "Ann, 31", "other model", model="m2")
    store.add_feedback(interaction_id=better, rating="down")
    store.add_feedback(interaction_id=better, better='{"name": "Ann"}', comment="JSON please")
    store.add_feedback(interaction_id=up, rating="up")
    store.add_feedback(interaction_id=down, rating="down")
    store.add_feedback(interaction_id=other, rating="up")
    assert store.feedback_rows(model_id="m1", kind="preference") == [
        {"prompt": "Ann, 31", "chosen": '{"name": "Ann"}', "rejected": "Ann is a person"},
        {"prompt": "Bo, 40", "chosen": '{"name": "Bo"}', "rejected": "Bo?"},
    ]
    assert store.feedback_rows(model_id="m1", kind="kto") == [
        {"prompt": "Ann, 31", "completion": "Ann is a person", "label": False},
        {"prompt": "Ann, 31", "completion": '{"name": "Ann"}', "label": True},
        {"prompt": "Bo, 40", "completion": '{"name": "Bo"}', "label": True},
        {"prompt": "Bo, 40", "completion": "Bo?", "label": False},
    ]
    [(interaction, said)] = [f for f in store.feedback_of(model_id="m1") if f[0]["id"] == better]
    assert said == {"rating": "down", "better": '{"name": "Ann"}', "comment": "JSON please"}
    assert interaction["output"] == "Ann is a person"
    assert store.feedback_rows(model_id="m3", kind="kto") == []
