"""Which candidates a release registers: the selected ones and their sources (every parent id
must resolve), the champion alone when nobody was asked, rolled-back ones on record; and what a
release decision may select."""

from __future__ import annotations

import pytest

from llmfinetune_agent.agents.gates import DecisionError, release_selection, validate_gate_decision
from llmfinetune_agent.config import parse_run_config
from llmfinetune_agent.registration import released_rows


def _row(index: int, name: str, parent: int | None, verdict: str = "pass") -> dict:
    return {"index": index, "name": name, "parent": parent, "verdict": verdict, "reason": "r"}


TABLE = {
    "candidates": [
        _row(0, "tuned", None),
        _row(1, "merge:ties_svd", 0),
        _row(2, "int8", 1),
        _row(3, "gguf:q4_k_m", 1, verdict="fail"),
        _row(4, "gguf:q8_0", 1),
    ],
    "champion": 4,
}


def _names(rows: list[dict]) -> list[str]:
    return [r["name"] for r in rows]


def test_a_selection_brings_its_sources_and_the_rolled_back_on_record() -> None:
    state = {"post_training": TABLE, "release": {"select": [2]}}
    assert _names(released_rows(state)) == ["tuned", "merge:ties_svd", "int8", "gguf:q4_k_m"]


def test_without_a_release_decision_the_champion_is_registered() -> None:
    """hitl.approve_release off: the best passing candidate (the champion) and its sources."""
    state = {"post_training": TABLE, "release": None}
    assert _names(released_rows(state)) == [
        "tuned",
        "merge:ties_svd",
        "gguf:q4_k_m",
        "gguf:q8_0",
    ]


def test_what_a_release_may_select() -> None:
    assert release_selection(TABLE, None) == [0, 1, 2, 4]
    assert release_selection(TABLE, [4, 2, 4]) == [2, 4]
    with pytest.raises(DecisionError, match=r"no candidate with index \[9\]"):
        release_selection(TABLE, [9])
    with pytest.raises(DecisionError, match=r"\[3\] failed their gate.*#3 gguf:q4_k_m: r"):
        release_selection(TABLE, [3])
    with pytest.raises(DecisionError, match="names no candidate"):
        release_selection(TABLE, [])
    config = parse_run_config({"data": {"train": "t.jsonl"}}).model_dump(mode="json")
    state = {"config": config, "post_training": TABLE}
    with pytest.raises(DecisionError, match="select must be a list"):
        validate_gate_decision({"decision": "approve", "select": "2"}, state, "approve_release")
    # A rejection releases nothing: a selection with it was dropped silently over REST.
    with pytest.raises(DecisionError, match="select and route go with decision 'approve'"):
        validate_gate_decision({"decision": "reject", "select": [3]}, state, "approve_release")
    with pytest.raises(DecisionError, match="select must be a list of indexes"):
        validate_gate_decision({"decision": "approve", "select": [True]}, state, "approve_release")


def test_the_interactive_release_prompt_asks_which_candidates() -> None:
    from typer.testing import CliRunner

    from llmfinetune_agent.cli.display import RunDisplay
    from llmfinetune_agent.cli.run_cmd import _ask

    pending = {
        "id": "i1",
        "kind": "approve_release",
        "message": "Register?",
        "details": {},
        "options": ["approve", "reject", "edit"],
    }
    with CliRunner().isolation(input="approve\n1,x\n1,2\nship\n") as streams:
        decision = _ask(RunDisplay(), pending)
        shown = b"".join(stream.getvalue() for stream in streams if stream is not None)
    assert decision == {"decision": "approve", "select": [1, 2], "comment": "ship"}
    assert b"select: candidate indexes like 0,2 (got '1,x')" in shown
    with CliRunner().isolation(input="approve\n\n\n"):
        assert _ask(RunDisplay(), pending) == {"decision": "approve", "comment": ""}
