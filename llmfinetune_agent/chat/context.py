"""The chat graph's runtime context: loaded models, tool settings, the service's settings.

The API and CLI pass one `ChatContext` with every turn; LangGraph Studio runs the module-level
graph with an empty one, which `chat_context` fills from the environment (here only).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from llmfinetune_agent.settings import Settings
from llmfinetune_agent.tools.python_sandbox import SandboxLimits

if TYPE_CHECKING:
    from langgraph.runtime import Runtime

    from llmfinetune_agent.chat.models import ChatModels


@dataclass
class ChatContext:
    """What the chat nodes need from the service that runs them."""

    settings: Settings | None = None
    """The service's settings (model cache folder, allow-listed tool modules)."""
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)
    """Limits of each run of the `python` tool."""
    models_: ChatModels | None = None
    """Loaded chat models, shared by the service's conversations."""

    @property
    def models(self) -> ChatModels:
        """The loaded-models cache (one per model folder for a context without one)."""
        if self.models_ is not None:
            return self.models_
        return _shared_models((self.settings or Settings.from_env()).models_cache_dir)


@functools.cache
def _shared_models(cache_dir: Path) -> ChatModels:
    from llmfinetune_agent.chat.models import ChatModels

    return ChatModels(cache_dir=cache_dir)


def chat_context(runtime: Runtime[ChatContext] | None) -> ChatContext:
    """The context a node runs with; Studio (no context given) gets the environment's."""
    context = getattr(runtime, "context", None)
    if not isinstance(context, ChatContext):
        context = ChatContext()
    if context.settings is None:
        context = replace(context, settings=Settings.from_env())
    return context
