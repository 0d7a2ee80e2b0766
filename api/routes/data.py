"""`POST /data`: upload a data file under the first data root, to name it in a run config."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status

from api.deps import SettingsDep
from api.path_strings import refuse_path
from api.schemas import DataUploaded

router = APIRouter(prefix="/data", tags=["data"])

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DataUploaded,
    summary="Upload a data file",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
    responses={
        413: {"description": "The file is larger than the upload limit (checked as it arrives)."},
        415: {"description": "A multipart or urlencoded form instead of the file's own bytes."},
        422: {
            "description": "The file name has an unsupported extension or a NUL byte; or the "
            "body is empty."
        },
    },
)
async def upload_data(
    request: Request,
    settings: SettingsDep,
    filename: Annotated[
        str,
        Query(
            min_length=1, max_length=200, description="e.g. train.jsonl (.jsonl, .json, .csv, .tsv)"
        ),
    ],
) -> DataUploaded:
    """Store the request body as a new file under `<first data root>/uploads/`; returns its path."""
    refuse_path(filename, ("query", "filename"))
    name = _UNSAFE.sub("_", filename.rsplit("/", 1)[-1]).lstrip(".")
    if not name.lower().endswith(SUFFIXES):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"filename '{filename}' must end with one of {', '.join(SUFFIXES)}",
        )
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind in ("multipart/form-data", "application/x-www-form-urlencoded"):
        # The form's envelope would be stored as the data file, boundaries and all.
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"the body is the file's own bytes, not a {kind} form: send it as "
            "application/octet-stream (curl --data-binary @train.jsonl)",
        )
    folder = settings.data_roots[0] / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{uuid.uuid4().hex[:8]}-{name}"
    size = 0
    try:
        with target.open("wb") as out:
            # `BodyLimits` ends the stream with a 413 past `upload_limit_bytes`.
            async for chunk in request.stream():
                size += len(chunk)
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    if size == 0:
        target.unlink(missing_ok=True)
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "the body is empty: send the file's bytes"
        )
    return DataUploaded(path=str(target), size=size)
