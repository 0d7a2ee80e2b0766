"""`/generations`: what users say about the answers the service generated (feedback)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from api.deps import ServiceDep
from api.path_strings import refuse_unfit_text
from api.schemas import FeedbackCreate, FeedbackPublic
from llmfinetune_agent.feedback_store import FeedbackStore

router = APIRouter(prefix="/generations", tags=["generations"])


@router.post(
    "/{generation_id}/feedback",
    response_model=FeedbackPublic,
    status_code=status.HTTP_201_CREATED,
    responses={404: {"description": "No generation with that id."}},
    summary="Give feedback on a generated answer",
)
def give_feedback(generation_id: str, body: FeedbackCreate, service: ServiceDep) -> FeedbackPublic:
    """Thumbs up or down, a better answer (exported as the chosen reply over the generated
    one), a comment. `finetune-agent feedback export MODEL_ID --as preference|kto OUT.jsonl`
    turns a model's feedback into training data."""
    refuse_unfit_text(body.model_dump(), ("body",))  # it becomes training data, maybe in PostgreSQL
    store = FeedbackStore(service.store.database_url)
    if store.get_interaction(interaction_id=generation_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no generation with id '{generation_id}'")
    saved = store.add_feedback(
        interaction_id=generation_id, rating=body.rating, better=body.better, comment=body.comment
    )
    return FeedbackPublic(
        id=saved.id,
        generation_id=generation_id,
        rating=saved.rating,
        better=saved.better,
        comment=saved.comment,
        created_at=saved.created_at,
    )
