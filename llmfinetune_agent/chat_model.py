"""Chat models for the agents: a langchain-core `BaseChatModel` over any model `models/` loads,
or any langchain-core chat model the user configures (e.g. an OpenAI-compatible endpoint).

    chat = LocalChatModel(local_model=ModelConfig(name_or_path="builtin:tiny-llama"))
    chat.invoke("Hello").content
    chat.batch([...], temperature=0.9)   # one batched `generate` for all prompts

`batch` on the local model renders and generates the prompts together (left padding) instead
of one thread per prompt; it does not fire per-prompt callbacks.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field, PrivateAttr

from llmfinetune_agent.config import RunConfig
from models.config import ModelConfig
from models.generation import (
    context_window,
    encode_prompt,
    generate_completions,
    has_chat_template,
    render_chat,
)

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "user"}


class ChatModelError(ValueError):
    """A configured chat model that cannot be imported or built; the message says what to do."""


class LocalChatModel(BaseChatModel):
    """Sampling chat replies from a local causal LM, with the tokenizer's chat template."""

    local_model: ModelConfig = Field(description="The model to load (as in a run config).")
    cache_dir: str | None = Field(None, description="Where built-in or imported models are cached.")
    max_new_tokens: int = Field(160, gt=0, description="Tokens written per reply at most.")
    temperature: float = Field(0.8, gt=0, description="Default sampling temperature.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass.")
    batch_size: int = Field(8, gt=0, description="Prompts generated together.")

    _loaded: tuple[Any, Any] | None = PrivateAttr(None)

    @property
    def _llm_type(self) -> str:
        return "local-transformers"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.local_model.name_or_path, "max_new_tokens": self.max_new_tokens}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = self.generate_texts([messages], stop=stop, **kwargs)[0]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def batch(
        self, inputs: list[Any], config: Any = None, *, return_exceptions: bool = False, **kwargs
    ) -> list[AIMessage]:
        """Replies to several prompts, generated in padded batches."""
        conversations = [self._convert_input(i).to_messages() for i in inputs]
        stop = kwargs.pop("stop", None)
        return [
            AIMessage(content=t) for t in self.generate_texts(conversations, stop=stop, **kwargs)
        ]

    def render_prompt(self, messages: list[BaseMessage] | list[dict[str, str]]) -> str:
        """The conversation as the model sees it, ending where the assistant's reply starts."""
        _, tokenizer = self._model()
        turns = [_as_dict(m) for m in messages]
        if has_chat_template(tokenizer):
            return render_chat(tokenizer, turns)
        return "".join(f"{t['role']}: {t['content']}\n" for t in turns) + "assistant:"

    def generate_texts(
        self,
        conversations: list[list[BaseMessage]] | list[list[dict[str, str]]],
        *,
        stop: list[str] | None = None,
        temperature: float | None = None,
        max_new_tokens: int | None = None,
    ) -> list[str]:
        """Sampled replies, one per conversation."""
        model, tokenizer = self._model()
        max_new = max_new_tokens or self.max_new_tokens
        room = max((context_window(model) or 2048) - max_new, 16)
        templated = has_chat_template(tokenizer)
        prompts = [
            encode_prompt(tokenizer, self.render_prompt(c), templated=templated, max_length=room)
            for c in conversations
        ]
        completions = generate_completions(
            model,
            tokenizer,
            prompts,
            max_new_tokens=max_new,
            batch_size=self.batch_size,
            do_sample=True,
            temperature=temperature or self.temperature,
            top_p=self.top_p,
        )
        return [_cut_at_stop(c.text.strip(), stop) for c in completions]

    def _model(self) -> tuple[Any, Any]:
        if self._loaded is None:
            from models import load_model_and_tokenizer

            cache = Path(self.cache_dir) if self.cache_dir else None
            model, tokenizer = load_model_and_tokenizer(
                self.local_model, cache_dir=cache, for_generation=True
            )
            tokenizer.truncation_side = "left"  # keep the end of a long prompt: the request
            self._loaded = (model, tokenizer)
        return self._loaded


def _as_dict(message: BaseMessage | dict[str, str]) -> dict[str, str]:
    if isinstance(message, dict):
        return {"role": message["role"], "content": message["content"]}
    return {"role": _ROLES.get(message.type, "user"), "content": str(message.content)}


def _cut_at_stop(text: str, stop: list[str] | None) -> str:
    cuts = [text.find(s) for s in stop or [] if s and s in text]
    return text[: min(cuts)] if cuts else text


def generator_chat_model(config: RunConfig, *, cache_dir: Path | None = None) -> BaseChatModel:
    """The chat model that writes synthetic data for a run: the configured langchain-core chat
    model, else a local model (`data_generation.generator`, default: the run's base model)."""
    settings = config.data_generation
    if settings.chat_model:
        return load_chat_model(settings.chat_model, settings.chat_model_kwargs)
    local = config.model
    if settings.generator:
        local = ModelConfig(name_or_path=settings.generator, device=config.model.device)
    return LocalChatModel(
        local_model=local,
        cache_dir=str(cache_dir) if cache_dir else None,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        batch_size=settings.batch_size,
    )


def load_chat_model(path: str, kwargs: dict[str, Any]) -> BaseChatModel:
    """Build a langchain-core chat model from 'module:Class' and its keyword arguments."""
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        package = module_name.split(".")[0].replace("_", "-")
        raise ChatModelError(
            f"data_generation.chat_model: cannot import '{module_name}' ({exc}); "
            f"install it (e.g. pip install {package})"
        ) from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseChatModel)):
        raise ChatModelError(
            f"data_generation.chat_model: '{path}' is not a langchain-core chat model class"
        )
    try:
        return cls(**kwargs)
    except Exception as exc:  # the class validates its own arguments; show its message
        raise ChatModelError(
            f"data_generation.chat_model: cannot build {path}: {type(exc).__name__}: {exc}"
        ) from None


def display_name(chat: BaseChatModel) -> str:
    """A short name of the chat model for reports ('local:<path>' or the class and model)."""
    if isinstance(chat, LocalChatModel):
        return f"local:{chat.local_model.name_or_path}"
    model = getattr(chat, "model_name", None) or getattr(chat, "model", None)
    return f"{type(chat).__name__}({model})" if model else type(chat).__name__
