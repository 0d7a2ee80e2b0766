"""The dashboard over HTTP: signing in, the session cookie and CSRF, starting runs from the
form and from a file (errors in place), the shipped JS + CSS budget, and a gate of a kind the
dashboard has no code for, shown from its generic payload."""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.ui.rendering import TEMPLATES
from api.ui.run_view import GateItem
from llmfinetune_agent.agents.gate_request import gate_payload
from tests.api.conftest import REPO

STATIC = REPO / "api" / "ui" / "static"
BUDGET_GZIPPED = 150 * 1024


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)


@pytest.fixture
def locked(settings):
    """The API (no workers) with a key: the dashboard asks for it once."""
    roots = [settings.home / "data", REPO / "configs"]
    app = create_app(
        dataclasses.replace(settings, api_key="s3cret", data_roots=roots), workers=False
    )
    with TestClient(app) as client:
        yield client


def sign_in(client: TestClient) -> str:
    """Sign in; returns the CSRF token the pages carry."""
    done = client.post("/ui/login", data={"api_key": "s3cret", "next": "/ui"})
    assert done.status_code == 200 and done.url.path == "/ui"
    return csrf_of(client.get("/ui/runs/new").text)


def test_sign_in_gives_an_http_only_session_cookie(locked: TestClient) -> None:
    first = locked.get("/ui/inbox", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/ui/login?next=/ui/inbox"
    wrong = locked.post("/ui/login", data={"api_key": "nope"})
    assert wrong.status_code == 401 and "Wrong API key." in wrong.text
    right = locked.post(
        "/ui/login", data={"api_key": "s3cret", "next": "/ui/inbox"}, follow_redirects=False
    )
    assert right.status_code == 303 and right.headers["location"] == "/ui/inbox"
    cookie = right.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
    assert locked.get("/ui/inbox").status_code == 200
    # The cookie is the dashboard's only: the REST API still wants the key.
    assert locked.get("/runs").status_code == 401
    # A forged or tampered cookie is no session.
    value = locked.cookies.get("fa_session")
    locked.cookies.clear()
    locked.cookies.set("fa_session", value[:-1] + ("0" if value[-1] != "0" else "1"))
    assert locked.get("/ui/inbox", follow_redirects=False).status_code == 303
    # htmx and the event stream are told to sign in, not redirected into HTML.
    htmx = locked.get("/ui/runs/table", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["hx-redirect"].startswith("/ui/login")
    stream = locked.get("/ui/runs/abc/live", headers={"Accept": "text/event-stream"})
    assert stream.status_code == 401


def test_a_write_needs_the_sessions_csrf_token_and_our_origin(locked: TestClient) -> None:
    token = sign_in(locked)
    form = {"name": "x", "data.train": "data/quickstart/train.jsonl"}
    assert locked.post("/ui/runs", data=form).status_code == 403
    assert locked.post("/ui/runs", data={**form, "csrf_token": "0" * 64}).status_code == 403
    foreign = locked.post(
        "/ui/runs", data={**form, "csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403 and "evil.example" in foreign.text
    assert locked.get("/runs", headers={"Authorization": "Bearer s3cret"}).json()["count"] == 0
    logout = locked.post("/ui/logout", data={"csrf_token": token}, follow_redirects=False)
    assert logout.status_code == 303
    assert locked.get("/ui", follow_redirects=False).status_code == 303


def test_without_a_key_the_dashboard_is_open(settings) -> None:
    with TestClient(create_app(settings, workers=False)) as client:
        page = client.get("/ui")  # through /ui/login, which hands out a session at once
        assert page.status_code == 200 and page.url.path == "/ui"
        assert "Sign out" not in page.text
        headers = page.headers["content-security-policy"]
        assert "default-src 'self'" in headers and "script-src 'self'" in headers


def test_the_form_starts_a_run_with_what_was_typed(locked: TestClient) -> None:
    token = sign_in(locked)
    form = {
        "csrf_token": token,
        "name": "from-form",
        "model.name_or_path": "builtin:tiny-llama",
        "data.train": "data/quickstart/train.jsonl",
        "data.deduplicate": "true",
        "training.method": "sft",
        "training.learning_rate": "0.003",
        "training.epochs": "2",
        "training.lora": '{"r": 4, "alpha": 8}',
        "evaluation.metrics": '["rougeL"]',
        "hitl.approve_plan": "true",
    }
    started = locked.post("/ui/runs", data=form, follow_redirects=False)
    assert started.status_code == 303, started.text
    run_id = started.headers["location"].rsplit("/", 1)[-1]
    config = locked.get(f"/runs/{run_id}", headers={"Authorization": "Bearer s3cret"})
    run = locked.get("/runs", headers={"Authorization": "Bearer s3cret"}).json()["data"][0]
    assert run["id"] == run_id and run["name"] == "from-form" and config.status_code == 200
    saved = json.loads((Path(run["run_dir"]) / "config.json").read_text())
    assert saved["training"]["learning_rate"] == 0.003 and saved["training"]["epochs"] == 2
    assert saved["training"]["lora"]["r"] == 4 and saved["evaluation"]["metrics"] == ["rougeL"]
    assert saved["data"]["deduplicate"] is True and saved["hitl"]["approve_data"] is False
    assert saved["data"]["train"].endswith("configs/data/quickstart/train.jsonl")


def test_form_errors_are_shown_next_to_their_fields(locked: TestClient) -> None:
    token = sign_in(locked)
    bad = locked.post(
        "/ui/runs",
        data={
            "csrf_token": token,
            "data.train": "/etc/passwd",
            "training.method": "dpo",
            "training.beta": "strong",
            "training.lora": "{r: 4",
        },
    )
    assert bad.status_code == 422
    assert re.search(r'id="f-training-beta-error">\s*&#39;strong&#39; is not a number', bad.text)
    assert 'id="f-training-lora-error">not valid JSON' in bad.text
    refused = locked.post(
        "/ui/runs", data={"csrf_token": token, "data.train": "/etc/passwd", "training.epochs": "0"}
    )
    assert refused.status_code == 422
    assert re.search(r'id="f-training-epochs-error">[^<]*greater than 0', refused.text)
    assert 'value="0"' in refused.text  # what was typed stays in the form
    assert locked.get("/runs", headers={"Authorization": "Bearer s3cret"}).json()["count"] == 0


def test_a_config_file_starts_a_run_or_says_what_is_wrong(locked: TestClient) -> None:
    token = sign_in(locked)
    quickstart = (REPO / "configs" / "quickstart-tiny.json").read_bytes()
    for name, body, expected in [
        ("broken.json", b'{"name": "x",\n "model": }', "broken.json is not JSON (line 2, column"),
        ("typo.json", b'{"trainig": {}}', "did you mean"),
        ("escape.json", b'{"data": {"train": "/etc/passwd"}}', "outside the data roots"),
    ]:
        bad = locked.post(
            "/ui/runs/upload",
            data={"csrf_token": token},
            files={"config_file": (name, body, "application/json")},
        )
        assert bad.status_code == 422 and expected in bad.text.replace("&#39;", "'"), name
    started = locked.post(
        "/ui/runs/upload",
        data={"csrf_token": token},
        files={"config_file": ("quickstart-tiny.json", quickstart, "application/json")},
        follow_redirects=False,
    )
    assert started.status_code == 303, started.text
    page = locked.get(started.headers["location"])
    assert "quickstart-tiny" in page.text and "queued" in page.text


def test_shipped_js_and_css_fit_the_budget_and_are_served(locked: TestClient, capsys) -> None:
    assets = [p for p in STATIC.iterdir() if p.suffix in (".js", ".css")]
    assert {p.name for p in assets} >= {"htmx.min.js", "sse.min.js", "uPlot.iife.min.js", "app.js"}
    zipped = sum(len(gzip.compress(p.read_bytes(), 9)) for p in assets)
    with capsys.disabled():
        print(f"\ndashboard JS + CSS: {zipped / 1024:.1f} KB gzipped (budget 150 KB)")
    assert zipped <= BUDGET_GZIPPED
    for license_file in ("htmx.LICENSE", "htmx-ext-sse.LICENSE", "uPlot.LICENSE"):
        assert (STATIC / license_file).stat().st_size > 100
    served = locked.get("/ui/static/htmx.min.js")
    assert served.status_code == 200 and "javascript" in served.headers["content-type"]
    sign_in(locked)
    html = locked.get("/ui").text
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing from another origin


def test_a_new_gate_kind_shows_from_its_generic_payload() -> None:
    payload = gate_payload(
        "approve_release",
        "Release the merged model as champion?",
        {"candidate": "m-7", "exact_match": 0.91, "files": ["a", "b"]},
        options=["approve", "reject"],
        default="approve",
    )
    assert payload["summary"] == {"candidate": "m-7", "exact_match": 0.91}
    assert payload["action_requests"][0]["name"] == "approve_release"
    assert "**exact match**: 0.91" in payload["action_requests"][0]["description"]
    assert payload["review_configs"][0]["allowed_decisions"] == ["approve", "reject"]
    gate = {"id": "f" * 32, **payload}
    run = {"id": "abc123def456", "name": "release"}
    html = TEMPLATES.get_template("_gate.html").render(
        item=GateItem(gate, run, None), csrf_token="t"
    )
    assert 'data-kind="approve_release"' in html
    assert "Release the merged model as champion?" in html
    assert "<dt>candidate</dt><dd>m-7</dd>" in html and "<dt>exact match</dt><dd>0.91</dd>" in html
    assert 'value="approve"' in html and 'value="reject"' in html and "Edit" not in html


def test_the_new_run_form_trains_sft_unless_told_otherwise(locked: TestClient) -> None:
    """The method select showed 'dpo' (the first of an alphabetical mapping), so a run started
    with the form's defaults on chat data failed."""
    sign_in(locked)
    page = locked.get("/ui/runs/new").text
    method = re.search(r'name="training.method".*?</select>', page, re.DOTALL).group(0)
    assert re.findall(r'<option value="([a-z_]+)"\s+selected', method) == ["sft"]


def test_odd_form_names_and_event_ids_are_refused_not_500(locked: TestClient) -> None:
    """A field name nested under another's ('training.epochs.a.b' beside 'training.epochs')
    and a Last-Event-ID of 5,000 digits or '²' gave 500s."""
    token = sign_in(locked)
    nested = locked.post(
        "/ui/runs",
        data={"csrf_token": token, "training.epochs": "abc", "training.epochs.a.b": "1"},
    )
    assert nested.status_code == 422
    form = {"csrf_token": token, "data.train": "data/quickstart/train.jsonl"}
    started = locked.post("/ui/runs", data=form, follow_redirects=False)
    assert started.status_code == 303, started.text
    live = started.headers["location"] + "/live"
    for odd in ("9" * 5000, "²".encode("latin-1")):  # a header is bytes: '²' is one byte
        stream = locked.get(live, headers={"Last-Event-ID": odd})
        assert stream.status_code == 422, stream.text


def test_a_run_whose_process_is_gone_says_so_on_its_page(locked: TestClient) -> None:
    """The runs list said "process gone"; the run's own page showed it running, with time left."""
    import socket
    import subprocess
    import sys

    token = sign_in(locked)
    form = {"csrf_token": token, "data.train": "data/quickstart/train.jsonl"}
    run_page = locked.post("/ui/runs", data=form, follow_redirects=False).headers["location"]
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store = locked.app.state.service.store
    run_id = run_page.rsplit("/", 1)[-1]
    assert store.claim_run(run_id=run_id, owner=f"{socket.gethostname()}:{gone.pid}:x")
    page = locked.get(run_page).text
    assert "process gone" in page and f"finetune-agent resume {run_id}" in page
