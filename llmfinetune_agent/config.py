"""The run config: one pydantic model composing each phase's section, plus loading and errors.

`load_run_config(path)` is what the CLI, the API and the graph call; every mistake in a file
comes back at once as a `ConfigError` whose issues name the JSON path and give a hint.
"""

from __future__ import annotations

import difflib
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Tag,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from llmfinetune_agent import sections
from llmfinetune_agent.sections import SECTIONS, Section
from models.config import BUILTIN_MODELS, BUILTIN_PREFIX
from phases.data.formats import KIND_OF_FORMAT
from phases.training.config import for_method, methods_for_kind


class _RunBase(BaseModel):
    """The run's own fields; the sections come from the sections table."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        "run", description="A short name for the run, shown in listings.", min_length=1
    )
    task: str = Field(
        "",
        description="What the fine-tuned model should do, in plain words (feeds data generation and the model card).",
    )

    @field_validator("model", check_fields=False)
    @classmethod
    def _known_builtin(cls, model: Any) -> Any:
        """The built-in models are a closed list: an unknown one is refused with the config,
        not when the run first loads it, after its gates."""
        name = getattr(model, "name_or_path", "")
        if name.startswith(BUILTIN_PREFIX) and name[len(BUILTIN_PREFIX) :] not in BUILTIN_MODELS:
            available = ", ".join(BUILTIN_PREFIX + m for m in BUILTIN_MODELS)
            raise ValueError(f"unknown built-in model {name!r}; available: {available}")
        return model

    @model_validator(mode="after")
    def _method_fits_data(self) -> RunConfig:
        _post_training_fits(self)
        fmt, method, kinds = self.data.format, self.training.method, self.training.data_kinds
        kind = KIND_OF_FORMAT.get(fmt)  # None for 'auto': the data phase checks the file
        if kind is None or kind in kinds:
            return self
        formats = [f for f, k in KIND_OF_FORMAT.items() if k in kinds]
        others = " or ".join(f"'{m}'" for m in methods_for_kind(kind))
        raise ValueError(
            f"training.method '{method}' learns from {', '.join(kinds)} data, but "
            f"data.format '{fmt}' holds {kind} data: set data.format to one of "
            f"{', '.join(formats)} (or 'auto'), or use method {others}"
        )


def _post_training_fits(config: Any) -> None:
    """Post-training (merge, quantize, GGUF) makes language models: a reward model scores text,
    and a prompt run changes no weights (it failed after training and evaluation)."""
    makes = {"reward": "trains a scorer", "prompt": "writes a prompt and changes no weights"}
    method = config.training.method
    if method in makes and config.post_training.has_work():
        raise ValueError(
            "post_training.quantize and post_training.merge make language models; training.method "
            f"'{method}' {makes[method]}: remove them, or train with sft or dpo"
        )


def _section_field(section: Section) -> tuple[Any, Any]:
    """A `RunConfig` field for one row of the sections table."""
    doc = section.doc or section.model.__doc__
    if section.required:
        return section.model, Field(..., description=doc)
    return section.model, Field(default_factory=section.default or section.model, description=doc)


RunConfig = create_model(
    "RunConfig",
    __base__=_RunBase,
    __doc__="One fine-tuning run: what to train, on what, how, and where to ask a human.",
    __module__=__name__,
    **{name: _section_field(section) for name, section in SECTIONS.items()},
)


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


def _tagged_variants(annotation: Any) -> dict[str, type[BaseModel]]:
    """The models of a tagged (discriminated) union by tag; empty for any other annotation."""
    variants = {}
    for arg in get_args(annotation):
        tags = [m.tag for m in getattr(arg, "__metadata__", ()) if isinstance(m, Tag)]
        if tags:
            variants[tags[0]] = get_args(arg)[0]
    return variants


def _walk(
    model: type[BaseModel], loc: tuple[Any, ...]
) -> tuple[tuple[Any, ...], type[BaseModel] | None, dict[str, type[BaseModel]]]:
    """Follow pydantic's `loc` through the models. Returns the loc without the union tags
    pydantic inserts (`training.sft.beta` -> `training.beta`, the path as the user wrote it),
    the sub-model it ends at (None past a leaf), and the tagged union that led straight to
    that sub-model (empty if none)."""
    path: list[Any] = []
    current: type[BaseModel] | None = model
    variants: dict[str, type[BaseModel]] = {}
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        path.append(part)
        if isinstance(part, int) and current is not None:
            continue  # an item of a list of models (`rewards.0`): the item's model
        field = current.model_fields.get(str(part)) if current else None
        if field is None:
            current, variants = None, {}
            continue
        variants = _tagged_variants(field.annotation)
        if variants and parts and parts[0] in variants:
            current = variants[parts.pop(0)]
            continue
        variants = {}
        candidates = [field.annotation, *get_args(field.annotation)]
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    return tuple(path), current, variants


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Valid keys of the sub-model at `loc` (for 'did you mean' on unknown keys)."""
    sub = _walk(model, loc)[1]
    return list(sub.model_fields) if sub else []


