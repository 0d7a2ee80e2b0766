"""LangGraph's own client, `langgraph-sdk`, against a running `finetune-agent serve`: it finds
the run waiting at a gate, reads LangChain's HITL request in the interrupt, answers it with
`runs.wait(..., command={"resume": ...})`, and a second answer to the same gate is refused."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.api.conftest import serve_process, small_config, wait_for_status

KEY = "sdk-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("lg-serve")
    with serve_process(tmp / "home", tmp / "serve.log", FINETUNE_AGENT_API_KEY=KEY) as url:
        yield url


def _start_waiting_run(url: str, name: str) -> str:
    config = small_config(name)
    config["data"]["train"] = "data/quickstart/train.jsonl"  # relative to the data root
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as api:
        created = api.post("/runs", json=config)
        assert created.status_code == 202, created.text
        run_id = created.json()["id"]
        wait_for_status(api, run_id, ("awaiting_approval",), timeout=240)
    return run_id


@pytest.mark.slow  # a serve process and a run to its second gate: about 30 s
def test_sdk_lists_answers_and_refuses_a_second_answer(server: str) -> None:
    from langgraph_sdk import get_sync_client

    run_id = _start_waiting_run(server, "sdk")
    client = get_sync_client(url=server, api_key=KEY)

    assert client.assistants.search(graph_id="finetune_agent")[0]["graph_id"] == "finetune_agent"
    waiting = client.threads.search(status="interrupted", metadata={"graph_id": "finetune_agent"})
    assert [t["thread_id"] for t in waiting] == [run_id]
    (interrupts,) = waiting[0]["interrupts"].values()
    plan = interrupts[0]
    assert plan["value"]["kind"] == "approve_plan"
    request = plan["value"]["action_requests"][0]
    assert request["name"] == "approve_plan" and request["args"] == {"edits": {}}
    assert "steps" in request["description"] and plan["value"]["summary"]["steps"] > 0
    assert plan["value"]["review_configs"] == [
        {"action_name": "approve_plan", "allowed_decisions": ["approve", "reject", "edit"]}
    ]
    assert client.threads.search(status="idle") == []

    state = client.threads.get_state(run_id)
    assert state["next"] == ["gate_plan"]
    assert [i["id"] for i in state["interrupts"]] == [plan["id"]]
    assert state["values"]["config"]["name"] == "sdk"

    # LangChain's HITL answer, through runs.wait: the run goes on to the data gate.
    output = client.runs.wait(
        run_id,
        "finetune_agent",
        command={"resume": {"decisions": [{"type": "approve"}]}},
    )
    (next_gate,) = output["__interrupt__"]
    assert next_gate["value"]["kind"] == "approve_data"
    assert [d["gate"] for d in output["decisions"]] == ["approve_plan"]

    # The same gate again, named by its interrupt id: refused, and nothing changed.
    with pytest.raises(httpx.HTTPStatusError) as refused:
        client.runs.wait(
            run_id, "finetune_agent", command={"resume": {plan["id"]: {"decision": "approve"}}}
        )
    assert refused.value.response.status_code == 409
    said = refused.value.response.json()["detail"]
    assert "already answered" in said or "no longer pending" in said, said
    after = client.threads.get_state(run_id)
    assert [i["value"]["kind"] for i in after["interrupts"]] == ["approve_data"]

    # An invalid edit is refused with the field named; the gate keeps waiting.
    with pytest.raises(httpx.HTTPStatusError) as invalid:
        client.runs.create(
            run_id,
            "finetune_agent",
            command={
                "resume": {
                    "decisions": [
                        {
                            "type": "edit",
                            "edited_action": {
                                "name": "approve_data",
                                "args": {"edits": {"training": {"learning_rate": -1}}},
                            },
                        }
                    ]
                }
            },
        )
    assert invalid.value.response.status_code == 422
    assert "learning_rate" in invalid.value.response.text
    assert client.threads.get(run_id)["status"] == "interrupted"

    # Agent Inbox's own answer, through runs.create: a pending run; then it is listed.
    answer = client.runs.create(
        run_id, "finetune_agent", command={"resume": [{"type": "response", "args": "wrong"}]}
    )
    assert answer["status"] in ("pending", "running", "success")
    assert client.runs.get(run_id, answer["run_id"])["metadata"]["decision"] == "reject"
    assert len(client.runs.list(run_id)) == 2
    joined = client.runs.join(run_id, answer["run_id"])
    assert joined["outcome"] == "cancelled" and "wrong" in joined["reason"]
    assert client.threads.get(run_id)["status"] == "idle"


def test_cors_lets_a_configured_origin_call_the_api(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from llmfinetune_agent.settings import Settings

    settings = Settings.from_env()
    allowed = "https://inbox.example.com"
    app = create_app(Settings(**{**vars(settings), "cors_origins": [allowed]}), workers=False)
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key,content-type",
    }
    with TestClient(app) as c:
        ok = c.options("/threads/search", headers={"Origin": allowed, **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == allowed
        other = c.options(
            "/threads/search", headers={"Origin": "https://evil.example", **preflight}
        )
        assert "access-control-allow-origin" not in other.headers
        listed = c.post("/threads/search", json={}, headers={"Origin": allowed})
        assert listed.json() == [] and listed.headers["access-control-allow-origin"] == allowed
    with TestClient(create_app(settings, workers=False)) as c:  # no setting: no CORS at all
        closed = c.options("/threads/search", headers={"Origin": allowed, **preflight})
        assert "access-control-allow-origin" not in closed.headers


def test_cors_origins_setting_is_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmfinetune_agent.settings import Settings, SettingsError

    monkeypatch.setenv("FINETUNE_AGENT_CORS_ORIGINS", "https://a.example, http://localhost:3000/")
    assert Settings.from_env().cors_origins == ["https://a.example", "http://localhost:3000"]
    monkeypatch.setenv("FINETUNE_AGENT_CORS_ORIGINS", "inbox.example.com")
    with pytest.raises(SettingsError, match="FINETUNE_AGENT_CORS_ORIGINS: 'inbox.example.com'"):
        Settings.from_env()
