"""Chat models for the agents: a langchain-core `BaseChatModel` over any model `models/` loads,
or any langchain-core chat model the user configures (e.g. an OpenAI-compatible endpoint).

    chat = LocalChatModel(local_model=ModelConfig(name_or_path="builtin:tiny-llama"))
    chat.invoke("Hello").content
    chat.batch([...], temperature=0.9)   # one batched `generate` for all prompts
    with_tools = chat.bind_tools([calculator])      # any langchain-core tool, function or schema
    with_tools.invoke("What is 12 times 7?").tool_calls
    # [{"name": "calculator", "args": {"expression": "12 * 7"}, "id": "call_...", ...}]

Bound tools are rendered through the tokenizer's chat template (`tools=`; a template without
tool support gets them in the system message, see `models.tool_chat`), and the reply's calls are
parsed into `AIMessage.tool_calls`, whether the model writes its template's native format or
`<tool_call>{json}</tool_call>` blocks. Streaming (`stream`, LangGraph's "messages" mode) yields
the reply's text as it is generated and holds back what may be a call until it is complete.
`batch` on the local model renders and generates the prompts together (left padding) instead
of one thread per prompt; it does not fire per-prompt callbacks.
"""

from __future__ import annotations

import bisect
import functools
import importlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field, PrivateAttr

from llmfinetune_agent.config import RunConfig
from llmfinetune_agent.settings import CHAT_MODEL_MODULES_ENV
from models.config import ModelConfig
from models.generation import (
    context_window,
    cut_at_stop,
    encode_prompt,
    generate_completions,
    has_chat_template,
    render_chat,
    stream_completion,
)
from models.tool_calls import parse_tool_calls, shown_length
from models.tool_chat import fallback_messages, render_tool_chat
from phases.user_functions import module_allowed, modules_from_env

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
ToolLike = dict[str, Any] | type | Callable[..., Any] | BaseTool


class ChatModelError(ValueError):
    """A configured chat model that cannot be imported or built; the message says what to do."""


class PromptTooLong(ValueError):
    """A conversation whose system message, tools and latest turn leave no room for the reply."""


