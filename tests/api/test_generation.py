"""`POST /models/{id}/generate`: a `prompt` is put through the chat template of a chat model,
as its training data was, unless `raw` asks for the text as it is."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.generation import uses_chat_template
from api.schemas import GenerateRequest

PROMPT = "Anna is 31 and lives in Oslo."


def _generate(client: TestClient, model_id: str, **body) -> dict:
    response = client.post(f"/models/{model_id}/generate", json={"max_new_tokens": 6, **body})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_prompt_is_answered_as_a_chat_turn_by_default(client_and_model, tiny_model_dir) -> None:
    from transformers import AutoTokenizer

    client, model_id = client_and_model
    templated = _generate(client, model_id, prompt=PROMPT)
    as_chat = _generate(client, model_id, messages=[{"role": "user", "content": PROMPT}])
    assert templated["chat_template"] is True
    assert (templated["text"], templated["prompt_tokens"]) == (
        as_chat["text"],
        as_chat["prompt_tokens"],
    )
    raw = _generate(client, model_id, prompt=PROMPT, raw=True)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert raw["chat_template"] is False
    assert raw["prompt_tokens"] == len(tokenizer(PROMPT)["input_ids"]) < templated["prompt_tokens"]


def test_raw_goes_with_prompt_only(client_and_model) -> None:
    client, model_id = client_and_model
    body = {"messages": [{"role": "user", "content": PROMPT}], "raw": True}
    response = client.post(f"/models/{model_id}/generate", json=body)
    assert response.status_code == 422
    assert "'raw' applies to 'prompt'" in response.text


def test_a_model_tuned_on_plain_prompts_gets_the_prompt_as_it_is(tiny_model_dir) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    request = GenerateRequest(prompt=PROMPT)
    assert uses_chat_template(request, tokenizer, trained_on="chat")
    assert uses_chat_template(request, tokenizer, trained_on=None)
    assert not uses_chat_template(request, tokenizer, trained_on="prompt_completion")
    assert uses_chat_template(GenerateRequest(prompt=PROMPT, raw=False), tokenizer, "text")


def test_a_model_whose_files_are_gone_or_damaged_is_a_409(client_and_model, tmp_path) -> None:
    import shutil
    from pathlib import Path

    client, model_id = client_and_model
    store = client.app.state.service.store
    original = Path(store.get_model(model_id=model_id).path)
    said = {"gone": "model path not found", "truncated": "the file is truncated or corrupt"}
    for damage, reason in said.items():
        copy = shutil.copytree(original, tmp_path / damage)
        damaged = store.register_model(run_id=None, path=str(copy), base_model="tiny").id
        if damage == "gone":
            shutil.rmtree(copy)
        else:
            weights = copy / "model.safetensors"
            weights.write_bytes(weights.read_bytes()[:1000])
        response = client.post(f"/models/{damaged}/generate", json={"prompt": PROMPT})
        assert response.status_code == 409, response.text
        detail = response.json()["detail"]
        assert detail.startswith(f"model '{damaged}' cannot be loaded: ") and reason in detail
