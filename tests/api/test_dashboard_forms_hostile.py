"""Hostile text typed into the dashboard's forms gets the answer the REST API gives it, on the
card, never a 500: JSON nested thousands deep (Python's parser would recurse past its limit),
a NUL byte in a gate's comment."""

from __future__ import annotations

import httpx

from api.main import create_app
from tests.api.conftest import live_server, small_config, wait_for_status
from tests.api.test_dashboard_gates import csrf_of, gate_id

DEEP = "[" * 5000 + "]" * 5000


def test_hostile_form_text_is_refused_on_the_card(settings) -> None:
    with (
        live_server(create_app(settings)) as url,
        httpx.Client(base_url=url, timeout=60, follow_redirects=True) as browser,
    ):
        run_id = browser.post("/runs", json=small_config("hostile")).json()["id"]
        wait_for_status(browser, run_id, ("awaiting_approval",))
        inbox = browser.get("/ui/inbox").text
        write = {"X-CSRF-Token": csrf_of(inbox)}
        gate = f"/ui/runs/{run_id}/gates/{gate_id(inbox, 'approve_plan')}"

        for answer in (
            browser.post(f"{gate}/check", data={"edits": DEEP}, headers=write),
            browser.post(gate, data={"decision": "edit", "edits": DEEP}, headers=write),
        ):
            assert answer.status_code == 200, answer.text
            assert "the JSON nests deeper than 64 levels" in answer.text
        nul = browser.post(gate, data={"decision": "approve", "comment": "a\x00b"}, headers=write)
        assert nul.status_code == 200 and "comment: contains a NUL byte" in nul.text
        upload = {"config_file": ("deep.json", DEEP.encode(), "application/json")}
        uploaded = browser.post("/ui/runs/upload", files=upload, headers=write)
        assert uploaded.status_code == 422 and "nests deeper than 64 levels" in uploaded.text
        run = browser.get(f"/runs/{run_id}").json()  # nothing was answered
        assert (run["status"], run["decisions"]) == ("awaiting_approval", [])
