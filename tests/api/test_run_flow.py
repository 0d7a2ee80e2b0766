"""A whole quickstart run over HTTP: submit, follow the event stream, answer every gate through
the API (including a racing double approval), reach `completed`, then generate text."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from api.main import create_app
from api.schemas import RunDetail, RunsPublic
from llmfinetune_agent.execution import describe_run, open_service
from tests.api.conftest import live_server, small_config


def sse_events(response: httpx.Response) -> Any:
    """(id, event, data) for each server-sent event of a streaming response."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if not line:
            if "event" in fields:
                yield fields.get("id"), fields["event"], json.loads(fields.get("data", "null"))
            fields = {}
            continue
        key, _, value = line.partition(": ")
        fields[key] = value


def test_quickstart_over_http(settings) -> None:
    app = create_app(settings)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        created = client.post("/runs", json=small_config())
        assert created.status_code == 202, created.text
        run_id = created.json()["id"]

        gates, racing, seen_ids = [], None, []
        with client.stream("GET", f"/runs/{run_id}/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            for event_id, kind, data in sse_events(stream):
                seen_ids.append(event_id)
                if kind != "interrupt":
                    continue
                gates.append(data["kind"])
                listed = client.get(f"/runs/{run_id}/interrupts").json()
                assert listed["count"] == 1 and listed["data"][0]["id"] == data["id"]
                # The hot reads skip FastAPI's response validation: check them against it here.
                waiting = RunDetail.model_validate(client.get(f"/runs/{run_id}").json())
                assert waiting.pending_interrupt["id"] == data["id"]
                page = RunsPublic.model_validate(client.get("/runs").json())
                assert page.data[0].pending_interrupt["id"] == data["id"]
                if racing is None:
                    racing = _answer_twice(client, run_id, data["id"])
                else:
                    answer = {"decision": "approve", "comment": "ok"}
                    done = client.post(f"/runs/{run_id}/interrupts/{data['id']}", json=answer)
                    assert done.status_code == 202, done.text
        final = client.get(f"/runs/{run_id}").json()
        assert final["status"] == "completed", final["error"]
        metrics = RunDetail.model_validate(final).metrics
        base, tuned = metrics["base"], metrics["tuned"]
        assert set(tuned) == set(base) >= {"rougeL", "exact_match", "perplexity"}
        # Four steps already move the tiny model on held-out data (measured: perplexity 2229 ->
        # 607); ROUGE-L and exact match stay at 0 this early, so perplexity is what must beat.
        assert tuned["perplexity"] < base["perplexity"] / 2
        assert kind == "end" and data == {"status": "completed"}

        # One approval per gate, in the graph's order; the losing racer changed nothing.
        assert gates == [
            "approve_plan",
            "approve_data",
            "training_checkpoint",
            "approve_evaluation",
        ]
        assert sorted(racing) == [202, 409]
        assert [d["gate"] for d in final["decisions"]] == gates
        # The stream resumes after Last-Event-ID.
        numbered = [int(i) for i in seen_ids if i]
        assert numbered == sorted(numbered) and len(set(numbered)) == len(numbered)
        with client.stream(
            "GET", f"/runs/{run_id}/events", headers={"Last-Event-ID": str(numbered[-3])}
        ) as again:
            replay = [int(i) for i, _, _ in sse_events(again) if i]
        assert replay == numbered[-2:]

        _check_results(client, app, settings, run_id, final)


def _answer_twice(client: httpx.Client, run_id: str, interrupt_id: str) -> list[int]:
    """The first gate: unknown ids, bad decisions, then two approvals at once."""
    unknown = client.post(
        f"/runs/{run_id}/interrupts/{uuid.uuid4().hex}", json={"decision": "approve"}
    )
    assert unknown.status_code == 404
    bad = client.post(f"/runs/{run_id}/interrupts/{interrupt_id}", json={"decision": "maybe"})
    assert bad.status_code == 422
    bad_edit = client.post(
        f"/runs/{run_id}/interrupts/{interrupt_id}",
        json={"decision": "edit", "edits": {"training": {"learning_rate": -1}}},
    )
    assert bad_edit.status_code == 422 and "learning_rate" in bad_edit.text
    escape = client.post(
        f"/runs/{run_id}/interrupts/{interrupt_id}",
        json={"decision": "edit", "edits": {"data": {"train": "/etc/passwd"}}},
    )
    assert escape.status_code == 422 and "outside the data roots" in escape.text
    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(
                lambda _: client.post(
                    f"/runs/{run_id}/interrupts/{interrupt_id}", json={"decision": "approve"}
                ),
                range(2),
            )
        )
    again = client.post(f"/runs/{run_id}/interrupts/{interrupt_id}", json={"decision": "approve"})
    assert again.status_code == 409  # answered already: known, but no longer pending
    return [a.status_code for a in answers]


def _check_results(client: httpx.Client, app, settings, run_id: str, final: dict) -> None:
    with open_service(settings) as service:
        assert set(final) == set(describe_run(service, run_id))

    models = client.get("/models").json()
    model = next(m for m in models["data"] if m["run_id"] == run_id)
    assert client.get(f"/models/{model['id']}").json()["path"] == final["model_path"]
    prompt = {"prompt": "Anna is 31 and lives in Oslo.", "max_new_tokens": 8}
    first = client.post(f"/models/{model['id']}/generate", json=prompt)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["completion_tokens"] >= 1 and body["prompt_tokens"] > 1
    # The model was tuned on chat data: a prompt is answered as that chat turn.
    as_turn = {"messages": [{"role": "user", "content": prompt["prompt"]}], "max_new_tokens": 8}
    turn = client.post(f"/models/{model['id']}/generate", json=as_turn).json()
    assert body["chat_template"] and (body["text"], body["prompt_tokens"]) == (
        turn["text"],
        turn["prompt_tokens"],
    )
    chat = {
        "messages": [{"role": "user", "content": "Tom is 40 and lives in Rome."}],
        "do_sample": True,
        "temperature": 0.8,
        "seed": 3,
        "max_new_tokens": 8,
    }
    assert client.post(f"/models/{model['id']}/generate", json=chat).status_code == 200
    # Greedy decoding is deterministic, and the model was loaded once.
    assert (
        client.post(f"/models/{model['id']}/generate", json=prompt).json()["text"] == body["text"]
    )
    assert app.state.models.loads == 1
    report = client.get(f"/runs/{run_id}/report")
    assert report.status_code == 200 and "rougeL" in report.json()["markdown"]
    files = {a["path"] for a in client.get(f"/runs/{run_id}/artifacts").json()["data"]}
    assert {"config.json", "final/model.safetensors"} <= files
    card = client.get(f"/runs/{run_id}/artifacts/final/README.md")
    assert card.status_code == 200 and run_id in card.text
