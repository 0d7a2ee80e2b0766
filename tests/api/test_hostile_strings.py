"""Bad input that used to be a 500 or to stall the server: each is now a 413 or a 422 that
names the field (issue 13). The whole corpus, over real HTTP: tests/reliability."""

from __future__ import annotations

import dataclasses
import json

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.conftest import small_config


@pytest.fixture
def client(settings):
    limited = dataclasses.replace(settings, max_json_bytes=100_000)
    with TestClient(create_app(limited, workers=False, upload_limit_bytes=1000)) as c:
        yield c


def _locs(response) -> list[list]:
    return [d["loc"] for d in response.json()["detail"]]


def test_a_body_over_the_limit_is_413_before_it_is_read(client) -> None:
    too_big = client.post("/runs", json={"name": "x" * 200_000})
    assert too_big.status_code == 413
    assert "100000 bytes" in too_big.json()["detail"] and "POST /data" in too_big.json()["detail"]
    chunked = client.post("/runs", content=iter([b"[" + b"0," * 30_000] * 3))
    assert chunked.status_code == 413
    assert client.post("/data?filename=a.jsonl", content=b"x" * 2000).status_code == 413


def test_too_many_json_values_are_refused_without_validating_them(client) -> None:
    config = small_config()
    config["knowledge"]["sources"] = [0] * 20_000
    answer = client.post("/runs", json=config)
    assert answer.status_code == 422
    (issue,) = answer.json()["detail"]
    assert issue["type"] == "json_too_complex" and "10000 values" in issue["msg"]


def test_a_validation_error_shows_an_excerpt_not_the_input(client) -> None:
    config = small_config()
    config["training"]["epochs"] = "e" * 50_000
    answer = client.post("/runs", json=config)
    assert answer.status_code == 422
    assert len(answer.content) < 5_000


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("model", "name_or_path", "org/mo\x00del"),  # a hub id, not a local path
        ("data", "train", "data/\ud800.jsonl"),  # a lone surrogate
        ("data", "train", "x" * 300 + ".jsonl"),  # a name longer than 255 bytes
    ],
)
def test_unfit_path_strings_are_422_naming_the_field(client, section, field, value) -> None:
    config = small_config()
    config[section][field] = value
    answer = client.post(
        "/runs", content=json.dumps(config), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert ["body", section, field] in _locs(answer)


def test_nul_in_urls_and_uploads_is_422_naming_the_field(client) -> None:
    assert _locs(client.get("/runs/a%00b")) == [["path", "run_id"]]
    assert _locs(client.get("/models/a%00b")) == [["path", "model_id"]]
    assert _locs(client.post("/data?filename=a%00.jsonl", content=b"{}")) == [["query", "filename"]]
    run_id = client.post("/runs", json=small_config()).json()["id"]
    answer = client.get(f"/runs/{run_id}/artifacts/a%00b")
    assert answer.status_code == 422 and _locs(answer) == [["path", "path"]]


def test_the_listing_shows_only_what_can_be_downloaded(client, settings, tmp_path) -> None:
    run = client.post("/runs", json=small_config()).json()
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    (settings.runs_dir / run["id"] / "leak").symlink_to(secret)
    listed = [a["path"] for a in client.get(f"/runs/{run['id']}/artifacts").json()["data"]]
    assert "config.json" in listed and "leak" not in listed
    assert client.get(f"/runs/{run['id']}/artifacts/leak").status_code == 404


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ({"headers": {"Last-Event-ID": b"\xb2"}}, "²"),  # str.isdigit('²') is True
        ({"headers": {"Last-Event-ID": str(2**63)}}, "2^63"),
        ({"params": {"after": 2**63}}, "2^63"),
        ({"params": {"after": 2**31}}, "2^31: past run_events.seq on PostgreSQL"),
    ],
)
def test_event_positions_out_of_range_are_422(client, where, value) -> None:
    run_id = client.post("/runs", json=small_config()).json()["id"]
    answer = client.get(f"/runs/{run_id}/events", **where)
    assert answer.status_code == 422, value
    assert _locs(answer)[0][0] in ("header", "query")


@pytest.mark.parametrize(
    ("route", "body", "where"),
    [
        ("/chats", '{"model": "builtin:tiny-llama", "temperature": NaN}', "temperature"),
        ("/chats", '{"model": "builtin:tiny-llama", "temperature": 1e999}', "temperature"),
        ("/generations/g1/feedback", '{"rating": Infinity}', "rating"),
        ("/generations/g1/feedback", '{"rating": "up", "comment": 5, "x": "a\\ud800"}', "x"),
    ],
)
def test_non_json_numbers_and_lone_surrogates_are_422_not_500(client, route, body, where):
    # Python's JSON reader takes NaN, Infinity and lone surrogates; JSON itself (and so the
    # answer that echoes the input) has no room for them.
    answer = client.post(route, content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert any(loc[-1] == where for loc in _locs(answer)), answer.json()


def test_feedback_with_a_nul_byte_is_422(client) -> None:
    # It would become a training row (feedback export), and PostgreSQL cannot store a NUL.
    answer = client.post("/generations/g1/feedback", json={"rating": "up", "better": "a\x00b"})
    assert answer.status_code == 422, answer.text
    assert _locs(answer) == [["body", "better"]]
