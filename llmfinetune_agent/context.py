"""The run's runtime context: what nodes need from the service that runs them.

The service passes one `RunContext` with every graph execution
(`graph.stream(..., context=RunContext(...))`); nodes take `runtime: Runtime[RunContext]` and
read settings, the run store and the cancel flag from it — never from the environment, so a
service built with other settings (another database, another home) is the one its nodes use.
LangGraph Studio runs the module-level graph with an empty context (its server builds
`RunContext()`), and a node called outside a graph has none: `run_context` gives both the
environment's settings, here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmfinetune_agent.settings import Settings

if TYPE_CHECKING:
    from langgraph.runtime import Runtime

    from llmfinetune_agent.run_store import RunStore


def _never() -> bool:
    return False


@dataclass
class RunContext:
    """Settings, stores and signals of the service executing a run."""

    settings: Settings | None = None
    """The service's settings: home, runs and model-cache folders, database (None: LangGraph
    Studio's server builds the context with no arguments; `run_context` fills them in)."""
    should_stop: Callable[[], bool] = field(default=_never)
    """True once a cancel was requested: a training node stops at its next step."""
    store_: RunStore | None = None
    """The service's run store (built from `settings` when not given)."""
    cluster_training: Callable[..., dict[str, Any]] | None = None
    """Trains a segment on a cluster instead of in this process (the Ray backend's
    `ClusterTraining`); takes `train_direct`'s arguments plus `attempt_id`."""

    @cached_property
    def store(self) -> RunStore:
        """The run store (registry, events) of the service's database."""
        if self.store_ is not None:
            return self.store_
        from llmfinetune_agent.run_store import RunStore

        settings = self.settings or Settings.from_env()
        return RunStore(settings.database_url, lease_seconds=settings.lease_seconds)

    @property
    def models_cache(self) -> Path:
        """Where resolved models and base-evaluation results are cached."""
        return (self.settings or Settings.from_env()).models_cache_dir

    @property
    def reward_modules(self) -> list[str]:
        """Modules a GRPO/RLOO run's user reward functions may come from."""
        return (self.settings or Settings.from_env()).reward_modules

    @property
    def backends_dir(self) -> Path:
        """Where training backends' environments are installed (AutoTrain's)."""
        return (self.settings or Settings.from_env()).backends_dir


def run_context(runtime: Runtime[RunContext] | None) -> RunContext:
    """The context a node runs with; Studio (no context given) gets the environment's."""
    context = getattr(runtime, "context", None)
    if not isinstance(context, RunContext):
        context = RunContext()
    if context.settings is None:
        # Read here, in the node's thread: Studio's server forbids file-system calls (which
        # reading settings makes) on its event loop, where it builds the context.
        context = replace(context, settings=Settings.from_env())
    return context
