"""What every agent node shares: the typed config from state, progress events, run paths.

Settings and stores come from the runtime context (`llmfinetune_agent.context`), not here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.config import get_stream_writer

from llmfinetune_agent.config import RunConfig
from llmfinetune_agent.state import RunState


def run_config(state: RunState) -> RunConfig:
    """The run's current config as the typed model."""
    return RunConfig.model_validate(state["config"])


def emit(kind: str, **payload: Any) -> None:
    """Send a progress event on LangGraph's `custom` stream (the runner logs it; Studio shows it)."""
    try:
        writer = get_stream_writer()
    except RuntimeError:  # called outside a graph run (e.g. a phase used from a notebook)
        return
    writer({"kind": kind, **payload})


def run_path(state: RunState, *parts: str) -> Path:
    """A path inside the run directory, created if it is a folder we write into."""
    path = Path(state["run_dir"], *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
