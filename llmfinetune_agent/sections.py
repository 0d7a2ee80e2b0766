"""The sections table: what each section of a run config is and what changing it means.

Per section: its config model (the phase that owns it), which results in state an edit makes
stale, which approvals it resets, which route an improvement iteration that patches it takes,
which of its fields shape the trained weights, and which name local files. Gates, the
improvement loop, the trainer's directory key, the debugger, path confinement and `RunConfig`
itself read this table; a new section is one row here plus its phase's config model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.config import ModelConfig
from phases.data.config import DataConfig
from phases.evaluation.config import EvaluationConfig
from phases.post_training.config import PostTrainingConfig
from phases.retrieval.config import KnowledgeConfig
from phases.synthesis.config import DataGenerationConfig
from phases.training.config import TRAINING_DESCRIPTION, SFTTraining, TrainingConfig

# How an improvement iteration that patches a section starts: prepare the data again, or
# retrain from the base model; None: nothing trained changes (the model is evaluated again).
SectionRoute = Literal["regenerate_data", "retrain"]
ALL_FIELDS = "*"
RESULTS_OF_TRAINING = ("training", "artifact")  # a stale training takes its model with it
# A model evaluated anew is post-trained anew: its candidates and the release approval go too.
RESULTS_OF_EVALUATION = ("evaluation", "post_training", "release")
TRAINING_GATES = "training_checkpoint@*"  # every training-checkpoint approval
APPROVALS_OF_EVALUATION = ("approve_evaluation", "approve_release")
APPROVALS_OF_TRAINING = (*APPROVALS_OF_EVALUATION, TRAINING_GATES)
APPROVALS_OF_DATA = ("approve_data", *APPROVALS_OF_TRAINING)
LENGTH_KEYS = ("epochs", "max_steps")  # the schedule's length: continuing may change it


class HitlConfig(BaseModel):
    """Which human approvals the run asks for."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    approve_plan: bool = Field(
        True, description="Ask before anything runs: model, data, method, cost."
    )
    approve_data: bool = Field(True, description="Ask after the data is prepared, before training.")
    training_checkpoints: list[float] = Field(
        default_factory=list,
        description="Fractions of training (each in (0, 1)) at which to pause and ask to continue.",
    )
    approve_evaluation: bool = Field(True, description="Ask after evaluation, showing the metrics.")
    approve_fixes: bool = Field(
        True, description="Ask before applying the debugger's proposed fixes."
    )
    approve_release: bool = Field(
        True,
        description="When post-training made candidates: show their table and ask which to "
        "register (off: the champion, the best passing candidate, is registered).",
    )

    @field_validator("training_checkpoints")
    @classmethod
    def _fractions_in_range(cls, value: list[float]) -> list[float]:
        bad = [f for f in value if not 0.0 < f < 1.0]
        if bad:
            raise ValueError(
                f"each fraction must lie strictly between 0 and 1 (e.g. 0.5 for half way); got {bad}"
            )
        if len(set(value)) != len(value):
            raise ValueError("the same fraction is listed twice")
        return sorted(value)