class LocalChatModel(BaseChatModel):
    """Chat replies from a local causal LM, with the tokenizer's chat template (and tools)."""

    local_model: ModelConfig = Field(description="The model to load (as in a run config).")
    cache_dir: str | None = Field(None, description="Where built-in or imported models are cached.")
    max_new_tokens: int = Field(160, gt=0, description="Tokens written per reply at most.")
    do_sample: bool = Field(True, description="Sample replies (False: greedy decoding).")
    temperature: float = Field(0.8, gt=0, description="Default sampling temperature.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass.")
    batch_size: int = Field(8, gt=0, description="Prompts generated together.")
    cut_overlong: bool = Field(
        True,
        description="A prompt whose system message, tools and last turn leave too little "
        "room for the reply is cut from the left; False: refused (PromptTooLong).",
    )

    _loaded: tuple[Any, Any] | None = PrivateAttr(None)
    # One generation at a time per loaded model: a model is not shared across threads mid-call.
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "local-transformers"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.local_model.name_or_path, "max_new_tokens": self.max_new_tokens}

    def bind_tools(
        self, tools: Sequence[ToolLike], *, tool_choice: str | None = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """This model with `tools` offered in every prompt (OpenAI-style schemas)."""
        schemas = [convert_to_openai_tool(tool) for tool in tools]
        return self.bind(tools=schemas, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        *,
        tools: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = self.generate_texts([messages], stop=stop, tools=tools, **kwargs)[0]
        return ChatResult(generations=[ChatGeneration(message=reply_message(text, tools))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        *,
        tools: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """The reply as it is written; calls come in the last chunk, once they are complete."""
        shown, text = "", ""
        for text in self._stream_text(messages, stop=stop, tools=tools, **kwargs):
            visible = text[: shown_length(text)].rstrip() if tools else text.rstrip()
            if len(visible) > len(shown) and visible.startswith(shown):
                piece, shown = visible[len(shown) :], visible
                if run_manager:
                    run_manager.on_llm_new_token(piece)
                yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        final = reply_message(text, tools)
        rest = final.content[len(shown) :] if final.content.startswith(shown) else ""
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content=rest,
                tool_call_chunks=[
                    {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
                    for i, c in enumerate(final.tool_calls)
                ],
                response_metadata=final.response_metadata,
            )
        )

    def _stream_text(
        self,
        messages: list[BaseMessage],
        *,
        stop: list[str] | None,
        tools: list[dict[str, Any]] | None,
        temperature: float | None = None,
        max_new_tokens: int | None = None,
        do_sample: bool | None = None,
    ) -> Iterator[str]:
        """The reply so far (left-stripped, cut at a stop string), after each new piece."""
        model, tokenizer = self._model()
        max_new = max_new_tokens or self.max_new_tokens
        prompt = self._prompt_ids(messages, tools, max_new)
        written = ""
        with self._lock:
            pieces = stream_completion(
                model,
                tokenizer,
                prompt,
                max_new_tokens=max_new,
                do_sample=self.do_sample if do_sample is None else do_sample,
                temperature=temperature or self.temperature,
                top_p=self.top_p,
            )
            for piece in pieces:
                written = (written + piece).lstrip()
                text = cut_at_stop(written, stop)
                yield text
                if text != written:  # a stop string: generate no further
                    pieces.close()
                    break

    def batch(
        self, inputs: list[Any], config: Any = None, *, return_exceptions: bool = False, **kwargs
    ) -> list[AIMessage]:
        """Replies to several prompts, generated in padded batches."""
        conversations = [self._convert_input(i).to_messages() for i in inputs]
        stop = kwargs.pop("stop", None)
        return [
            AIMessage(content=t) for t in self.generate_texts(conversations, stop=stop, **kwargs)
        ]

    def render_prompt(
        self,
        messages: list[BaseMessage] | list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
    ) -> str:
        """The conversation as the model sees it, ending where the assistant's reply starts."""
        _, tokenizer = self._model()
        turns = [as_message_dict(m) for m in messages]
        uses_tools = bool(tools) or any(t["role"] == "tool" or t.get("tool_calls") for t in turns)
        if has_chat_template(tokenizer):
            if uses_tools:
                return render_tool_chat(tokenizer, turns, tools)
            return render_chat(tokenizer, turns)
        if uses_tools:
            turns = fallback_messages(turns, tools)
        return "".join(f"{t['role']}: {t['content']}\n" for t in turns) + "assistant:"

    def generate_texts(
        self,
        conversations: list[list[BaseMessage]] | list[list[dict[str, str]]],
        *,
        stop: list[str] | None = None,
        temperature: float | None = None,
        max_new_tokens: int | None = None,
        tools: list[dict[str, Any]] | None = None,
        do_sample: bool | None = None,
    ) -> list[str]:
        """Replies, one per conversation (sampled unless `do_sample` is off)."""
        model, tokenizer = self._model()
        max_new = max_new_tokens or self.max_new_tokens
        prompts = [self._prompt_ids(c, tools, max_new) for c in conversations]
        with self._lock:
            completions = generate_completions(
                model,
                tokenizer,
                prompts,
                max_new_tokens=max_new,
                batch_size=self.batch_size,
                do_sample=self.do_sample if do_sample is None else do_sample,
                temperature=temperature or self.temperature,
                top_p=self.top_p,
                stop=stop,
            )
        return [cut_at_stop(c.text, stop).strip() for c in completions]

    def _prompt_ids(
        self, messages: list[Any], tools: list[dict[str, Any]] | None, max_new: int
    ) -> list[int]:
        """The prompt's tokens, leaving `max_new` of the context for the reply: the oldest
        turns go first, never the system message or the tools. If the system message, tools
        and the last turn alone leave no room, the prompt is cut from the left
        (`cut_overlong`) or refused."""
        model, tokenizer = self._model()
        window = context_window(model) or 2048
        room = max(window - max_new, 16)
        templated = has_chat_template(tokenizer)
        head, turns = conversation_turns([as_message_dict(m) for m in messages])

        @functools.cache
        def text_from(first: int) -> str:  # the prompt without the turns before `first`
            return self.render_prompt([*head, *(m for turn in turns[first:] for m in turn)], tools)

        @functools.cache
        def ids_from(first: int) -> list[int]:
            return encode_prompt(tokenizer, text_from(first), templated=templated)

        # The fewest oldest turns to drop (a prompt with fewer turns is never longer).
        first = bisect.bisect_left(range(len(turns)), True, key=lambda k: len(ids_from(k)) <= room)
        first = min(first, max(len(turns) - 1, 0))
        if len(ids_from(first)) <= room:
            return ids_from(first)
        if self.cut_overlong:
            return encode_prompt(tokenizer, text_from(first), templated=templated, max_length=room)
        raise PromptTooLong(
            f"the system prompt, tools and the latest message are {len(ids_from(first))} "
            f"tokens, but max_new_tokens {max_new} leaves them {max(window - max_new, 0)} of "
            f"the model's {window}-token context; reduce max_new_tokens or the message"
        )

    def count_tokens(self, text: str) -> int:
        """How many tokens `text` is for this model's tokenizer (no special tokens)."""
        _, tokenizer = self._model()
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def _model(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                from models import load_model_and_tokenizer

                cache = Path(self.cache_dir) if self.cache_dir else None
                model, tokenizer = load_model_and_tokenizer(
                    self.local_model, cache_dir=cache, for_generation=True
                )
                tokenizer.truncation_side = "left"  # keep the end of a long prompt: the request
                self._loaded = (model, tokenizer)
        return self._loaded


def reply_message(text: str, tools: list[dict[str, Any]] | None) -> AIMessage:
    """The model's reply as an AIMessage: with tools bound, its calls parsed into `tool_calls`
    (and any call that could not be read listed in `response_metadata["tool_call_problems"]`)."""
    if not tools:
        return AIMessage(content=text)
    content, calls, problems = parse_tool_calls(text)
    tool_calls = [
        {
            "name": c.name,
            "args": c.arguments,
            "id": f"call_{uuid.uuid4().hex[:12]}",
            "type": "tool_call",
        }
        for c in calls
    ]
    metadata = {"tool_call_problems": problems} if problems else {}
    return AIMessage(content=content, tool_calls=tool_calls, response_metadata=metadata)


def as_message_dict(message: BaseMessage | dict[str, Any]) -> dict[str, Any]:
    """A langchain message (or a dict) as the plain dict chat templates read, tool calls and
    tool results included (`models.tool_chat`'s shape)."""
    if isinstance(message, dict):
        return dict(message)
    turn: dict[str, Any] = {"role": _ROLES.get(message.type, "user"), "content": _text(message)}
    if isinstance(message, AIMessage) and message.tool_calls:
        turn["tool_calls"] = [
            {
                "type": "function",
                "id": c.get("id"),
                "function": {"name": c["name"], "arguments": c["args"]},
            }
            for c in message.tool_calls
        ]
    if isinstance(message, ToolMessage):
        turn.update(name=message.name or "", tool_call_id=message.tool_call_id)
    return turn


def conversation_turns(
    messages: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """The leading system messages, and the rest as turns: each from a user message to the
    next, so a tool call stays with its result when older turns are dropped."""
    start = next((i for i, m in enumerate(messages) if m["role"] != "system"), len(messages))
    turns: list[list[dict[str, Any]]] = []
    for message in messages[start:]:
        if message["role"] == "user" or not turns:
            turns.append([])
        turns[-1].append(message)
    return messages[:start], turns


def _text(message: BaseMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    return "".join(
        part if isinstance(part, str) else str(part.get("text", "")) for part in message.content
    )


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
        batch_size=settings.generation_batch_size(),
    )


def chat_model_module_allowed(module: str) -> bool:
    """Whether a config may name a chat model class from `module`: LangChain's packages (where
    every provider's class lives) and this project's, else the operator's allow-list. A name in
    a config is code the service imports, as with tools, rewards and metrics."""
    top = module.split(".")[0]
    return (
        top.startswith("langchain")
        or top == "llmfinetune_agent"
        or module_allowed(module, modules_from_env(CHAT_MODEL_MODULES_ENV))
    )


def load_chat_model(
    path: str, kwargs: dict[str, Any], *, field: str = "data_generation.chat_model"
) -> BaseChatModel:
    """Build a langchain-core chat model from 'module:Class' and its keyword arguments;
    errors name the config `field` it came from."""
    module_name, _, class_name = path.partition(":")
    if not chat_model_module_allowed(module_name):
        raise ChatModelError(
            f"{field}: module '{module_name}' is neither a LangChain package (langchain_*) nor "
            f"allow-listed; the operator allows others with {CHAT_MODEL_MODULES_ENV}=module1,module2"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        package = module_name.split(".")[0].replace("_", "-")
        raise ChatModelError(
            f"{field}: cannot import '{module_name}' ({exc}); "
            f"install it (e.g. pip install {package})"
        ) from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseChatModel)):
        raise ChatModelError(f"{field}: '{path}' is not a langchain-core chat model class")
    try:
        return cls(**kwargs)
    except Exception as exc:  # the class validates its own arguments; show its message
        raise ChatModelError(f"{field}: cannot build {path}: {type(exc).__name__}: {exc}") from None


def display_name(chat: BaseChatModel) -> str:
    """A short name of the chat model for reports ('local:<path>' or the class and model)."""
    if isinstance(chat, LocalChatModel):
        return f"local:{chat.local_model.name_or_path}"
    model = getattr(chat, "model_name", None) or getattr(chat, "model", None)
    return f"{type(chat).__name__}({model})" if model else type(chat).__name__
