"""Which model a conversation talks to, and the loaded chat models the service shares.

A chat's `model` is a registry id (a model a run produced, or a prompt a prompt run
registered), a prompt artifact (a `.json` file with `model`, `system_prompt` and optional
`exemplars`: the base model plus the text added to the chat's system prompt and the
exemplar turns put before the conversation), or any model reference a run config accepts. `resolve_chat_model` turns it into a
local folder once, when the chat is created; a bad reference fails there, naming it (a hub
id must already be in the Hugging Face cache: nothing is downloaded).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmfinetune_agent.chat_model import LocalChatModel
from models.config import ModelConfig
from models.loading import ADAPTER_CONFIG
from models.prompt_artifact import PromptArtifactError, read_prompt_artifact

PROMPT_ARTIFACT_SUFFIX = ".json"


class ChatModelUnavailable(ValueError):
    """The chat's model reference cannot be used; the message says why."""


@dataclass(frozen=True)
class ResolvedModel:
    """A chat's model: the folder to load, and a prompt artifact's system text and exemplars
    (each `{"input", "output"}`) if any."""

    path: str
    artifact_prompt: str | None = None
    exemplars: tuple[dict[str, str], ...] = ()


def resolve_chat_model(reference: str, *, store: Any, cache_dir: Path) -> ResolvedModel:
    """The local model folder behind `reference` (registry id, prompt artifact, model ref)."""
    record = store.get_model(model_id=reference) if store is not None else None
    if record is not None and record.kind == "prompt":
        return _prompt_artifact(Path(record.path), store=store, cache_dir=cache_dir)
    if record is not None:
        if not Path(record.path).exists():  # refused now, not at every message of the chat
            raise ChatModelUnavailable(
                f"model {reference!r} is registered, but its files are gone ({record.path}): "
                "restore them, or chat with another model"
            )
        return ResolvedModel(path=record.path)
    if reference.endswith(PROMPT_ARTIFACT_SUFFIX) and Path(reference).is_file():
        return _prompt_artifact(Path(reference), store=store, cache_dir=cache_dir)
    from models import ModelLoadError, resolve_model_path

    try:
        path = str(resolve_model_path(reference, cache_dir=cache_dir))
    except ModelLoadError as exc:
        raise _unavailable(reference, str(exc)) from None
    if not Path(path).exists() and not hub_id_cached(path):
        from huggingface_hub import constants as hf_constants

        # Without network a hub id loads only from the cache: refuse it now, not at every message.
        raise _unavailable(
            reference,
            f"as a hub id it is not in the Hugging Face cache ({hf_constants.HF_HUB_CACHE}), "
            "where hub ids load from offline; download it there once with network access, or "
            "give a local model folder or a built-in ('builtin:tiny-llama')",
        )
    return ResolvedModel(path=path)


def hub_id_cached(repo_id: str) -> bool:
    """True if the hub model `repo_id` (revision main) is in the local Hugging Face cache:
    its config.json, or an adapter's adapter_config.json. Nothing is downloaded."""
    # Imported here: huggingface_hub brings tqdm, which reads TQDM_DISABLE once, on import.
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        found = [try_to_load_from_cache(repo_id, f) for f in ("config.json", ADAPTER_CONFIG)]
    except HFValidationError:  # 'a--b', 'a..b': a name the hub never gives a model
        return False
    return any(isinstance(f, str) for f in found)


def _unavailable(reference: str, why: str) -> ChatModelUnavailable:
    return ChatModelUnavailable(
        f"model {reference!r} is neither a registry id (GET /models) nor a model that can "
        f"be loaded here: {why}"
    )


def _prompt_artifact(path: Path, *, store: Any, cache_dir: Path) -> ResolvedModel:
    try:
        artifact = read_prompt_artifact(path)
    except PromptArtifactError as exc:
        raise ChatModelUnavailable(str(exc)) from None
    if not artifact.model.strip():
        raise ChatModelUnavailable(
            f"prompt artifact {path}: its 'model' is empty; give the base model the prompt is "
            "for (a registry id or a model reference such as 'builtin:tiny-llama')"
        )
    if artifact.model.endswith(PROMPT_ARTIFACT_SUFFIX):
        raise ChatModelUnavailable(
            f"prompt artifact {path}: its 'model' must be a model, not another prompt artifact"
        )
    try:
        base = resolve_chat_model(artifact.model, store=store, cache_dir=cache_dir)
    except ChatModelUnavailable as exc:
        raise ChatModelUnavailable(f"prompt artifact {path}: its 'model': {exc}") from None
    if base.artifact_prompt or base.exemplars:  # a registered prompt: its own text was dropped
        raise ChatModelUnavailable(
            f"prompt artifact {path}: its 'model' {artifact.model!r} is a registered prompt, "
            "not a model; name that prompt's base model"
        )
    return ResolvedModel(
        path=base.path,
        artifact_prompt=artifact.system_prompt,
        exemplars=tuple({"input": e.input, "output": e.output} for e in artifact.exemplars),
    )


class ChatModels:
    """Loaded chat models by folder, the `capacity` most recently used kept in memory."""

    def __init__(self, *, cache_dir: Path, capacity: int = 2) -> None:
        self.cache_dir = cache_dir
        self.capacity = capacity
        self._models: OrderedDict[str, LocalChatModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str) -> LocalChatModel:
        """The chat model over the folder `path` (loaded on its first reply)."""
        with self._lock:
            model = self._models.get(path)
            if model is None:
                model = LocalChatModel(
                    local_model=ModelConfig(name_or_path=path),
                    cache_dir=str(self.cache_dir),
                    do_sample=False,
                    cut_overlong=False,  # a chat refuses a turn rather than lose its start
                )
                self._models[path] = model
                while len(self._models) > self.capacity:
                    self._models.popitem(last=False)
            self._models.move_to_end(path)
            return model
