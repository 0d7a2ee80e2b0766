"""Each conversation turn the service serves is an interaction record.

`record_chat_turn` is the one place a served turn is written. Until the run store has an
interactions table (the prompt-mode issue's), a turn is appended as one JSON line to
`<home>/interactions/chat.jsonl`; switching to the table changes only this function.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llmfinetune_agent.settings import Settings

INTERACTIONS_FILE = Path("interactions") / "chat.jsonl"
_write_lock = threading.Lock()


@dataclass
class TurnRecord:
    """One user message and everything the assistant did to answer it."""

    chat_id: str
    model: str
    """The chat's model reference (registry id, prompt artifact or model reference)."""
    model_path: str
    input: str
    output: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """Each call with its `name`, `args`, `result` and `status`."""
    seconds: float = 0.0
    source: str = "chat"
    """Where it was served: `api` or `cli`."""
    time: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())


def record_chat_turn(record: TurnRecord, *, settings: Settings) -> Path:
    """Store one served turn; returns where it went."""
    path = settings.home / INTERACTIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(asdict(record), ensure_ascii=False, default=str) + "\n"
    with _write_lock, path.open("a", encoding="utf-8") as handle:
        handle.write(line)
    return path


def read_chat_turns(settings: Settings) -> list[dict[str, Any]]:
    """Every recorded turn, oldest first."""
    path = settings.home / INTERACTIONS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
