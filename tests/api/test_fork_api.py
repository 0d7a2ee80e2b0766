"""`GET /runs/{id}/history` and `POST /runs/{id}/fork` over HTTP (no workers: nothing trains)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.main import create_app
from llmfinetune_agent.config import parse_run_config
from llmfinetune_agent.execution import open_service
from tests.api.conftest import small_config


def test_history_and_fork(settings) -> None:
    with open_service(settings) as service:
        parent = service.create_run(parse_run_config(small_config("fork-api")))
        assert service.start(parent.id).status == "awaiting_approval"  # at the plan gate
    with TestClient(create_app(settings, workers=False)) as client:
        history = client.get(f"/runs/{parent.id}/history").json()
        assert history["count"] == len(history["data"]) >= 3
        at_plan = next(c for c in history["data"] if c["next"] == ["gate_plan"])
        assert client.get("/runs/nope/history").status_code == 404

        url = f"/runs/{parent.id}/fork"
        assert client.post(url, json={"checkpoint_id": "ffff"}).status_code == 404
        ids = [c["checkpoint_id"] for c in history["data"]]
        shared = next(  # a prefix several checkpoints start with (they share a time prefix)
            i[:n]
            for n in range(12, 0, -1)
            for i in ids
            if sum(j.startswith(i[:n]) for j in ids) > 1
        )
        ambiguous = client.post(url, json={"checkpoint_id": shared})
        assert ambiguous.status_code == 422 and "is ambiguous" in ambiguous.text
        assert ambiguous.json()["detail"][0]["loc"] == ["body", "checkpoint_id"]
        bad = client.post(
            url,
            json={"checkpoint_id": at_plan["checkpoint_id"], "patch": {"training": {"epochs": -1}}},
        )
        assert bad.status_code == 422, bad.text
        assert bad.json()["detail"][0]["loc"] == ["body", "patch", "training", "epochs"]
        outside = client.post(
            url,
            json={
                "checkpoint_id": at_plan["checkpoint_id"],
                "patch": {"data": {"train": "/etc/passwd"}},
            },
        )
        assert outside.status_code == 422

        patch = {"training": {"learning_rate": 0.0001}}
        made = client.post(url, json={"checkpoint_id": at_plan["checkpoint_id"], "patch": patch})
        assert made.status_code == 202, made.text
        child = client.get(f"/runs/{made.json()['id']}").json()
        assert child["parent_run_id"] == parent.id and child["status"] == "queued"
        assert client.get(f"/runs/{parent.id}").json()["status"] == "awaiting_approval"
