"""The "new run" form, drawn from the run config's JSON Schema, and read back into a config.

Each section of `RunConfig` is a fieldset; a field of a plain type (text, number, whole number,
yes/no, one of a list) is an input of that type with the field's description as its help text,
anything richer (lists, maps, nested settings) a JSON text box. The `training` section is a
union chosen by `method`: the form shows the chosen method's fields only. A new config field
appears in the form without code here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from api.body_limits import loads_typed_json
from llmfinetune_agent.config import RunConfig

PLAIN_TYPES = ("string", "number", "integer", "boolean")

DEFAULT_METHOD = "sft"  # training.method when a config leaves it out


@dataclass
class FormField:
    """One input of the form; `name` is the dotted config path (`training.learning_rate`)."""

    name: str
    label: str
    help: str
    kind: str  # text | number | integer | checkbox | select | json
    value: Any = None
    options: list[str] = field(default_factory=list)
    required: bool = False
    nullable: bool = False
    error: str | None = None

    @property
    def input_id(self) -> str:
        return "f-" + self.name.replace(".", "-")

    @property
    def form_value(self) -> str:
        """The value as the input shows it."""
        if self.kind == "json":
            return "" if self.value is None else json.dumps(self.value)
        if self.value is None:
            return ""
        return str(self.value)


@dataclass
class FormSection:
    """A fieldset: one section of the config (`run` for the top-level name and task)."""

    name: str
    title: str
    help: str
    fields: list[FormField]
    methods: list[str] = field(default_factory=list)  # training: the methods to choose from
    chosen: str = ""  # training: the method shown


def schema() -> dict[str, Any]:
    return RunConfig.model_json_schema()


def build_sections(values: dict[str, Any] | None = None, method: str | None = None) -> list:
    """The form's sections, filled with `values` (a config, possibly partial) or defaults."""
    root = schema()
    values = values or {}
    top = [
        _field(name, prop, root, values.get(name), name in root.get("required", []))
        for name, prop in root["properties"].items()
        if _plain(prop, root)
    ]
    sections = [FormSection("run", "Run", root.get("description", ""), top)]
    for name, prop in root["properties"].items():
        if _plain(prop, root):
            continue
        section_values = values.get(name) if isinstance(values.get(name), dict) else {}
        sections.append(_section(name, prop, root, section_values, method))
    return sections


def training_section(values: dict[str, Any] | None, method: str) -> FormSection:
    """Only the training fieldset, for the chosen method (the form swaps it in place)."""
    root = schema()
    return _section("training", root["properties"]["training"], root, values or {}, method)


def _section(name: str, prop: dict, root: dict, values: dict, method: str | None) -> FormSection:
    title = name.replace("_", " ").capitalize()
    methods: list[str] = []
    chosen = ""
    if "discriminator" in prop:  # a union chosen by one field (training.method)
        mapping = prop["discriminator"]["mapping"]
        methods = list(mapping)
        # Not the mapping's first (alphabetical: dpo): what a config without a method trains.
        default = DEFAULT_METHOD if DEFAULT_METHOD in mapping else methods[0]
        chosen = method or values.get(prop["discriminator"]["propertyName"]) or default
        target = _resolve({"$ref": mapping.get(chosen, mapping[default])}, root)
        help_text = prop.get("description", "")
    else:
        target = _resolve(prop, root)
        help_text = target.get("description", prop.get("description", ""))
    required = target.get("required", [])
    fields = [
        _field(f"{name}.{key}", sub, root, values.get(key), key in required)
        for key, sub in target.get("properties", {}).items()
    ]
    return FormSection(name, title, help_text, fields, methods, chosen)


def _field(name: str, prop: dict, root: dict, value: Any, required: bool) -> FormField:
    inner, nullable = _unwrap_nullable(prop, root)
    kind = _kind(inner)
    default = prop.get("default", inner.get("default"))
    if kind == "json" and default is None and "default" not in prop and not nullable:
        default = [] if inner.get("type") == "array" else {}
    return FormField(
        name=name,
        label=name.split(".")[-1].replace("_", " "),
        help=prop.get("description", inner.get("description", "")),
        kind=kind,
        value=default if value is None else value,
        options=[str(o) for o in inner.get("enum", [])]
        or ([str(inner["const"])] if "const" in inner else []),
        required=required,
        nullable=nullable,
    )


def _kind(prop: dict) -> str:
    if "enum" in prop or "const" in prop:
        return "select"
    return {"string": "text", "number": "number", "integer": "integer", "boolean": "checkbox"}.get(
        prop.get("type", ""), "json"
    )


def _plain(prop: dict, root: dict) -> bool:
    inner, _ = _unwrap_nullable(prop, root)
    return inner.get("type") in PLAIN_TYPES


def _unwrap_nullable(prop: dict, root: dict) -> tuple[dict, bool]:
    """`X | None` as (X, True); anything else as (itself resolved, False)."""
    options = prop.get("anyOf")
    if options and len(options) == 2 and {"type": "null"} in options:
        inner = next(o for o in options if o != {"type": "null"})
        return _resolve(inner, root), True
    return _resolve(prop, root), False


def _resolve(prop: dict, root: dict) -> dict:
    ref = prop.get("$ref")
    if not ref:
        return prop
    return root["$defs"][ref.rsplit("/", 1)[-1]]


# --- reading the form back -----------------------------------------------------------------


class FormErrors(ValueError):
    """Inputs that are not even the right type (bad JSON, a word in a number box)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def read_form(form: dict[str, str], method: str | None) -> dict[str, Any]:
    """The config a submitted form describes (to be validated by `parse_run_config`). An empty
    optional input is left out (its default applies); an empty nullable one is null."""
    config: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for section in build_sections({}, method):
        for item in section.fields:
            if item.kind == "checkbox":
                _put(config, item.name, item.name in form)
                continue
            text = (form.get(item.name) or "").strip()
            if not text and item.kind == "select" and item.options:
                text = item.options[0] if item.required else ""  # the one the form showed
            if not text:
                if item.nullable:
                    _put(config, item.name, None)
                elif item.required:
                    _put(config, item.name, "")
                continue
            try:
                _put(config, item.name, _parse(item, text))
            except ValueError as exc:
                errors[item.name] = str(exc)
    if errors:
        raise FormErrors(errors)
    return config


def _parse(item: FormField, text: str) -> Any:
    if item.kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"'{text}' is not a whole number") from None
    if item.kind == "number":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"'{text}' is not a number") from None
    if item.kind == "json":
        try:
            return loads_typed_json(text)
        except ValueError as exc:
            raise ValueError(f"not valid JSON ({exc})") from None
    return text


def _put(config: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def place_errors(sections: list[FormSection], issues: dict[str, str]) -> list[str]:
    """Put each error next to its field (or the nearest enclosing one); return the rest."""
    by_name = {f.name: f for s in sections for f in s.fields}
    unplaced = []
    for path, message in issues.items():
        parts = path.split(".")
        while parts and ".".join(parts) not in by_name:
            parts.pop()
        if parts:
            target = by_name[".".join(parts)]
            target.error = f"{target.error}; {message}" if target.error else message
        else:
            unplaced.append(f"{path}: {message}" if path else message)
    return unplaced
