"""The run config: one pydantic model composing each phase's section, plus loading and errors.

`load_run_config(path)` is what the CLI, the API and the graph call; every mistake in a file
comes back at once as a `ConfigError` whose issues name the JSON path and give a hint.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from models.config import ModelConfig
from phases.data.config import DataConfig
from phases.evaluation.config import EvaluationConfig
from phases.post_training.config import PostTrainingConfig
from phases.retrieval.config import KnowledgeConfig
from phases.synthesis.config import DataGenerationConfig
from phases.training.config import TrainingConfig


class HitlConfig(BaseModel):
    """Which human approvals the run asks for."""

    model_config = ConfigDict(extra="forbid")

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

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        True, description="Diagnose a run that misses its thresholds or is rejected."
    )
    max_iterations: int = Field(
        2, ge=0, description="Improvement iterations at most (0: diagnose only)."
    )


class RunConfig(BaseModel):
    """One fine-tuning run: what to train, on what, how, and where to ask a human."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        "run", description="A short name for the run, shown in listings.", min_length=1
    )
    task: str = Field(
        "",
        description="What the fine-tuned model should do, in plain words (feeds data generation and the model card).",
    )
    model: ModelConfig = Field(default_factory=ModelConfig, description=ModelConfig.__doc__)
    data: DataConfig = Field(..., description=DataConfig.__doc__)
    data_generation: DataGenerationConfig = Field(
        default_factory=DataGenerationConfig, description=DataGenerationConfig.__doc__
    )
    knowledge: KnowledgeConfig = Field(
        default_factory=KnowledgeConfig, description=KnowledgeConfig.__doc__
    )
    training: TrainingConfig = Field(
        default_factory=TrainingConfig, description=TrainingConfig.__doc__
    )
    evaluation: EvaluationConfig = Field(
        default_factory=EvaluationConfig, description=EvaluationConfig.__doc__
    )
    debugger: DebuggerConfig = Field(
        default_factory=DebuggerConfig, description=DebuggerConfig.__doc__
    )
    post_training: PostTrainingConfig = Field(
        default_factory=PostTrainingConfig, description=PostTrainingConfig.__doc__
    )
    hitl: HitlConfig = Field(default_factory=HitlConfig, description=HitlConfig.__doc__)

    @model_validator(mode="after")
    def _method_fits_data(self) -> RunConfig:
        fmt, method = self.data.format, self.training.method
        if method in ("dpo", "reward") and fmt not in ("auto", "preference"):
            raise ValueError(
                f"training.method '{method}' needs preference data (prompt/chosen/rejected), "
                f"but data.format is '{fmt}': set data.format to 'preference' or use method 'sft'"
            )
        if method == "sft" and fmt == "preference":
            raise ValueError(
                "training.method 'sft' learns from completions, but data.format is 'preference': "
                "use method 'dpo' or 'reward' for preference pairs"
            )
        return self


# --- loading and errors -------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigIssue:
    """One mistake in a config file: where (a JSON path like `training.lora.r`), what, a hint."""

    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.path or '<root>'}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class ConfigError(ValueError):
    """A config that cannot be used; `issues` lists every mistake found."""

    def __init__(self, source: str, issues: list[ConfigIssue]):
        self.source = source
        self.issues = issues
        super().__init__(f"{source}: " + "; ".join(str(i) for i in issues))


def _closest(word: str, choices: Any) -> str | None:
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return found[0] if found else None


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Valid keys of the sub-model at `loc` (for 'did you mean' on unknown keys)."""
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        sub = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if sub is None:
            return []
        model = sub
    return list(model.model_fields)


def issues_from_validation(
    exc: ValidationError, model: type[BaseModel] = RunConfig
) -> list[ConfigIssue]:
    """Turn pydantic's errors into user-facing issues with JSON paths and hints."""
    issues = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        path = ".".join(str(p) for p in loc)
        kind, msg = err["type"], err["msg"]
        hint = ""
        if kind == "extra_forbidden":
            key, valid = str(loc[-1]), _fields_at(model, loc[:-1])
            near = _closest(key, valid)
            msg = f"unknown key '{key}'"
            hint = f"did you mean '{near}'?" if near else f"valid keys here: {', '.join(valid)}"
        elif kind == "missing":
            hint = "this field is required"
        elif kind == "value_error":
            msg = msg.removeprefix("Value error, ")
        elif kind.startswith("literal_error") or kind == "enum":
            hint = f"got {err.get('input')!r}"
        elif "input" in err and kind not in ("model_type",):
            hint = f"got {err['input']!r}"
        issues.append(ConfigIssue(path, msg, hint))
    return issues


def parse_run_config(data: Any, source: str = "<config>") -> RunConfig:
    """Validate a config mapping; raise `ConfigError` listing every mistake."""
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, issues_from_validation(exc)) from None


def read_config_json(path: str | Path) -> Any:
    """Read a JSON config file; a missing file or bad JSON becomes a `ConfigError` with the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), [ConfigIssue("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [ConfigIssue("", f"cannot read the file: {exc}")]) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ConfigError(
            str(path), [ConfigIssue("", f"invalid JSON at {where}: {exc.msg}")]
        ) from None


def load_run_config(path: str | Path) -> RunConfig:
    """Load and validate a run config file; relative data paths resolve against its folder."""
    path = Path(path)
    config = parse_run_config(read_config_json(path), source=str(path))
    return resolve_paths(config, path.resolve().parent)


def resolve_paths(config: RunConfig, base: Path) -> RunConfig:
    """Return a copy whose relative data/knowledge paths are absolute, anchored at `base`."""

    def anchor(p: str | None) -> str | None:
        if p is None or Path(p).is_absolute() or ":" in p.split("/")[0]:
            return p
        return str((base / p).resolve())

    data = config.data.model_copy(
        update={"train": anchor(config.data.train), "eval": anchor(config.data.eval)}
    )
    knowledge = config.knowledge.model_copy(
        update={"sources": [anchor(s) for s in config.knowledge.sources]}
    )
    model = config.model
    if model.name_or_path.startswith((".", "/")) or model.name_or_path.endswith(".gguf"):
        model = model.model_copy(update={"name_or_path": anchor(model.name_or_path)})
    return config.model_copy(update={"data": data, "knowledge": knowledge, "model": model})


def apply_patch(config: RunConfig, patch: dict[str, Any]) -> RunConfig:
    """Deep-merge a config patch (e.g. from an `edit` decision) and re-validate the result."""
    merged = _deep_merge(config.model_dump(mode="json"), patch)
    return parse_run_config(merged, source="edit")


def _deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of a run config (for editor completion)."""
    schema = RunConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "finetune-agent run config"
    return schema


def changed_sections(old: RunConfig | dict[str, Any], new: RunConfig | dict[str, Any]) -> list[str]:
    """Top-level config keys whose values differ between two configs (models or JSON dicts)."""
    a = old.model_dump(mode="json") if isinstance(old, RunConfig) else old
    b = new.model_dump(mode="json") if isinstance(new, RunConfig) else new
    return [key for key in a if a[key] != b.get(key)]