class DebuggerConfig(BaseModel):
    """The debugger agent and the improvement loop."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(
        True, description="Diagnose a run that misses its thresholds or is rejected."
    )
    max_iterations: int = Field(
        2,
        ge=0,
        le=100,  # each iteration retrains the model
        description="Improvement iterations at most (0: diagnose only).",
    )


def looks_local(name: str) -> bool:
    """A model name that is a file or folder here rather than a hub id or a built-in."""
    return name.startswith((".", "/")) or name.endswith(".gguf")


def is_folder_source(name: str) -> bool:
    """A merge source that names a folder (not this run's model nor a registry id)."""
    return name != "run" and not name.startswith("model:")


@dataclass(frozen=True)
class PathField:
    """A field that names local files: `many` for a list of paths; `when` filters values
    (a model name is a path only when it looks like one); `from_runs`: it may also point into
    the runs folder or the model cache (a model trained by an earlier run)."""

    name: str
    many: bool = False
    when: Callable[[str], bool] | None = None
    from_runs: bool = False


@dataclass(frozen=True)
class Section:
    """One section of a run config and what an edit of it implies."""

    model: Any
    """Its config model (or a union of models), owned by its phase."""
    stale: tuple[str, ...] = ()
    """State results an edit makes stale (they are dropped and redone)."""
    approvals: tuple[str, ...] = ()
    """Approvals an edit resets (`TRAINING_GATES`: every training-checkpoint approval)."""
    route: SectionRoute | None = None
    """How an improvement iteration that patches this section starts."""
    trained: tuple[str, ...] = ()
    """Fields that shape the trained weights (`ALL_FIELDS`: all of them)."""
    paths: tuple[PathField, ...] = ()
    """Fields that name local files."""
    required: bool = False
    """The config must give it (no default)."""
    default: Callable[[], Any] | None = None
    """What an omitted section is (default: `model()`; a union needs one)."""
    doc: str | None = None
    """The field's description (default: the model's docstring)."""


SECTIONS: dict[str, Section] = {
    "model": Section(
        ModelConfig,
        stale=("plan", *RESULTS_OF_TRAINING, *RESULTS_OF_EVALUATION),
        approvals=APPROVALS_OF_TRAINING,
        route="retrain",
        trained=(ALL_FIELDS,),
        paths=(PathField("name_or_path", when=looks_local, from_runs=True),),
    ),
    "data": Section(
        DataConfig,
        stale=("data", "plan", *RESULTS_OF_TRAINING, *RESULTS_OF_EVALUATION),
        approvals=APPROVALS_OF_DATA,
        route="regenerate_data",
        trained=("max_length",),
        paths=(
            PathField("train"),
            PathField("eval"),
            PathField("system_prompt_from", from_runs=True),
        ),
        required=True,
    ),
    "data_generation": Section(
        DataGenerationConfig,
        stale=("data", *RESULTS_OF_TRAINING, *RESULTS_OF_EVALUATION),
        approvals=APPROVALS_OF_DATA,
        route="regenerate_data",
        # A local generator is a model folder read like model.name_or_path: anchored, kept
        # under the data roots over the API, and checked to exist before the plan gate.
        paths=(PathField("generator", when=looks_local, from_runs=True),),
    ),
    "knowledge": Section(
        KnowledgeConfig,
        stale=("data", *RESULTS_OF_TRAINING, *RESULTS_OF_EVALUATION),
        approvals=APPROVALS_OF_DATA,
        route="regenerate_data",
        paths=(PathField("sources", many=True),),
    ),
    "training": Section(
        TrainingConfig,
        default=SFTTraining,
        doc=TRAINING_DESCRIPTION,
        stale=("plan", *RESULTS_OF_TRAINING, *RESULTS_OF_EVALUATION),
        approvals=APPROVALS_OF_TRAINING,
        route="retrain",
        trained=(ALL_FIELDS,),
        paths=(
            PathField("sft_adapter", from_runs=True),
            # A prompt run's reflection model: same forms as model.name_or_path.
            PathField("reflection_model", when=looks_local, from_runs=True),
        ),
    ),
    "evaluation": Section(
        EvaluationConfig, stale=RESULTS_OF_EVALUATION, approvals=APPROVALS_OF_EVALUATION
    ),
    "debugger": Section(DebuggerConfig),
    # An edit at the release gate (other targets, thresholds, a merge) makes the candidates
    # table stale: post-training runs again from the same accepted model and asks again.
    "post_training": Section(
        PostTrainingConfig,
        stale=("post_training", "release"),
        approvals=("approve_release",),
        paths=(
            PathField("merge.held_out"),
            PathField("merge.sources", many=True, when=is_folder_source, from_runs=True),
            PathField("merge.base", when=looks_local, from_runs=True),
        ),
    ),
    "hitl": Section(HitlConfig),
}


def reset_approvals(approved: dict[str, bool], sections: list[str]) -> dict[str, bool]:
    """`approved` without the approvals an edit of these sections resets."""
    reset = {gate for name in sections for gate in SECTIONS[name].approvals}
    training_gates = TRAINING_GATES in reset
    return {
        key: value
        for key, value in approved.items()
        if key not in reset and not (training_gates and key.startswith("training_checkpoint@"))
    }


def stale_results(sections: list[str]) -> list[str]:
    """State results an edit of these sections makes stale, in table order, once each."""
    return list(dict.fromkeys(r for name in sections for r in SECTIONS[name].stale))


def changed_sections(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Sections whose values differ between two configs (JSON dicts), in table order."""
    return [name for name in SECTIONS if old.get(name) != new.get(name)]


def sections_route(sections: list[str] | set[str]) -> SectionRoute | None:
    """The route a change of these sections implies: preparing the data again wins over
    retraining; None when nothing trained changes."""
    routes = {SECTIONS[name].route for name in sections if name in SECTIONS}
    for route in ("regenerate_data", "retrain"):
        if route in routes:
            return route
    return None


def patch_route(patch: dict[str, Any] | None) -> SectionRoute | None:
    """The route a config patch implies by the sections it touches."""
    return sections_route(set(patch or {}))


def untrained_sections() -> tuple[str, ...]:
    """Sections whose change leaves the trained weights as they are (no route)."""
    return tuple(name for name, section in SECTIONS.items() if section.route is None)


def trained_inputs(config: dict[str, Any], *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every config value that shapes the trained weights (minus the training fields in
    `drop`): the trainer's directory key and the continuation key are built from it."""
    inputs: dict[str, Any] = {}
    for name, section in SECTIONS.items():
        values = config.get(name) or {}
        if ALL_FIELDS in section.trained:
            inputs[name] = {k: v for k, v in values.items() if k not in drop}
        elif section.trained:
            inputs[name] = {k: values.get(k) for k in section.trained}
    return inputs


def field_value(values: dict[str, Any] | None, dotted: str) -> Any:
    """The value at a dotted field name inside a section (`merge.held_out`), None when a
    level on the way is absent."""
    for part in dotted.split("."):
        if not isinstance(values, dict):
            return None
        values = values.get(part)
    return values


def local_paths(config: dict[str, Any]) -> Iterator[tuple[str, str, PathField]]:
    """(JSON path, value, field) of every local file a config names, e.g. `data.train`."""
    for name, section in SECTIONS.items():
        values = config.get(name) or {}
        for path_field in section.paths:
            value = field_value(values, path_field.name)
            items = enumerate(value or []) if path_field.many else [(None, value)]
            for index, item in items:
                if item is None or (path_field.when and not path_field.when(item)):
                    continue
                where = f"{name}.{path_field.name}" + (f".{index}" if index is not None else "")
                yield where, item, path_field
