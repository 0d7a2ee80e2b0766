"""`/runs/{run_id}/report` and `/runs/{run_id}/artifacts`: what a run wrote to its directory.

Downloads are confined to the run directory: the requested path is resolved (symlinks
followed) and must stay inside it. The listing shows exactly what can be downloaded.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import FileResponse

from api.deps import ServiceDep
from api.path_strings import refuse_path
from api.schemas import ArtifactPublic, ArtifactsPublic, ReportPublic

router = APIRouter(prefix="/runs", tags=["artifacts"])

NOT_FOUND = {404: {"description": "No such run, or no such file."}}


@router.get(
    "/{run_id}/report",
    response_model=ReportPublic,
    responses=NOT_FOUND,
    summary="Evaluation report",
)
def get_report(run_id: str, service: ServiceDep) -> ReportPublic:
    """The evaluation report (Markdown and JSON) once the run has been evaluated."""
    run_dir = Path(service.require(run_id).run_dir)
    markdown, report = (
        run_dir / "evaluation" / "evaluation_report.md",
        run_dir / "evaluation" / "evaluation_report.json",
    )
    if not markdown.is_file() or not report.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} has no evaluation report yet")
    return ReportPublic(
        run_id=run_id, markdown=markdown.read_text(), report=json.loads(report.read_text())
    )


@router.get(
    "/{run_id}/artifacts",
    response_model=ArtifactsPublic,
    responses=NOT_FOUND,
    summary="List artifacts",
)
def list_artifacts(
    run_id: str,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> ArtifactsPublic:
    """Files of the run directory that can be downloaded, sorted by path (at most `limit`;
    `count` is the total): a symlink is listed only if it resolves inside the directory."""
    run_dir = Path(service.require(run_id).run_dir).resolve()
    files = sorted(_downloadable(run_dir)) if run_dir.is_dir() else []
    data = []
    for path in files[:limit]:
        stat = path.stat()
        data.append(
            ArtifactPublic(
                path=path.relative_to(run_dir).as_posix(),
                size=stat.st_size,
                modified=datetime.fromtimestamp(stat.st_mtime, timezone.utc),
            )
        )
    return ArtifactsPublic(data=data, count=len(files))


def _downloadable(run_dir: Path) -> list[Path]:
    """The files `download_artifact` would serve: regular files whose resolved path (symlinks
    followed, in the file or in a folder above it) stays inside `run_dir`."""
    return [p for p in run_dir.rglob("*") if p.is_file() and p.resolve().is_relative_to(run_dir)]


@router.get(
    "/{run_id}/artifacts/{path:path}",
    response_class=FileResponse,
    responses={
        **NOT_FOUND,
        422: {"description": "The path holds a NUL byte or is too long to name a file."},
        200: {
            "content": {
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": '{"name": "Anna", "age": 31, "city": "Oslo"}',
                }
            },
            "description": "The file (e.g. `data/train.jsonl`, `final/README.md`).",
        },
    },
    summary="Download an artifact",
)
def download_artifact(run_id: str, path: str, service: ServiceDep) -> FileResponse:
    """One file of the run directory; paths leaving it (`..`, absolute, symlinks) are 404."""
    refuse_path(path, ("path", "path"))
    run_dir = Path(service.require(run_id).run_dir).resolve()
    target = (run_dir / path).resolve()
    if not target.is_relative_to(run_dir) or not target.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} has no file '{path}'")
    return FileResponse(target, filename=target.name)
