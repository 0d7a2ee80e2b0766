"""`/models`: the registry of fine-tuned models, and generating text with one."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi import APIRouter, HTTPException, status

from api.deps import ModelCacheDep, ServiceDep
from api.generation import GenerationInputError, generate, record_generation
from api.schemas import GenerateRequest, GenerateResponse, ModelPublic, ModelsPublic
from models import ModelLoadError
from models.prompt_artifact import PromptArtifactError, read_prompt_artifact

router = APIRouter(prefix="/models", tags=["models"])

NOT_FOUND = {404: {"description": "No model with that id."}}


@router.get("", response_model=ModelsPublic, summary="List models")
def list_models(service: ServiceDep) -> ModelsPublic:
    """Registered models, newest first, each with its lineage (parent ids, relation, the
    operation and its parameters), format, sha256, size, evaluation with deltas to its parent,
    gate verdict and alias (champion, candidate, rolled_back)."""
    models = [ModelPublic.from_record(m) for m in service.store.list_models()]
    return ModelsPublic(data=models, count=len(models))


@router.get("/{model_id}", response_model=ModelPublic, responses=NOT_FOUND, summary="Show a model")
def get_model(model_id: str, service: ServiceDep) -> ModelPublic:
    """One registered model."""
    return ModelPublic.from_record(_require(service, model_id))


@router.post(
    "/{model_id}/generate",
    response_model=GenerateResponse,
    responses={
        **NOT_FOUND,
        409: {"description": "The model's files are missing or damaged: it cannot be loaded."},
        422: {"description": "Bad parameters, or too long for the model."},
    },
    summary="Generate text",
)
def generate_text(
    model_id: str, request: GenerateRequest, service: ServiceDep, cache: ModelCacheDep
) -> GenerateResponse:
    """Answer a prompt or chat messages with a fine-tuned model (loaded once).

    A `prompt` is formatted as the model's training data was: through the chat template for a
    model tuned on chat data, as plain text for one tuned on prompt/completion text. `raw`
    chooses explicitly. The answer is recorded with a `generation_id` that
    `POST /generations/{generation_id}/feedback` rates. A `prompt` (what a prompt run
    registers) answers with its base model, its system prompt and exemplars put first.
    Concurrent greedy requests for the same model are answered together, in one batch.
    """
    record = _require(service, model_id)
    trained_on = _trained_on(service, record)
    prompt, key, path = _prompt_of(record), model_id, record.path
    if prompt is not None:  # the base model's weights, shared by every prompt over them
        key = path = prompt.model
    started = time.perf_counter()
    try:
        batcher = cache.get(key, path)
    except ModelLoadError as exc:  # its files were moved, deleted or damaged since it was made
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"model '{model_id}' cannot be loaded: {exc}"
        ) from None
    try:  # waits in this worker thread (a sync route) for the batch that answers it
        result = generate(batcher, request, trained_on=trained_on, prompt=prompt)
    except GenerationInputError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    result["latency_seconds"] = round(time.perf_counter() - started, 4)
    version = {"kind": record.kind or "model", "sha256": record.sha256, "run_id": record.run_id}
    if prompt is not None:
        version["base_model"] = prompt.model
    generation_id = record_generation(service, model_id, request, result, version=version)
    result.pop("latency_seconds")
    return GenerateResponse(model_id=model_id, generation_id=generation_id, **result)


def _require(service, model_id: str):
    model = service.store.get_model(model_id=model_id)
    if model is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no model with id '{model_id}'")
    return model


def _prompt_of(record):
    """The prompt artifact of a registered prompt (None for a model)."""
    if record.kind != "prompt":
        return None
    try:
        return read_prompt_artifact(Path(record.path))
    except PromptArtifactError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"model '{record.id}': {exc}"
        ) from None


def _trained_on(service, record) -> str | None:
    """The kind of data (`chat`, `prompt_completion`, ...) the model's run trained on."""
    if record.run_id is None or service.store.get_run(run_id=record.run_id) is None:
        return None
    return (service.state_values(record.run_id).get("data") or {}).get("kind")
