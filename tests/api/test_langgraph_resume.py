"""Every form of a LangGraph `command.resume` the approval clients send, read as our decision,
and the ones that cannot be (with a message naming the forms that work)."""

from __future__ import annotations

import pytest

from api.langgraph_resume import ResumeError, read_resume

GATE = "0123456789abcdef0123456789abcdef"
PATCH = {"training": {"learning_rate": 0.001}}


@pytest.mark.parametrize(
    ("resume", "expected"),
    [
        ({"decision": "approve"}, (None, {"decision": "approve"})),
        (
            {GATE: {"decision": "reject", "comment": "no"}},
            (GATE, {"decision": "reject", "comment": "no"}),
        ),
        ({"decisions": [{"type": "approve"}]}, (None, {"decision": "approve"})),
        (
            {"decisions": [{"type": "reject", "message": "bad data"}]},
            (None, {"decision": "reject", "comment": "bad data"}),
        ),
        (
            {
                "decisions": [
                    {
                        "type": "edit",
                        "edited_action": {"name": "approve_plan", "args": {"edits": PATCH}},
                    }
                ]
            },
            (None, {"decision": "edit", "edits": PATCH}),
        ),
        ([{"type": "accept", "args": None}], (None, {"decision": "approve"})),
        (
            [{"type": "response", "args": "too slow"}],
            (None, {"decision": "reject", "comment": "too slow"}),
        ),
        (
            [
                {
                    "type": "edit",
                    "args": {
                        "action": "approve_fixes",
                        "args": {
                            "edits": '{"training": {"learning_rate": 0.001}}',
                            "route": "retrain",
                        },
                    },
                }
            ],
            (None, {"decision": "edit", "edits": PATCH, "route": "retrain"}),
        ),
        ({GATE: {"decisions": [{"type": "approve"}]}}, (GATE, {"decision": "approve"})),
    ],
)
def test_each_client_form_reads_as_our_decision(resume, expected) -> None:
    assert read_resume(resume) == expected


@pytest.mark.parametrize(
    ("resume", "said"),
    [
        ("yes", "cannot read"),
        ({"decisions": []}, "exactly one decision"),
        ({"decisions": [{"type": "approve"}, {"type": "approve"}]}, "exactly one decision"),
        ([{"type": "ignore", "args": None}], "cannot be ignored"),
        ({GATE: {"decision": "approve"}, "f" * 32: {"decision": "approve"}}, "one gate at a time"),
        (
            {"type": "edit", "edited_action": {"name": "x", "args": {"edits": "{oops"}}},
            "not valid JSON",
        ),
        ({"type": "edit", "edited_action": "x"}, "the action's arguments"),
        ([{"type": "response", "args": 5}], "is the reviewer's comment: text, not 5"),
        (  # LangChain's reject gives its reason as message: it was dropped when not text
            {"decisions": [{"type": "reject", "message": {"x": 1}}]},
            "a reject's message is the reviewer's comment: text",
        ),
        ({"type": "edit", "edited_action": {"name": "x", "args": {"edits": "[" * 5000}}}, "deeper"),
    ],
)
def test_what_cannot_be_read_says_why(resume, said) -> None:
    with pytest.raises(ResumeError, match=said):
        read_resume(resume)
