"""What the service has seen, written out for analysis or training: served interactions as
OpenAI-style `messages` rows (the data phase reads them back as chat data), and every run with
its config, decisions, metrics and training statistics.

    rows = interaction_rows(FeedbackStore(url), model_id=None, since=parse_since("2026-12-01"))
    runs = run_records(service)
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from llmfinetune_agent.feedback_store import FeedbackStore

RUNS_PAGE = 200


class ExportError(ValueError):
    """An export that cannot be made as asked; the message says why."""


def parse_since(text: str) -> datetime:
    """A `--since` value: an ISO date (`2026-12-01`, midnight UTC) or date and time
    (`2026-12-01T08:30`, UTC unless it names its offset)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ExportError(
            f"--since {text!r} is not a date: write it as YYYY-MM-DD or YYYY-MM-DDTHH:MM "
            "(UTC unless an offset is given)"
        ) from None
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    try:  # compared in UTC: an offset must not carry it past year 1 or 9999
        return when.astimezone(timezone.utc)
    except OverflowError:
        raise ExportError(
            f"--since {text!r} is out of range: in UTC it falls before year 1 or after 9999"
        ) from None


def interaction_rows(
    store: FeedbackStore, *, model_id: str | None = None, since: datetime | None = None
) -> list[dict[str, Any]]:
    """Each served answer as `{"messages": [...]}`: the conversation it answered (or the
    prompt as a user turn), then the answer as the assistant's turn; oldest first."""
    rows = []
    for interaction in store.list_interactions(model_id=model_id, since=since):
        if not interaction["output"].strip():
            continue  # an empty answer teaches nothing and the data phase would drop it
        asked = interaction["messages"] or [{"role": "user", "content": interaction["prompt"]}]
        messages = [{"role": m["role"], "content": m["content"]} for m in asked]
        rows.append(
            {"messages": [*messages, {"role": "assistant", "content": interaction["output"]}]}
        )
    return rows


def run_records(service: Any) -> list[dict[str, Any]]:
    """Every run, oldest first: what `runs show --json` says of it (status, decisions,
    metrics, training statistics, data) plus its config."""
    from llmfinetune_agent.execution import describe_run

    runs, offset = [], 0
    while True:
        page, total = service.store.list_runs(limit=RUNS_PAGE, offset=offset)
        runs += page
        offset += len(page)
        if not page or offset >= total:
            break
    return [
        {**describe_run(service, run.id), "config": run.config}
        for run in sorted(runs, key=lambda r: (r.created_at, r.id))
    ]
