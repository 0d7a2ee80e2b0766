"""Each conversation turn the service serves is an interaction record.

`record_chat_turn` is the one place a served turn is written: a row of the run store's
interactions table (`llmfinetune_agent.feedback_store`), the same table the generate endpoint
writes, so feedback and its export treat both alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from llmfinetune_agent.settings import Settings

# TurnRecord fields that are interaction columns; the others go to its details.
_COLUMNS = ("chat_id", "model", "input", "output", "history")


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
    """Latency: from the user's message to the final answer (tool rounds included)."""
    input_tokens: int | None = None
    completion_tokens: int | None = None
    """The final answer's tokens."""
    prompt_version: str | None = None
    """A prompt artifact's sha256 (of its system prompt and exemplars), when one is applied."""
    source: str = "chat"
    """Where it was served: `api` or `cli`."""
    history: list[dict[str, str]] = field(default_factory=list)
    """The conversation before this turn, as `role`/`content` user and assistant turns (the
    answers only: tool rounds are in `tool_calls`), so an exported turn carries its context."""
    time: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())


def record_chat_turn(record: TurnRecord, *, settings: Settings) -> str:
    """Store one served turn in the interactions table; its id (feedback can rate it)."""
    from llmfinetune_agent.feedback_store import FeedbackStore

    details = {k: v for k, v in asdict(record).items() if k not in _COLUMNS}
    return FeedbackStore(settings.database_url).record_interaction(
        model_id=record.model,
        source="chat",
        chat_id=record.chat_id,
        prompt=record.input,
        output=record.output,
        messages=[*record.history, {"role": "user", "content": record.input}],
        details=details,
    )


def read_chat_turns(settings: Settings) -> list[dict[str, Any]]:
    """Every recorded chat turn, oldest first, as `TurnRecord` fields."""
    from llmfinetune_agent.feedback_store import FeedbackStore

    turns = FeedbackStore(settings.database_url).list_interactions(source="chat")
    return [
        {
            "chat_id": t["chat_id"],
            "model": t["model_id"],
            "input": t["prompt"],
            "output": t["output"],
            **t["details"],
        }
        for t in turns
    ]
