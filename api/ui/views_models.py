"""Dashboard pages for models: the registry with lineage, comparing two runs, a playground.

The registry shows every column the model store has (lineage columns added to it appear
without code here); the playground answers through the same function as
`POST /models/{id}/generate`.
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import ModelCacheDep, ServiceDep
from api.routes.models import generate_text
from api.schemas import GenerateRequest
from api.ui.deps import SessionDep, WriteDep
from api.ui.rendering import page
from llmfinetune_agent.execution import describe_run

router = APIRouter(prefix="/ui")

SHOWN_FIRST = ("id", "run_id", "base_model", "path", "created_at")
NOT_SHOWN = ("metrics",)
COMPARABLE = 200


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, session: SessionDep, service: ServiceDep) -> HTMLResponse:
    """The model registry: each model with its lineage and metrics, newest first."""
    models = [_fields(m) for m in service.store.list_models()]
    columns = list(SHOWN_FIRST)
    for model in models:
        columns += [k for k in model if k not in columns and k not in NOT_SHOWN]
    return page(
        request, "models.html", session=session, nav="models", models=models, columns=columns
    )


def _fields(record: Any) -> dict[str, Any]:
    return asdict(record) if is_dataclass(record) else dict(vars(record))


@router.get("/compare", response_class=HTMLResponse)
def compare(
    request: Request,
    session: SessionDep,
    service: ServiceDep,
    a: Annotated[str | None, Query(max_length=64)] = None,
    b: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """Two runs side by side: metrics (base and tuned) and where their configs differ."""
    runs, _ = service.store.list_runs(limit=COMPARABLE)
    context: dict[str, Any] = {"choices": runs, "a": a, "b": b}
    if a and b:
        left, right = describe_run(service, a), describe_run(service, b)
        context["metrics"] = _metric_pairs(left, right)
        context["config_diff"] = config_diff(service.require(a).config, service.require(b).config)
        context["left"], context["right"] = left, right
    return page(request, "compare.html", session=session, nav="compare", **context)


def _metric_pairs(left: dict[str, Any], right: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for part in ("tuned", "base"):
        l_metrics, r_metrics = left["metrics"].get(part) or {}, right["metrics"].get(part) or {}
        for metric in sorted({*l_metrics, *r_metrics}):
            rows.append(
                {
                    "metric": f"{metric} ({part})",
                    "a": l_metrics.get(metric),
                    "b": r_metrics.get(metric),
                }
            )
    return rows


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Dotted config paths whose values differ, with both values."""
    flat_a, flat_b = _flatten(a), _flatten(b)
    return [
        {"path": path, "a": flat_a.get(path), "b": flat_b.get(path)}
        for path in sorted({*flat_a, *flat_b})
        if flat_a.get(path) != flat_b.get(path)
    ]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


@router.get("/models/{model_id}/playground", response_class=HTMLResponse)
def playground(request: Request, model_id: str, session: SessionDep, service: ServiceDep):
    """Try a model: a prompt and sampling settings, answered by the generation endpoint."""
    model = _require(service, model_id)
    return page(request, "playground.html", session=session, nav="models", model=_fields(model))


@router.post("/models/{model_id}/generate", response_class=HTMLResponse)
async def playground_generate(
    request: Request,
    model_id: str,
    session: WriteDep,
    service: ServiceDep,
    cache: ModelCacheDep,
    prompt: Annotated[str, Form(max_length=20_000)] = "",
    max_new_tokens: Annotated[str, Form(max_length=10)] = "64",
    do_sample: Annotated[str | None, Form(max_length=10)] = None,
    temperature: Annotated[str, Form(max_length=20)] = "1.0",
    seed: Annotated[str, Form(max_length=20)] = "",
) -> HTMLResponse:
    """The model's answer, or what is wrong with the request, in place."""
    fields = {
        "prompt": prompt or None,
        "max_new_tokens": max_new_tokens,
        "do_sample": do_sample is not None,
        "temperature": temperature,
        "seed": seed or None,
    }
    try:
        body = GenerateRequest.model_validate(fields)
        result = await run_in_threadpool(generate_text, model_id, body, service, cache)
    except ValidationError as exc:
        errors = [f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in exc.errors()]
        return page(request, "_generation.html", session=session, errors=errors)
    except HTTPException as exc:
        return page(request, "_generation.html", session=session, errors=[str(exc.detail)])
    return page(request, "_generation.html", session=session, result=result)


def _require(service, model_id: str):
    model = service.store.get_model(model_id=model_id)
    if model is None:
        raise HTTPException(404, f"no model with id '{model_id}'")
    return model
