"""The interactions and feedback tables on SQLite and PostgreSQL, and what feedback exports as:
preference pairs from better answers and from thumbs, KTO rows from thumbs."""

from __future__ import annotations

import uuid

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


def test_empty_answers_and_conversations_make_no_rows(store: FeedbackStore) -> None:
    """The data phase drops an empty reply ('rejected' is empty), and a prompt string cannot
    hold a conversation's earlier turns: neither may be written as a row."""
    model = f"m-{uuid.uuid4().hex[:8]}"  # the PostgreSQL database is shared between tests
    empty = _served(store, "Ann, 31", "\n\n\n", model=model)
    store.add_feedback(interaction_id=empty, rating="down", better='{"name": "Ann"}')
    turns = [
        {"role": "user", "content": "Ann, 31"},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "Now as JSON."},
    ]
    later = store.record_interaction(
        model_id=model, source="api", prompt="Now as JSON.", output="Ann", messages=turns
    )
    store.add_feedback(interaction_id=later, rating="down", better='{"name": "Ann"}')
    one = store.record_interaction(
        model_id=model, source="chat", prompt="Bo, 40", output="Bo", messages=turns[:1]
    )
    store.add_feedback(interaction_id=one, rating="up")
    assert store.feedback_export(model_id=model, kind="preference") == ([], 1)
    assert store.feedback_export(model_id=model, kind="kto") == (
        [
            {"prompt": "Ann, 31", "completion": '{"name": "Ann"}', "label": True},
            {"prompt": "Bo, 40", "completion": "Bo", "label": True},
        ],
        1,
    )
