"""Answering a real gate in the dashboard: the inbox card (summary, options), an edit checked
as it is typed, an approval, a second answer refused, the inbox noticing the next gate, and
the run page's live stream of HTML fragments."""

from __future__ import annotations

import re
import time

import httpx

from api.main import create_app
from tests.api.conftest import live_server, small_config, wait_for_status


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)


def gate_id(html: str, kind: str) -> str:
    return re.search(rf'id="gate-([0-9a-f]{{32}})" data-gate data-kind="{kind}"', html).group(1)


def test_a_gate_answered_in_the_inbox(settings) -> None:
    with (
        live_server(create_app(settings)) as url,
        httpx.Client(base_url=url, timeout=60, follow_redirects=True) as browser,
    ):
        run_id = browser.post("/runs", json=small_config("inbox")).json()["id"]
        wait_for_status(browser, run_id, ("awaiting_approval",))
        inbox = browser.get("/ui/inbox").text  # the open dashboard hands out a session
        token, plan = csrf_of(inbox), gate_id(inbox, "approve_plan")
        assert "<dt>train examples</dt>" in inbox and "<dt>steps</dt>" in inbox
        assert 'value="approve"' in inbox and 'value="reject"' in inbox
        write = {"X-CSRF-Token": token}
        gate = f"/ui/runs/{run_id}/gates/{plan}"

        typo = browser.post(f"{gate}/check", data={"edits": '{"trainng": {}}'}, headers=write)
        assert "trainng" in typo.text and "did you mean" in typo.text
        escape = {"edits": '{"data": {"train": "/etc/passwd"}}'}
        assert (
            "outside the data roots"
            in browser.post(f"{gate}/check", data=escape, headers=write).text
        )
        fine = browser.post(
            f"{gate}/check", data={"edits": '{"training": {"epochs": 2}}'}, headers=write
        )
        assert "Valid: training.epochs would change." in fine.text
        not_json = browser.post(gate, data={"decision": "edit", "edits": "{"}, headers=write)
        assert "not valid JSON" in not_json.text
        assert browser.get(f"/runs/{run_id}").json()["status"] == "awaiting_approval"

        approved = browser.post(gate, data={"decision": "approve", "comment": "ok"}, headers=write)
        assert "Approved — the run continues" in approved.text
        # Not the name the poll deletes once the gate stops waiting: the outcome stays in view.
        assert f'id="answered-{plan}"' in approved.text and f'id="gate-{plan}"' not in approved.text
        again = browser.post(gate, data={"decision": "approve"}, headers=write)
        assert re.search(
            r'class="outcome error"[^>]*>[^<]*(already answered|no longer pending)', again.text
        )

        wait_for_status(browser, run_id, ("awaiting_approval",))
        poll = browser.get(f"/ui/inbox/poll?known={plan}").text
        assert f'<div id="gate-{plan}" hx-swap-oob="delete">' in poll
        data_gate = gate_id(poll, "approve_data")
        assert f"known={data_gate}" in poll  # the poller now knows the new gate

        page = browser.get(f"/ui/runs/{run_id}").text
        assert "gate_plan" in page and "approve plan" in page  # the path and the decision
        cancelled = browser.post(f"/ui/runs/{run_id}/cancel", headers=write)
        assert "data-run-status>cancelled<" in cancelled.text

        started = time.monotonic()
        stream = browser.get(f"/ui/runs/{run_id}/live?after=0").text
        assert time.monotonic() - started < 30  # the run has ended: the stream ends too
        kinds = re.findall(r"^event: (\w+)$", stream, flags=re.M)
        assert kinds[-1] == "end" and "state" in kinds and kinds.count("tail") >= 10
        assert re.search(r'data: <li data-seq="\d+" data-event-time="\d{13}">', stream)