def _unknown_key(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, str]:
    """Message and hint for an unknown key at `loc`: inside a discriminated union, the variant
    (the training method) the key belongs to; elsewhere the closest valid key."""
    key = str(loc[-1])
    _, sub, variants = _walk(model, loc[:-1])
    owners = [tag for tag, variant in variants.items() if key in variant.model_fields]
    if owners and sub is not None:
        mine = next(tag for tag, variant in variants.items() if variant is sub)
        where = " or ".join(f"'{tag}'" for tag in owners)
        which = f"method {where}" if len(owners) == 1 else f"methods {', '.join(owners)}"
        return (
            f"unknown key '{key}' for method '{mine}'",
            f"'{key}' is a setting of {which} only: set method to {where}, or remove it",
        )
    valid = _fields_at(model, loc[:-1])
    near = _closest(key, valid)
    hint = f"did you mean '{near}'?" if near else f"valid keys here: {', '.join(valid)}"
    return f"unknown key '{key}'", hint


# pydantic's bound errors, said as the bound: "must be at most 1000" (ctx key, wording).
_BOUNDS = {
    "less_than_equal": ("le", "must be at most {}"),
    "less_than": ("lt", "must be less than {}"),
    "greater_than_equal": ("ge", "must be at least {}"),
    "greater_than": ("gt", "must be greater than {}"),
}


def _shown(value: Any, limit: int = 80) -> str:
    """A value as a message quotes it: huge numbers in short (1e+18), whole floats without
    '.0' (a bound of 1000, not 1000.0), anything long cut."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 3] + "..."
    if isinstance(value, int) and abs(value) > sys.float_info.max:
        return "a number over 1e308"
    if abs(value) >= 1e15 and math.isfinite(value):
        return f"{float(value):.3g}"
    return str(int(value)) if isinstance(value, float) and value.is_integer() else repr(value)


def issues_from_validation(
    exc: ValidationError, model: type[BaseModel] = RunConfig
) -> list[ConfigIssue]:
    """Turn pydantic's errors into user-facing issues with JSON paths and hints."""
    issues = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        path = ".".join(str(p) for p in _walk(model, loc)[0])
        kind, msg = err["type"], err["msg"]
        hint = ""
        if kind == "extra_forbidden":
            msg, hint = _unknown_key(model, loc)
        elif kind == "union_tag_invalid":  # e.g. training.method 'ppo'
            name = err["ctx"]["discriminator"].strip("'")
            path = f"{path}.{name}" if path else name
            msg = f"unknown {name} {err['ctx']['tag']!r}"
            hint = f"choose one of {err['ctx']['expected_tags']}"
            if err["ctx"]["tag"] == "ppo":  # TRL removed PPO (TRL#7020)
                hint += "; for PPO-style RLHF use 'grpo' or 'rloo' with a reward_model reward"
        elif kind == "missing":
            hint = "this field is required"
        elif kind == "value_error":
            msg = msg.removeprefix("Value error, ")
        elif kind in _BOUNDS:
            key, wording = _BOUNDS[kind]
            msg, hint = wording.format(_shown(err["ctx"][key])), f"got {_shown(err['input'])}"
        elif kind == "finite_number":
            msg, hint = "must be a finite number, not Infinity or NaN", f"got {err['input']!r}"
        elif kind.startswith("literal_error") or kind == "enum":
            hint = f"got {_shown(err.get('input'))}"
        elif "input" in err and kind not in ("model_type",):
            hint = f"got {_shown(err['input'])}"
        issues.append(ConfigIssue(path, msg, hint))
    return issues


def parse_run_config(data: Any, source: str = "<config>") -> RunConfig:
    """Validate a config mapping; raise `ConfigError` listing every mistake."""
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, issues_from_validation(exc)) from None
    flags = booleans_read_as_numbers(data, config)
    if flags:
        raise ConfigError(source, flags)
    return config


