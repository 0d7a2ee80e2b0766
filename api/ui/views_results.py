"""Dashboard pages for what runs produced: data review, the evaluation report, run files."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse

from api.deps import ServiceDep
from api.path_strings import refuse_path
from api.ui.deps import SessionDep
from api.ui.rendering import page
from api.ui.run_view import metric_rows

router = APIRouter(prefix="/ui")

SAMPLES_SHOWN = 5
DROPPED_SHOWN = 20


@router.get("/runs/{run_id}/data", response_class=HTMLResponse)
def data_review(request: Request, run_id: str, session: SessionDep, service: ServiceDep):
    """The data report, samples kept, dropped (by reason) and generated, and the CLI command
    that checks the same file."""
    record = service.require(run_id)
    run_dir = Path(record.run_dir)
    report = read_json(run_dir / "data" / "data_report.json") or {}
    generation = read_json(run_dir / "synthesis" / "generation_report.json")
    data_config = record.config.get("data") or {}
    command = ["finetune-agent", "data", "inspect", str(data_config.get("train", "TRAIN_FILE"))]
    if data_config.get("format", "auto") != "auto":
        command += ["--format", data_config["format"]]
    return page(
        request,
        "data.html",
        session=session,
        nav="runs",
        run=record,
        report=report,
        counts=_counts(report),
        kept=read_jsonl(run_dir / "data" / "train.jsonl", SAMPLES_SHOWN),
        dropped=(report.get("dropped") or [])[:DROPPED_SHOWN],
        generation=generation,
        generated=read_jsonl(run_dir / "synthesis" / "synthetic.jsonl", SAMPLES_SHOWN),
        cli=shlex.join(command),
    )


def _counts(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("rows_read", "rows_kept", "train_rows", "eval_rows", "rows_dropped")
    extra = ("duplicates_removed", "overlaps_eval", "max_length")
    return {key: report.get(key) for key in (*keys, *extra) if key in report}


@router.get("/runs/{run_id}/evaluation", response_class=HTMLResponse)
def evaluation(request: Request, run_id: str, session: SessionDep, service: ServiceDep):
    """Base vs tuned metrics against their thresholds, example outputs side by side, the loss
    plot; or what the run is doing until it has been evaluated."""
    record = service.require(run_id)
    report = read_json(Path(record.run_dir) / "evaluation" / "evaluation_report.json")
    context: dict[str, Any] = {"run": record, "report": report}
    if report:
        metrics = {
            "base": (report.get("base") or {}).get("metrics") or {},
            "tuned": (report.get("tuned") or {}).get("metrics") or {},
        }
        context["metric_rows"] = metric_rows(metrics, report.get("checks") or [])
        plot = Path((report.get("files") or {}).get("loss_plot") or "")
        if plot.is_file() and plot.resolve().is_relative_to(Path(record.run_dir).resolve()):
            context["loss_plot"] = plot.resolve().relative_to(Path(record.run_dir).resolve())
    return page(request, "evaluation.html", session=session, nav="runs", **context)


@router.get("/runs/{run_id}/files/{path:path}")
def run_file(run_id: str, path: str, session: SessionDep, service: ServiceDep) -> FileResponse:
    """A file of the run directory (the same confinement as `/runs/{id}/artifacts/{path}`)."""
    refuse_path(path, ("path", "path"))
    run_dir = Path(service.require(run_id).run_dir).resolve()
    target = (run_dir / path).resolve()
    if not target.is_relative_to(run_dir) or not target.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} has no file '{path}'")
    return FileResponse(target)


def read_json(path: Path) -> Any:
    """A JSON file's content, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_jsonl(path: Path, limit: int) -> list[Any]:
    """The first `limit` rows of a JSON Lines file (none when it is missing)."""
    rows: list[Any] = []
    try:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    rows.append(json.loads(line))
                if len(rows) >= limit:
                    break
    except (OSError, ValueError):
        pass
    return rows
