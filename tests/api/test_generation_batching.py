"""`POST /models/{id}/generate` under concurrent requests: greedy requests for the same model
are answered together by one generation call, each with the answer it gets alone; a sampling
request runs alone; a request the model cannot answer fails alone.

The batcher here waits long for a full batch (`max_batch` requests), so which requests share
a call does not depend on timing."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from api.generation import ModelCache
from api.generation_batching import GenerationBatcher
from api.main import create_app
from api.schemas import GenerateRequest
from models import load_model_and_tokenizer

PROMPTS = [
    "Anna is 31 and lives in Oslo.",
    "Ben is 45 and lives in Lima.",
    "Cleo is 27 and lives in Kyoto, near the river.",
    "Dan is 60.",
]
WAIT_FOR_FULL_BATCH = 30.0  # seconds: longer than any test takes to send its requests


def _post(client: TestClient, model_id: str, body: dict):
    return client.post(f"/models/{model_id}/generate", json=body)


def _answer(response) -> dict:
    assert response.status_code == 200, response.text
    kept = ("text", "prompt_tokens", "completion_tokens", "chat_template")
    return {k: response.json()[k] for k in kept}


def _batched(client: TestClient, max_batch: int) -> ModelCache:
    """A fresh model cache whose batchers answer `max_batch` requests per call."""
    cache = ModelCache(
        cache_dir=client.app.state.settings.models_cache_dir,
        batch_window_seconds=WAIT_FOR_FULL_BATCH,
        max_batch=max_batch,
    )
    client.app.state.models = cache
    return cache


def _concurrently(client: TestClient, model_id: str, bodies: list[dict]) -> list:
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda body: _post(client, model_id, body), bodies))


def _batcher(cache: ModelCache, model_id: str, path) -> GenerationBatcher:
    return cache.get(model_id, str(path))  # loaded by the requests: no load here


def test_concurrent_greedy_requests_share_one_call_and_keep_their_answers(
    client_and_model, tiny_model_dir
) -> None:
    client, model_id = client_and_model
    bodies = [
        {"prompt": PROMPTS[0], "max_new_tokens": 3},
        {"prompt": PROMPTS[1], "max_new_tokens": 12},
        {"messages": [{"role": "user", "content": PROMPTS[2]}], "max_new_tokens": 7},
        {"prompt": PROMPTS[3], "raw": True, "max_new_tokens": 12, "seed": 5},
    ]
    alone = [_answer(_post(client, model_id, body)) for body in bodies]
    cache = _batched(client, max_batch=len(bodies))

    together = [_answer(r) for r in _concurrently(client, model_id, bodies)]

    assert together == alone
    assert [a["completion_tokens"] for a in together][0] == 3  # cut at its own limit
    batcher = _batcher(cache, model_id, tiny_model_dir)
    assert (batcher.calls, batcher.batch_sizes) == (1, {4: 1})
    assert cache.loads == 1


def test_a_sampling_request_runs_alone(client_and_model, tiny_model_dir) -> None:
    client, model_id = client_and_model
    sampled = {"prompt": PROMPTS[0], "max_new_tokens": 8, "do_sample": True, "seed": 3}
    greedy = [{"prompt": p, "max_new_tokens": 8} for p in PROMPTS[1:3]]
    sampled_alone = _answer(_post(client, model_id, sampled))
    cache = _batched(client, max_batch=2)

    responses = _concurrently(client, model_id, [greedy[0], sampled, greedy[1]])

    assert _answer(responses[1]) == sampled_alone  # its seed still reproduces it
    batcher = _batcher(cache, model_id, tiny_model_dir)
    assert (batcher.calls, batcher.batch_sizes) == (2, {2: 1, 1: 1})


def test_a_request_too_long_for_the_model_fails_alone(client_and_model, tiny_model_dir) -> None:
    client, model_id = client_and_model
    good = [{"prompt": p, "max_new_tokens": 6} for p in PROMPTS[:2]]
    too_long = {"prompt": PROMPTS[2], "max_new_tokens": 1024}  # past the 1024-token window
    alone = [_answer(_post(client, model_id, body)) for body in good]
    cache = _batched(client, max_batch=2)

    responses = _concurrently(client, model_id, [good[0], too_long, good[1]])

    assert responses[1].status_code == 422
    assert "context window is 1024 tokens" in responses[1].text
    assert [_answer(responses[0]), _answer(responses[2])] == alone
    assert _batcher(cache, model_id, tiny_model_dir).batch_sizes == {2: 1}


def test_the_batch_limits_come_from_the_settings(settings) -> None:
    settings = dataclasses.replace(settings, generation_max_batch=3, generation_batch_window_ms=20)
    with TestClient(create_app(settings, workers=False)) as client:
        cache = client.app.state.models
        assert (cache.max_batch, cache.batch_window_seconds) == (3, 0.02)


def test_a_batch_that_fails_is_answered_again_one_by_one(tiny_model_dir, tmp_path) -> None:
    """A prompt the model cannot embed (a token id past its vocabulary) fails the whole
    generate call; the batch is then answered request by request, so only that one fails."""
    model, tokenizer = load_model_and_tokenizer(
        str(tiny_model_dir), cache_dir=tmp_path, for_generation=True
    )
    prompts = [tokenizer(text)["input_ids"] for text in PROMPTS[:2]]
    broken = [model.config.vocab_size + 7]
    request = GenerateRequest(prompt="-", max_new_tokens=5)
    alone = GenerationBatcher(model, tokenizer)
    expected = [alone.complete(ids, request) for ids in prompts]
    batcher = GenerationBatcher(model, tokenizer, window_seconds=WAIT_FOR_FULL_BATCH, max_batch=3)

    with ThreadPoolExecutor(3) as pool:
        futures = [
            pool.submit(batcher.complete, ids, request) for ids in [prompts[0], broken, prompts[1]]
        ]
        assert [futures[0].result(), futures[2].result()] == expected
        with pytest.raises(IndexError):
            futures[1].result()
    assert (batcher.calls, batcher.batch_sizes) == (2, {1: 2})  # the failed call of 3 not counted
