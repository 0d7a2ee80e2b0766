"""One turn per conversation at a time, across processes: a row of the `chat_turns` table.

An in-memory lock covered one `serve` process only: `finetune-agent chat --chat ID` (or a
second server) could answer the same chat at once, one answer was lost, and the turn start that
removes an unfinished turn could remove the other process's running one. The row names its
owner like a run's claim; a row whose owner process is gone (on this host) or that is older
than `STALE_AFTER` (a crash on another host) is taken over.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from llmfinetune_agent.store.engine import engine_for
from llmfinetune_agent.store.owners import make_owner, owner_process_is_gone
from llmfinetune_agent.store.schema import ChatTurnRow, utcnow

# Longer than any turn: 5 tool rounds of 4096 generated tokens at a few tokens/s on a CPU.
STALE_AFTER = timedelta(hours=2)


def claim_turn(database_url: str, chat_id: str) -> str | None:
    """The owner string of a new claim on `chat_id`'s next turn, or None while another live
    process answers it."""
    engine = engine_for(database_url)
    with engine.begin() as conn:
        held = conn.execute(
            select(ChatTurnRow.owner, ChatTurnRow.since).where(ChatTurnRow.chat_id == chat_id)
        ).first()
        if held is not None:
            if not (owner_process_is_gone(held.owner) or held.since < utcnow() - STALE_AFTER):
                return None
            conn.execute(  # only the dead claim seen: a live takeover meanwhile stays
                delete(ChatTurnRow).where(
                    ChatTurnRow.chat_id == chat_id, ChatTurnRow.owner == held.owner
                )
            )
    owner = make_owner()
    try:
        with engine.begin() as conn:
            conn.execute(insert(ChatTurnRow).values(chat_id=chat_id, owner=owner, since=utcnow()))
    except IntegrityError:  # another process claimed it between the two transactions
        return None
    return owner


def release_turn(database_url: str, chat_id: str, owner: str) -> None:
    """End `owner`'s claim on `chat_id` (a claim taken over meanwhile is left alone)."""
    with engine_for(database_url).begin() as conn:
        conn.execute(
            delete(ChatTurnRow).where(ChatTurnRow.chat_id == chat_id, ChatTurnRow.owner == owner)
        )
