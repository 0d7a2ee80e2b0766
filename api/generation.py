"""The local generation agent: a registered model, loaded once, answering prompts.

Models stay in memory after their first request (the `capacity` most recently used ones);
one lock per model serializes `generate` calls, since a model is not safe to share across
threads mid-generation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from api.schemas import GenerateRequest


class ModelCache:
    """Loaded (model, tokenizer) pairs by model id, least recently used evicted first."""

    def __init__(self, *, cache_dir: Any, capacity: int = 2) -> None:
        self.cache_dir = cache_dir
        self.capacity = capacity
        self.loads = 0
        """How many times a model was loaded from disk (a cache miss)."""
        self._entries: OrderedDict[str, tuple[Any, Any, threading.Lock]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_id: str, path: str) -> tuple[Any, Any, threading.Lock]:
        """The loaded model for `model_id`, loading it from `path` the first time."""
        with self._lock:
            entry = self._entries.get(model_id)
            if entry is None:
                from models import load_model_and_tokenizer

                model, tokenizer = load_model_and_tokenizer(
                    path, cache_dir=self.cache_dir, for_generation=True
                )
                entry = (model, tokenizer, threading.Lock())
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
    has_template = bool(getattr(tokenizer, "chat_template", None))
    return has_template and trained_on not in PLAIN_TEXT_KINDS


def model_input(request: GenerateRequest, tokenizer: Any, templated: bool) -> str:
    """The text the model sees: the prompt as is, or the chat rendered with the template."""
    if not templated:
        return request.prompt or ""
    if not getattr(tokenizer, "chat_template", None):
        raise GenerationInputError(
            "the model's tokenizer has no chat template: send a 'prompt' with \"raw\": true"
        )
    if request.messages is not None:
        messages = [m.model_dump() for m in request.messages]
    else:
        messages = [{"role": "user", "content": request.prompt or ""}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def generate(
    model: Any, tokenizer: Any, request: GenerateRequest, *, trained_on: str | None = None
) -> dict[str, Any]:
    """Generate an answer: `{text, prompt_tokens, completion_tokens, chat_template}`.

    `trained_on` is the kind of data the model was fine-tuned on (`chat`, `prompt_completion`,
    ...): a `prompt` is templated the same way the trainer formatted its examples.
    """
    import torch

    templated = uses_chat_template(request, tokenizer, trained_on)
    text = model_input(request, tokenizer, templated)
    # A rendered template already holds the special tokens (BOS) it wants.
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=not templated)
    prompt_len = inputs["input_ids"].shape[1]
    window = getattr(model.config, "max_position_embeddings", None)
    if window is not None and prompt_len + request.max_new_tokens > window:
        raise GenerationTooLong(
            f"the prompt has {prompt_len} tokens and max_new_tokens is {request.max_new_tokens}, "
            f"but the model's context window is {window} tokens: shorten one of them"
        )
    if prompt_len == 0:
        raise GenerationTooLong("the prompt is empty after tokenization")
    if request.seed is not None:
        torch.manual_seed(request.seed)
    sampling: dict[str, Any] = {"do_sample": request.do_sample}
    if request.do_sample:
        sampling.update(temperature=request.temperature, top_p=request.top_p, top_k=request.top_k)
    with torch.no_grad():
        output = model.generate(
            **inputs.to(model.device),
            max_new_tokens=request.max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            **sampling,
        )
    new_tokens = output[0, prompt_len:]
    return {
        "text": tokenizer.decode(new_tokens, skip_special_tokens=True),
        "prompt_tokens": int(prompt_len),
        "completion_tokens": int(new_tokens.shape[0]),
        "chat_template": templated,
    }