def refuse_boolean(value: Any) -> Any:
    """A pydantic "before" validator for number fields: `value`, or a ValueError for JSON
    true/false, which pydantic's lax mode would read as 1 or 0."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


def booleans_read_as_numbers(raw: Any, parsed: Any, path: str = "") -> list[ConfigIssue]:
    """Where a JSON `true`/`false` was read as a number (`"batch_size": true` is 1 to pydantic).

    Pydantic's lax mode keeps "8" -> 8 (forms send numbers as text), but a boolean in a number's
    place is a mistake, never a count, so it is found here by walking the input beside the
    validated model. It runs once the config validates, so it adds to pydantic's list only
    when that list is empty; a `false` where 0 is out of bounds is already among pydantic's.
    """
    if isinstance(raw, bool):
        numeric = isinstance(parsed, (int, float)) and not isinstance(parsed, bool)
        return [ConfigIssue(path, f"expected a number, got {str(raw).lower()}")] if numeric else []
    if isinstance(parsed, BaseModel):  # its fields by the keys the input used
        fields = type(parsed).model_fields.items()
        parsed = {field.alias or name: getattr(parsed, name) for name, field in fields}
    if isinstance(parsed, dict) and isinstance(raw, dict):
        return [
            issue
            for key, value in parsed.items()
            if key in raw
            for issue in booleans_read_as_numbers(raw[key], value, f"{path}.{key}".lstrip("."))
        ]
    if isinstance(parsed, (list, tuple)) and isinstance(raw, list) and len(raw) == len(parsed):
        return [
            issue
            for i, (raw_item, item) in enumerate(zip(raw, parsed, strict=True))
            for issue in booleans_read_as_numbers(raw_item, item, f"{path}[{i}]")
        ]
    return []


MAX_CONFIG_BYTES = 16 * 2**20
"""The most a config file may hold: reading stops there (a device such as /dev/zero never ends)."""


def read_config_json(path: str | Path) -> Any:
    """Read a JSON config file; a missing file or bad JSON becomes a `ConfigError` with the line."""
    path = Path(path)
    try:
        with path.open("rb") as file:  # a pipe (`<(...)`, /dev/stdin) reads too
            raw = file.read(MAX_CONFIG_BYTES + 1)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), [ConfigIssue("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [ConfigIssue("", f"cannot read the file: {exc}")]) from None
    if len(raw) > MAX_CONFIG_BYTES:  # /dev/zero, or a data file named by mistake
        issue = ConfigIssue(
            "",
            f"the file holds more than {MAX_CONFIG_BYTES // 2**20} MiB; a run config is a "
            "few KB (data goes in files it names)",
        )
        raise ConfigError(str(path), [issue])
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ConfigError(
            str(path), [ConfigIssue("", f"invalid JSON at {where}: {exc.msg}")]
        ) from None
    except ValueError:  # an integer past Python's 4300-digit conversion limit
        issue = ConfigIssue("", "a number in the file has more than 4300 digits", "shorten it")
        raise ConfigError(str(path), [issue]) from None


def load_run_config(path: str | Path) -> RunConfig:
    """Load and validate a run config file; relative data paths resolve against its folder."""
    path = Path(path)
    config = parse_run_config(read_config_json(path), source=str(path))
    return resolve_paths(config, path.resolve().parent)


def resolve_paths(config: RunConfig, base: Path) -> RunConfig:
    """Return a copy whose relative local paths (the sections table's path fields) are
    absolute, anchored at `base`."""
    return parse_run_config(resolve_patch_paths(config.model_dump(mode="json"), base), "paths")


def resolve_patch_paths(patch: dict[str, Any], base: Path) -> dict[str, Any]:
    """A config, or a patch of one (an edit typed at a gate), with its relative local paths
    anchored at `base`; other values as they are."""

    def anchor(p: Any, path_field: sections.PathField) -> Any:
        if not is_local_path(p, path_field) or Path(p).is_absolute():
            return p
        return str((base / p).resolve())

    out = dict(patch)
    for name, section in SECTIONS.items():
        if not section.paths or not isinstance(patch.get(name), dict):
            continue
        values = out[name] = json.loads(json.dumps(patch[name]))  # a deep copy
        for f in section.paths:
            value = sections.field_value(values, f.name)
            if value is None:
                continue
            many = f.many and isinstance(value, list)
            _set_dotted(values, f.name, [anchor(v, f) for v in value] if many else anchor(value, f))
    return out


def is_local_path(p: Any, path_field: sections.PathField) -> bool:
    """A value that names a local path: not a registry id or URL ('model:x', 'https://'),
    and of the form the field's `when` accepts."""
    if not isinstance(p, str) or ":" in p.split("/")[0]:
        return False
    return path_field.when is None or path_field.when(p)


def _set_dotted(values: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        values = values[part]
    values[last] = value


def apply_patch(config: RunConfig, patch: dict[str, Any]) -> RunConfig:
    """Deep-merge a config patch (e.g. from an `edit` decision) and re-validate the result.

    A patch that switches `training.method` drops the old method's own fields first (SFT's
    `packing` means nothing to DPO); the shared ones are kept, and keys the patch adds are
    still checked against the new method.
    """
    current = config.model_dump(mode="json")
    if isinstance(patch.get("training"), dict):
        current["training"] = for_method(current["training"], patch["training"].get("method"))
    merged = _deep_merge(current, patch)
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
    """Sections whose values differ between two configs (models or JSON dicts)."""
    a = old.model_dump(mode="json") if isinstance(old, BaseModel) else old
    b = new.model_dump(mode="json") if isinstance(new, BaseModel) else new
    return sections.changed_sections(a, b)
