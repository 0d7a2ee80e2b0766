"""The graph's entry node: turns what a run was started with into the initial `RunState`.

The service (API, CLI) starts a run with a complete initial state, which passes through
unchanged. LangGraph Studio users start a thread with a plain run config, or
`{"config": {...}}`: the config is validated, its relative data paths are anchored (the CLI
anchors them at the config file's folder; a pasted config has none, so Studio reads them from
`configs/` in the working directory of `langgraph dev`, where the example configs live, or
from `config_dir` when given), and the run gets its id (the thread id) and run directory.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from llmfinetune_agent.config import RunConfig, parse_run_config, resolve_paths
from llmfinetune_agent.context import RunContext, run_context
from llmfinetune_agent.state import RunInput, RunState

STUDIO_CONFIG_DIR = "configs"  # where a pasted config's relative paths are read from
SOURCE = "graph input"
STATE_KEYS = set(RunState.__annotations__)


def start(state: RunInput, config: RunnableConfig, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Graph node: pass a service initial state through; build one from a run config."""
    if state.get("run_id") and state.get("run_dir"):
        return {}
    run_config = resolve_paths(
        parse_run_config(_raw_config(state), source=SOURCE), config_dir(state.get("config_dir"))
    )
    run_id = _run_id(config)
    run_dir = run_context(runtime).settings.runs_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(run_config.model_dump_json(indent=2))
    return {
        "run_id": run_id,
        "run_dir": str(run_dir),
        "config": run_config.model_dump(mode="json"),
        # A plain config's `data`, `training` and `evaluation` sections landed in the state
        # keys of the same name; those hold results, so they start empty.
        "data": None,
        "training": None,
        "evaluation": None,
        "approved": {},
        "iteration": 1,
        "outcome": "running",
        **_cleared_sections(state),
    }


def _raw_config(state: RunInput) -> Any:
    """`{"config": {...}}` gives it whole; a plain run config brings its sections as keys."""
    if state.get("config") is not None:
        return state["config"]
    return {key: state[key] for key in RunConfig.model_fields if key in state}


def _cleared_sections(state: RunInput) -> dict[str, None]:
    """The other config sections of a plain config, emptied: they are not state (the config
    in `config` is), and would otherwise linger in every checkpoint looking current."""
    return {key: None for key in RunConfig.model_fields if key in state and key not in STATE_KEYS}


def config_dir(given: str | None) -> Path:
    """Where relative paths are read from: `given` (relative to the working directory), else
    `configs/` in the working directory when it exists, else the working directory."""
    cwd = Path.cwd()
    if given:
        return (cwd / given).resolve()
    default = cwd / STUDIO_CONFIG_DIR
    return default if default.is_dir() else cwd


def _run_id(config: RunnableConfig) -> str:
    """The thread id (a run's id is its thread id), or a fresh id outside a thread."""
    thread_id = (config.get("configurable") or {}).get("thread_id")
    return str(thread_id) if thread_id else uuid.uuid4().hex[:12]
