"""The sections table is the one place that says what a config section is and what editing it
implies: RunConfig is composed from it, edits drop what it lists, routes and path checks read
it; and the graph's nodes get the service's settings from the runtime context, never from the
environment (a service with another home and database registers its model there)."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest

from llmfinetune_agent.agents.fixes_agent import apply_edit
from llmfinetune_agent.config import RunConfig, load_run_config, parse_run_config
from llmfinetune_agent.graph import AGENTS, GATES, build
from llmfinetune_agent.routing import Destination
from llmfinetune_agent.sections import (
    SECTIONS,
    local_paths,
    patch_route,
    trained_inputs,
    untrained_sections,
)

REPO = Path(__file__).resolve().parents[2]
RESULTS = ("data", "plan", "training", "artifact", "evaluation", "post_training", "release")

# One representative edit per section (each changes the section's value).
EDITS: dict[str, dict[str, Any]] = {
    "model": {"name_or_path": "builtin:smollm2-135m-instruct"},
    "data": {"max_length": 64},
    "data_generation": {"num_examples": 7},
    "knowledge": {"top_k": 2},
    "training": {"learning_rate": 1e-3},
    "evaluation": {"max_new_tokens": 9},
    "debugger": {"max_iterations": 5},
    "post_training": {"quantize": ["gguf:q8_0"]},
    "hitl": {"approve_plan": False},
}


def test_run_config_is_composed_from_the_table() -> None:
    assert list(RunConfig.model_fields) == ["name", "task", *SECTIONS]
    assert set(EDITS) == set(SECTIONS), "give the new section an edit in EDITS"
    assert RunConfig.model_fields["data"].is_required()
    assert not RunConfig.model_fields["training"].is_required()


@pytest.mark.parametrize("section", list(SECTIONS))
def test_an_edit_drops_exactly_what_the_table_says(section: str, tmp_path: Path) -> None:
    config = parse_run_config({"data": {"train": "d.jsonl"}}).model_dump(mode="json")
    state = {"run_dir": str(tmp_path), "config": config, **{r: {"kept": True} for r in RESULTS}}
    approved = {"approve_plan": True, "approve_data": True, "approve_evaluation": True}
    approved["approve_release"] = True
    approved["training_checkpoint@0.5"] = True
    update = apply_edit(state, {section: EDITS[section]}, approved)
    dropped = {r for r in RESULTS if r in update and update[r] is None}
    assert dropped == set(SECTIONS[section].stale)
    reset = set(approved) - set(update["approved"])
    expected = {a for a in SECTIONS[section].approvals if not a.endswith("@*")}
    if "training_checkpoint@*" in SECTIONS[section].approvals:
        expected.add("training_checkpoint@0.5")
    assert reset == expected


def test_a_patch_implies_its_route_by_the_sections_it_touches() -> None:
    assert patch_route({"training": {"learning_rate": 1e-4}}) == "retrain"
    assert patch_route({"model": {"name_or_path": "m"}}) == "retrain"
    assert patch_route({"training": {"epochs": 2}, "data": {"deduplicate": True}}) == (
        "regenerate_data"
    )
    assert patch_route({"knowledge": {"enabled": True}}) == "regenerate_data"
    assert patch_route({"evaluation": {"max_new_tokens": 64}}) is None
    assert patch_route(None) is None
    untrained = set(untrained_sections())
    assert {"evaluation", "debugger", "post_training", "hitl"} <= untrained
    assert not {"model", "data", "data_generation", "knowledge", "training"} & untrained


def test_trained_inputs_hold_what_shapes_the_weights_only() -> None:
    config = parse_run_config({"data": {"train": "d.jsonl"}}).model_dump(mode="json")
    inputs = trained_inputs(config)
    assert set(inputs) == {"model", "data", "training"}
    assert inputs["data"] == {"max_length": config["data"]["max_length"]}
    assert "epochs" not in trained_inputs(config, drop=("epochs", "max_steps"))["training"]
    evaluation_edit = {**config, "evaluation": {**config["evaluation"], "max_new_tokens": 3}}
    assert trained_inputs(evaluation_edit) == inputs


def test_local_paths_are_the_tables_path_fields() -> None:
    config = parse_run_config(
        {
            "model": {"name_or_path": "./my-model"},
            "data": {"train": "t.jsonl", "eval": "e.jsonl"},
            "knowledge": {"enabled": True, "sources": ["a.md", "b.md"]},
        }
    ).model_dump(mode="json")
    found = {where: value for where, value, _ in local_paths(config)}
    assert found == {
        "model.name_or_path": "./my-model",
        "data.train": "t.jsonl",
        "data.eval": "e.jsonl",
        "knowledge.sources.0": "a.md",
        "knowledge.sources.1": "b.md",
    }
    hub = {**config, "model": {**config["model"], "name_or_path": "org/model"}}
    assert "model.name_or_path" not in {w for w, _, _ in local_paths(hub)}


def test_the_orchestrator_names_every_node_it_may_go_to() -> None:
    destinations = set(typing.get_args(Destination))
    assert destinations == {*AGENTS, *GATES, "__end__"}
    graph = build().compile().get_graph()
    targets = {e.target for e in graph.edges if e.source == "orchestrator"}
    assert targets == destinations


def test_nodes_use_the_services_settings_not_the_environment(
    tmp_path: Path, _isolated_home: Path
) -> None:
    from llmfinetune_agent.execution import open_service
    from llmfinetune_agent.run_store import RunStore
    from llmfinetune_agent.settings import Settings, default_database_url

    home = tmp_path / "service-home"
    settings = Settings(home=home, database_url=default_database_url(home))
    config = load_run_config(REPO / "configs" / "quickstart-tiny.json")
    patch = {"approve_plan": False, "approve_data": False, "approve_evaluation": False}
    config = config.model_copy(
        update={
            "hitl": config.hitl.model_copy(update={**patch, "training_checkpoints": []}),
            "training": config.training.model_copy(update={"max_steps": 2}),
            "evaluation": config.evaluation.model_copy(update={"thresholds": {}}),
        }
    )
    with open_service(settings) as service:
        run = service.create_run(config)
        done = service.start(run.id)
    assert done.status == "completed", done.error
    (model,) = RunStore(settings.database_url).list_models(run_id=run.id)
    assert Path(model.path).is_relative_to(home / "runs")
    env = Settings.from_env()
    assert env.home == _isolated_home.resolve() and env.database_url != settings.database_url
    assert not (env.home / "runs").exists() and not (env.home / "models").exists()


def test_an_edit_of_post_training_redoes_the_candidates_only(tmp_path: Path) -> None:
    """The release gate's edit (other targets or thresholds) makes the candidates and the
    release decision stale, nothing trained or evaluated."""
    assert set(SECTIONS["post_training"].stale) == {"post_training", "release"}
    assert SECTIONS["post_training"].approvals == ("approve_release",)
    for section in ("model", "data", "training", "evaluation"):
        assert {"post_training", "release"} <= set(SECTIONS[section].stale), section
        assert "approve_release" in SECTIONS[section].approvals, section
