"""The local generation agent: a registered model, loaded once, answering prompts.

Models stay in memory after their first request (the `capacity` most recently used ones),
each with its `GenerationBatcher`: concurrent requests for a model are answered together, in
batches (`api.generation_batching`), by one thread at a time, since a model is not safe to
share across threads mid-generation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from api.generation_batching import DEFAULT_MAX_BATCH, DEFAULT_WINDOW_SECONDS, GenerationBatcher
from api.schemas import GenerateRequest
from models.generation import context_window, encode_prompt, has_chat_template, render_chat
from models.prompt_artifact import PromptArtifact, apply_to_messages, apply_to_text


class ModelCache:
    """Loaded models by model id, each with its batcher (which holds the model and
    tokenizer), least recently used evicted first."""

    def __init__(
        self,
        *,
        cache_dir: Any,
        capacity: int = 2,
        batch_window_seconds: float = DEFAULT_WINDOW_SECONDS,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        self.cache_dir = cache_dir
        self.capacity = capacity
        self.batch_window_seconds = batch_window_seconds
        """How long a model's batcher waits for more requests to join a batch."""
        self.max_batch = max_batch
        """The most requests one generation call answers."""
        self.loads = 0
        """How many times a model was loaded from disk (a cache miss)."""
        self._entries: OrderedDict[str, GenerationBatcher] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_id: str, path: str) -> GenerationBatcher:
        """The loaded model for `model_id` (its batcher), loading it from `path` the first
        time. An evicted model's batcher still answers the requests it holds."""
        with self._lock:
            entry = self._entries.get(model_id)
            if entry is None:
                from models import load_model_and_tokenizer

                model, tokenizer = load_model_and_tokenizer(
                    path, cache_dir=self.cache_dir, for_generation=True
                )
                entry = GenerationBatcher(
                    model,
                    tokenizer,
                    window_seconds=self.batch_window_seconds,
                    max_batch=self.max_batch,
                )
                self.loads += 1
                self._entries[model_id] = entry
                while len(self._entries) > self.capacity:
                    self._entries.popitem(last=False)
            self._entries.move_to_end(model_id)
            return entry


class GenerationInputError(ValueError):
    """A request this model cannot answer as asked (a 422)."""


class GenerationTooLong(GenerationInputError):
    """Prompt plus `max_new_tokens` exceed the model's context window."""


PLAIN_TEXT_KINDS = ("prompt_completion", "preference", "text")
"""Data kinds TRL trains on as raw text, without the chat template."""


def uses_chat_template(request: GenerateRequest, tokenizer: Any, trained_on: str | None) -> bool:
    """Whether the input goes through the chat template: always for `messages`; for a `prompt`
    as `raw` says, else as the model was trained (`trained_on`: its data kind, if known)."""
    if request.messages is not None:
        return True
    if request.raw is not None:
        return not request.raw
    return has_chat_template(tokenizer) and trained_on not in PLAIN_TEXT_KINDS


def model_input(
    request: GenerateRequest, tokenizer: Any, templated: bool, prompt: PromptArtifact | None = None
) -> str:
    """The text the model sees: the prompt as is, or the chat rendered with the template;
    a prompt artifact's system prompt and exemplars go before it."""
    if not templated:
        return apply_to_text(prompt, request.prompt or "")
    if not has_chat_template(tokenizer):
        raise GenerationInputError(
            "the model's tokenizer has no chat template: send a 'prompt' with \"raw\": true"
        )
    if request.messages is not None:
        messages = [m.model_dump() for m in request.messages]
    else:
        messages = [{"role": "user", "content": request.prompt or ""}]
    return render_chat(tokenizer, apply_to_messages(prompt, messages))


def generate(
    batcher: GenerationBatcher,
    request: GenerateRequest,
    *,
    trained_on: str | None = None,
    prompt: PromptArtifact | None = None,
) -> dict[str, Any]:
    """Generate an answer: `{text, prompt_tokens, completion_tokens, chat_template}`.

    `trained_on` is the kind of data the model was fine-tuned on (`chat`, `prompt_completion`,
    ...): a `prompt` is templated the same way the trainer formatted its examples. `prompt`
    (a prompt artifact) puts its system prompt and exemplars before the input. A request the
    model cannot answer raises `GenerationInputError` before it joins a batch.
    """
    model, tokenizer = batcher.model, batcher.tokenizer
    templated = uses_chat_template(request, tokenizer, trained_on)
    text = model_input(request, tokenizer, templated, prompt)
    ids = encode_prompt(tokenizer, text, templated=templated)
    _check_fits(len(ids), request.max_new_tokens, context_window(model))
    completion = batcher.complete(ids, request)
    return {
        "text": completion.text,
        "prompt_tokens": len(ids),
        "completion_tokens": len(completion.ids) + int(completion.ended),  # the end token counts
        "chat_template": templated,
    }


def _check_fits(prompt_tokens: int, max_new_tokens: int, window: int | None) -> None:
    if window is not None and prompt_tokens + max_new_tokens > window:
        raise GenerationTooLong(
            f"the prompt has {prompt_tokens} tokens and max_new_tokens is {max_new_tokens}, "
            f"but the model's context window is {window} tokens: shorten one of them"
        )
    if prompt_tokens == 0:
        raise GenerationTooLong("the prompt is empty after tokenization")


def record_generation(
    service: Any,
    model_id: str,
    request: GenerateRequest,
    result: dict[str, Any],
    *,
    version: dict[str, Any] | None = None,
) -> str:
    """Store a served answer as an interaction; its id (the generation id). `version` says
    which model and prompt answered (kind, sha256, base model) and `result` carries the
    tokens and `latency_seconds`."""
    from llmfinetune_agent.feedback_store import FeedbackStore

    messages = [m.model_dump() for m in request.messages] if request.messages else None
    prompt = request.prompt or next(
        (m["content"] for m in reversed(messages or []) if m["role"] == "user"), ""
    )
    kept = ("prompt_tokens", "completion_tokens", "chat_template", "latency_seconds")
    details = {**(version or {}), **{k: result[k] for k in kept if k in result}}
    return FeedbackStore(service.store.database_url).record_interaction(
        model_id=model_id,
        source="api",
        prompt=prompt,
        output=result["text"],
        messages=messages,
        details=details,
    )
