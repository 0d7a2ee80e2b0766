"""The API's own check of a gate decision, run under the run's claim by `execution`.

An edit's config errors are named by their place in the request (`edits.<field>`), and an edit
that reads files outside the data roots is refused (`PathNotAllowed`): path confinement is an
API concern (the CLI reads what its user can read).
"""

from __future__ import annotations

from typing import Any

from api.confinement import check_paths
from llmfinetune_agent.agents.gates import DecisionError, validate_decision
from llmfinetune_agent.config import ConfigError, ConfigIssue, RunConfig, apply_patch
from llmfinetune_agent.execution import InvalidDecision
from llmfinetune_agent.settings import Settings


def check_decision(decision: dict[str, Any], config: dict[str, Any], settings: Settings) -> None:
    """`InvalidDecision` for a bad decision or edit; `PathNotAllowed` for an edit reading files
    outside the data roots; `ConfigError` (issues at `edits.<field>`) for an edit that makes
    the config invalid."""
    _check_edits(decision, config)
    try:
        value = validate_decision(decision, config)
    except DecisionError as exc:
        raise InvalidDecision(str(exc)) from None
    if value["edits"]:
        try:
            edited = apply_patch(RunConfig.model_validate(config), value["edits"])
        except ConfigError as exc:  # validate_decision already caught these; keep it total
            raise InvalidDecision(str(exc)) from None
        check_paths(edited, settings, under="edits")


def _check_edits(decision: dict[str, Any], config: dict[str, Any]) -> None:
    """An edit's config errors, each named by its place in the request: `edits.<field>`."""
    edits = decision.get("edits")
    if decision.get("decision") != "edit" or not isinstance(edits, dict) or not edits:
        return  # nothing to check here; validate_decision says what is missing
    try:
        apply_patch(RunConfig.model_validate(config), edits)
    except ConfigError as exc:
        issues = [ConfigIssue(_under_edits(i.path), i.message, i.hint) for i in exc.issues]
        raise ConfigError("edit", issues) from None


def _under_edits(path: str) -> str:
    return f"edits.{path}" if path else "edits"
