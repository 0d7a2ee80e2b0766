"""A registered prompt (what a prompt run produces) served by `POST /models/{id}/generate` and
the chat adapter: its system prompt and exemplars go before the input, the base model's
weights answer, and each answer is an interaction recording which model and prompt version
served it, with tokens and latency."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from llmfinetune_agent.chat.config import ChatConfig
from llmfinetune_agent.chat.interactions import read_chat_turns
from llmfinetune_agent.chat.models import resolve_chat_model
from llmfinetune_agent.chat.service import ChatService
from llmfinetune_agent.checkpointing import open_checkpointer
from llmfinetune_agent.feedback_store import FeedbackStore
from models.prompt_artifact import (
    Exemplar,
    PromptArtifact,
    apply_to_messages,
    write_prompt_artifact,
)

QUESTION = "Bo is 31 and lives in Oslo."


def _prompt(model_dir: Path, folder: Path) -> tuple[PromptArtifact, Path]:
    prompt = PromptArtifact(
        model=str(model_dir),
        system_prompt="Answer with JSON only.",
        exemplars=[Exemplar(input="Ana is 30.", output='{"name": "Ana", "age": 30}')],
        base_prompt="Turn it into JSON.",
    )
    return prompt, write_prompt_artifact(prompt, folder / "prompt.json")


@pytest.fixture
def served(settings, tiny_model_dir, tmp_path):
    prompt, path = _prompt(tiny_model_dir, tmp_path)
    with TestClient(create_app(settings, workers=False)) as client:
        store = client.app.state.service.store
        plain = store.register_model(run_id=None, path=str(tiny_model_dir), base_model="tiny")
        registered = store.register_model(
            run_id=None,
            path=str(path),
            base_model=str(tiny_model_dir),
            lineage={"kind": "prompt", "format": "prompt", "sha256": "abc123"},
        )
        yield client, prompt, plain.id, registered.id


def test_generate_puts_the_prompt_and_exemplars_before_the_input(served, tiny_model_dir) -> None:
    from transformers import AutoTokenizer

    client, prompt, plain_id, prompt_id = served
    body = {"prompt": QUESTION, "max_new_tokens": 4}
    with_prompt = client.post(f"/models/{prompt_id}/generate", json=body)
    without = client.post(f"/models/{plain_id}/generate", json=body)
    assert with_prompt.status_code == 200, with_prompt.text

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = apply_to_messages(prompt, [{"role": "user", "content": QUESTION}])
    expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    expected_tokens = len(tokenizer(expected, add_special_tokens=False)["input_ids"])
    assert with_prompt.json()["prompt_tokens"] == expected_tokens
    assert expected_tokens > without.json()["prompt_tokens"]

    store = FeedbackStore(client.app.state.service.store.database_url)
    served_row = store.get_interaction(interaction_id=with_prompt.json()["generation_id"])
    assert served_row["model_id"] == prompt_id and served_row["prompt"] == QUESTION
    details = served_row["details"]
    assert details["kind"] == "prompt" and details["sha256"] == "abc123"
    assert details["base_model"] == str(tiny_model_dir)
    assert details["prompt_tokens"] == expected_tokens and details["latency_seconds"] > 0


def test_a_broken_prompt_file_is_a_clear_error(served, tmp_path) -> None:
    client, _, _, prompt_id = served
    (tmp_path / "prompt.json").write_text("{not json")
    response = client.post(f"/models/{prompt_id}/generate", json={"prompt": "hi"})
    assert response.status_code == 422
    assert "cannot read it as JSON" in response.json()["detail"]


def test_the_chat_adapter_opens_with_the_prompt_and_its_exemplars(
    settings, tiny_model_dir, tmp_path
) -> None:
    from llmfinetune_agent.run_store import RunStore

    settings.ensure_dirs()
    prompt, path = _prompt(tiny_model_dir, tmp_path)
    store = RunStore(settings.database_url)
    registered = store.register_model(
        run_id=None, path=str(path), base_model="tiny", lineage={"kind": "prompt"}
    )
    resolved = resolve_chat_model(registered.id, store=store, cache_dir=tmp_path)
    assert resolved.path == str(tiny_model_dir)
    assert resolved.artifact_prompt == prompt.system_prompt
    assert resolved.exemplars == ({"input": "Ana is 30.", "output": '{"name": "Ana", "age": 30}'},)

    with open_checkpointer(settings.database_url) as saver:
        chats = ChatService(settings, saver, store=store)
        chat = chats.create_chat(ChatConfig(model=registered.id, max_new_tokens=4))
        events = list(chats.send(chat["id"], QUESTION))
    assert [e.kind for e in events][-2:] == ["message", "done"], events
    [turn] = read_chat_turns(settings)
    assert turn["model"] == registered.id and turn["input"] == QUESTION
    assert turn["input_tokens"] > 0 and turn["completion_tokens"] >= 0 and turn["seconds"] > 0
    assert len(turn["prompt_version"]) == 12  # the prompt applied is on record


def test_a_prompt_artifact_over_a_registered_prompt_is_refused(served, tmp_path) -> None:
    """Its inner prompt was dropped silently: only the outer one reached the model."""
    from llmfinetune_agent.chat.models import ChatModelUnavailable

    client, _, _, prompt_id = served
    outer = write_prompt_artifact(
        PromptArtifact(model=prompt_id, system_prompt="OUTER"), tmp_path / "outer.json"
    )
    store = client.app.state.service.store
    with pytest.raises(ChatModelUnavailable, match=f"'{prompt_id}' is a registered prompt"):
        resolve_chat_model(str(outer), store=store, cache_dir=tmp_path / "cache")
