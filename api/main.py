"""The FastAPI app: routers, error mapping, and the service's lifetime (stores, execution).

uvicorn --factory api.main:create_app --host 127.0.0.1 --port 8000
uvicorn --factory api.main:create_api_only_app   # no workers: `finetune-agent worker` runs them
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.body_limits import BodyLimits
from api.confinement import PathNotAllowed
from api.deps import AuthDep, SafeParamsDep
from api.docs_page import add_docs
from api.error_excerpts import bounded_errors
from api.generation import ModelCache
from api.listing import ListingCache
from api.routes import (
    artifacts,
    assistants,
    chats,
    data,
    events,
    generations,
    health,
    history,
    interrupts,
    models,
    runs,
    stats,
    threads,
)
from api.ui import add_dashboard, error_page
from llmfinetune_agent.chat.service import ChatService
from llmfinetune_agent.config import ConfigError, parse_run_config
from llmfinetune_agent.execution import RunError, make_backend, open_service
from llmfinetune_agent.settings import Settings

logger = logging.getLogger(__name__)

UPLOAD_LIMIT_BYTES = 100 * 1024 * 1024
HTTP_STATUS = {"not_found": 404, "conflict": 409, "invalid": 422, "bad_request": 400}

DESCRIPTION = """Fine-tune language models with a LangGraph multi-agent pipeline and human
approvals. Submit a run config to `POST /runs`, follow `GET /runs/{id}/events`, answer gates
at `POST /runs/{id}/interrupts/{interrupt_id}`, then generate with `POST /models/{id}/generate`.
With `FINETUNE_AGENT_API_KEY` set, send `Authorization: Bearer <key>` (all but `/healthz`)."""


def create_app(
    settings: Settings | None = None,
    *,
    workers: bool = True,
    upload_limit_bytes: int = UPLOAD_LIMIT_BYTES,
) -> FastAPI:
    """The app. `workers=False` serves the API without executing runs (another process does).

    Request bodies are refused (413) above `settings.max_json_bytes`, before they are read;
    `POST /data` takes up to `upload_limit_bytes`.
    """
    resolved = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with open_service(resolved) as service:
            size = resolved.max_concurrent_runs if workers else 0
            backend = make_backend(service, workers=size)
            app.state.settings = resolved
            app.state.service = service
            app.state.backend = backend
            app.state.models = ModelCache(
                cache_dir=resolved.models_cache_dir,
                batch_window_seconds=resolved.generation_batch_window_ms / 1000,
                max_batch=resolved.generation_max_batch,
            )
            app.state.listing = ListingCache(service.store)
            app.state.chats = ChatService(resolved, service.saver, store=service.store)
            backend.start()  # the first poll recovers runs a crash left behind
            # What start-up built lives as long as the process: keep the cyclic collector
            # from re-scanning it on every full collection (latency spikes under load).
            gc.freeze()
            try:
                yield
            finally:
                backend.stop()

    app = FastAPI(
        title="finetune-agent",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # The schema (behind the key) and the offline docs page are served by `add_docs`.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        BodyLimits, max_json_bytes=resolved.max_json_bytes, max_upload_bytes=upload_limit_bytes
    )
    app.include_router(health.router)
    add_docs(app)
    for router in (
        runs,
        interrupts,
        events,
        artifacts,
        models,
        generations,
        data,
        history,
        assistants,
        threads,
        chats,
        stats,
    ):
        app.include_router(router.router, dependencies=[AuthDep, SafeParamsDep])
    add_dashboard(app, resolved)
    if resolved.cors_origins:  # a UI served elsewhere (Agent Inbox) calling this API
        app.add_middleware(
            CORSMiddleware,
            allow_origins=resolved.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Api-Key", "Last-Event-ID"],
            expose_headers=["Content-Location", "Location"],
        )
    _add_error_handlers(app)
    return app


def create_api_only_app() -> FastAPI:
    """The app without workers (`finetune-agent serve --no-workers`): other processes that
    share the database, such as `finetune-agent worker`, execute the runs."""
    return create_app(workers=False)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RunError)
    async def run_error(request: Request, exc: RunError) -> Response:
        code = HTTP_STATUS.get(exc.code, 400)
        if request.url.path.startswith("/ui/"):
            return error_page(request, code, str(exc))
        if code == 422:
            detail = [{"loc": ["body"], "msg": str(exc), "type": "invalid_decision"}]
            return JSONResponse({"detail": detail}, status_code=code)
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.exception_handler(PathNotAllowed)
    async def path_not_allowed(_request: Request, exc: PathNotAllowed) -> JSONResponse:
        return _body_issues(exc.issues, "path_not_allowed")

    @app.exception_handler(ConfigError)
    async def config_error(_request: Request, exc: ConfigError) -> JSONResponse:
        return _body_issues(exc.issues, "config")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # A run config gets the CLI's messages ("unknown key 'lerning_rate'", "did you mean
        # 'learning_rate'?"), not pydantic's bare ones. Parsed off the event loop: the body
        # can be megabytes.
        if request.method == "POST" and request.url.path == "/runs" and isinstance(exc.body, dict):
            try:
                await run_in_threadpool(parse_run_config, exc.body, source="request body")
            except ConfigError as config_exc:
                return _body_issues(config_exc.issues, "config")
        # FastAPI's answer, with a bounded excerpt of each input instead of the input itself.
        detail = await run_in_threadpool(lambda: jsonable_encoder(bounded_errors(exc.errors())))
        return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def _body_issues(issues: list, kind: str) -> JSONResponse:
    """422 with one FastAPI-style field error per config issue (`loc` is its JSON path)."""
    detail = bounded_errors(
        [
            {"loc": ["body", *i.path.split(".")], "msg": i.message, "type": kind, "hint": i.hint}
            for i in issues
        ]
    )
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
