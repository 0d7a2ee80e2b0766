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


class GenerationTooLong(ValueError):
    """Prompt plus `max_new_tokens` exceed the model's context window."""


def generate(model: Any, tokenizer: Any, request: GenerateRequest) -> dict[str, Any]:
    """Generate a continuation: `{text, prompt_tokens, completion_tokens}`."""
    import torch

    if request.messages is not None:
        messages = [m.model_dump() for m in request.messages]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        text = request.prompt or ""
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=request.messages is None)
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
    }
