"""Served answers (interactions) and what users said about them (feedback), and the training
data that feedback becomes.

Every answer the service gives — `POST /models/{id}/generate`, a chat turn — is an interaction
with an id; `POST /generations/{id}/feedback` rates it (thumbs up/down), gives a better answer
or a comment. `feedback_rows` turns a model's feedback into data the data phase detects as it
is: preference pairs (a better answer is chosen over the served one; an answer rated up over
one rated down for the same prompt) or KTO rows (each rated answer with its thumbs, a better
answer as a thumbs-up).

    store = FeedbackStore(settings.database_url)
    gid = store.record_interaction(model_id="3f2a...", source="api", prompt="Hi", output="Yo")
    store.add_feedback(interaction_id=gid, rating="down", better="Hello!")
    rows = store.feedback_rows(model_id="3f2a...", kind="preference")
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select

from llmfinetune_agent.store.engine import engine_for
from llmfinetune_agent.store.schema import FeedbackRow, InteractionRow, utcnow

_interactions = InteractionRow.__table__
_feedback = FeedbackRow.__table__
ExportKind = Literal["preference", "kto"]


@dataclass(frozen=True)
class FeedbackRecord:
    """One piece of feedback on one interaction."""

    id: int
    interaction_id: str
    rating: str | None
    better: str | None
    comment: str | None
    created_at: datetime


class FeedbackStore:
    """Interactions and feedback in the service's database (the run store's)."""

    def __init__(self, database_url: str) -> None:
        self.engine = engine_for(database_url)  # shared per URL; creates the tables once

    def record_interaction(
        self,
        *,
        model_id: str,
        source: str,
        prompt: str,
        output: str,
        messages: list[dict[str, Any]] | None = None,
        chat_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> str:
        """Store one served answer; its id (the generation id users give feedback on)."""
        interaction_id = uuid.uuid4().hex
        with self.engine.begin() as conn:
            conn.execute(
                _interactions.insert().values(
                    id=interaction_id,
                    model_id=model_id,
                    source=source,
                    chat_id=chat_id,
                    prompt=prompt,
                    messages_json=json.dumps(messages) if messages is not None else None,
                    output=output,
                    details_json=json.dumps(details or {}, default=str),
                    created_at=utcnow(),
                )
            )
        return interaction_id

    def get_interaction(self, *, interaction_id: str) -> dict[str, Any] | None:
        """One interaction as a dict, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(_interactions).where(_interactions.c.id == interaction_id)
            ).first()
        return _interaction(row) if row is not None else None

    def list_interactions(
        self,
        *,
        model_id: str | None = None,
        source: str | None = None,
        since: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Interactions, oldest first, optionally of one model or source, or from `since` on."""
        query = select(_interactions).order_by(_interactions.c.created_at, _interactions.c.id)
        if model_id is not None:
            query = query.where(_interactions.c.model_id == model_id)
        if source is not None:
            query = query.where(_interactions.c.source == source)
        if since is not None:
            query = query.where(_interactions.c.created_at >= since)
        with self.engine.connect() as conn:
            return [_interaction(row) for row in conn.execute(query)]

    def add_feedback(
        self,
        *,
        interaction_id: str,
        rating: str | None = None,
        better: str | None = None,
        comment: str | None = None,
    ) -> FeedbackRecord:
        """Store feedback on an interaction (the caller checked that it exists)."""
        values = {
            "interaction_id": interaction_id,
            "rating": rating,
            "better": better,
            "comment": comment,
            "created_at": utcnow(),
        }
        with self.engine.begin() as conn:
            new_id = conn.execute(_feedback.insert().values(**values)).inserted_primary_key[0]
        return FeedbackRecord(id=int(new_id), **values)

    def feedback_of(self, *, model_id: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(interaction, its latest feedback merged: rating, better, comment) per rated
        interaction of `model_id`, oldest interaction first."""
        query = (
            select(_interactions, _feedback.c.rating, _feedback.c.better, _feedback.c.comment)
            .join(_feedback, _feedback.c.interaction_id == _interactions.c.id)
            .where(_interactions.c.model_id == model_id)
            .order_by(_interactions.c.created_at, _interactions.c.id, _feedback.c.id)
        )
        merged: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                said = merged.setdefault(row.id, (_interaction(row), {}))[1]
                said.update(
                    {k: getattr(row, k) for k in ("rating", "better", "comment") if getattr(row, k)}
                )
        return list(merged.values())

    def feedback_rows(self, *, model_id: str, kind: ExportKind) -> list[dict[str, Any]]:
        """`model_id`'s feedback as training rows of `kind` ('preference' or 'kto')."""
        return self.feedback_export(model_id=model_id, kind=kind)[0]

    def feedback_export(
        self, *, model_id: str, kind: ExportKind
    ) -> tuple[list[dict[str, Any]], int]:
        """`model_id`'s feedback as training rows of `kind`, and how many rated answers were
        left out because they answered a conversation: a row holds one prompt, and the
        conversation's earlier turns would be lost, making the pair wrong data."""
        rated = self.feedback_of(model_id=model_id)
        single = [(i, said) for i, said in rated if _answers_one_prompt(i)]
        rows = preference_rows(single) if kind == "preference" else kto_rows(single)
        return rows, len(rated) - len(single)


def _answers_one_prompt(interaction: dict[str, Any]) -> bool:
    """True when the answer was to one user message, not to a conversation (earlier turns or
    a system message) that a prompt string cannot hold."""
    messages = interaction["messages"]
    return not messages or (len(messages) == 1 and messages[0].get("role") == "user")


def preference_rows(rated: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    """prompt/chosen/rejected: a better answer over the served one; within one prompt, every
    answer rated up over every answer rated down."""
    rows, by_prompt = [], {}
    for interaction, said in rated:
        prompt, output = interaction["prompt"], interaction["output"]
        if not output.strip():  # an empty reply is no row of a preference pair
            continue
        if said.get("better") and said["better"].strip() != output.strip():
            rows.append({"prompt": prompt, "chosen": said["better"], "rejected": output})
        if said.get("rating") in ("up", "down"):
            by_prompt.setdefault(prompt, {"up": [], "down": []})[said["rating"]].append(output)
    for prompt, answers in by_prompt.items():
        for good in answers["up"]:
            rows += [
                {"prompt": prompt, "chosen": good, "rejected": bad}
                for bad in answers["down"]
                if bad.strip() != good.strip()
            ]
    return rows


def kto_rows(rated: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    """prompt/completion/label: each rated answer with its thumbs; a better answer is desirable
    and marks the served one undesirable (unless it was rated up)."""
    rows = []
    for interaction, said in rated:
        prompt, output, rating = interaction["prompt"], interaction["output"], said.get("rating")
        served = output.strip() != ""  # an empty completion is no KTO row
        if rating in ("up", "down") and served:
            rows.append({"prompt": prompt, "completion": output, "label": rating == "up"})
        if said.get("better"):
            rows.append({"prompt": prompt, "completion": said["better"], "label": True})
            if rating is None and served:
                rows.append({"prompt": prompt, "completion": output, "label": False})
    return rows


def _interaction(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "model_id": row.model_id,
        "source": row.source,
        "chat_id": row.chat_id,
        "prompt": row.prompt,
        "messages": json.loads(row.messages_json) if row.messages_json else None,
        "output": row.output,
        "details": json.loads(row.details_json or "{}"),
        "created_at": row.created_at,
    }
