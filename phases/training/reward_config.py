"""The `rewards` of a GRPO or RLOO run, and the guards that watch what the rewards do.

Each entry names one reward function and its weight; several are summed with their weights
(TRL's `reward_weights`). Built-ins: `exact_match` (against a reference column), `json_valid`,
`json_schema`, `regex`, `length` (a target range in characters), `reward_model` (a reward model
this product trained: a registry model id or a directory). Anything else must be written
`package.module:function`, imported from a module the operator allow-listed
(FINETUNE_AGENT_REWARD_MODULES), and is called as TRL calls reward functions:
`fn(prompts=..., completions=..., <dataset columns>=..., **kwargs) -> list[float]`.

    {"function": "exact_match", "column": "reference", "weight": 2.0}
    {"function": "regex", "pattern": "^\\\\{.*\\\\}$"}
"""

import difflib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

BUILTIN_REWARDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name: (fields it needs, fields it may take), besides `function` and `weight`
    "exact_match": ((), ("column", "normalize")),
    "json_valid": ((), ()),
    "json_schema": (("json_schema",), ()),
    "regex": (("pattern",), ("full_match",)),
    "length": ((), ("min_chars", "max_chars")),
    "reward_model": (("model",), ()),
}
_OWN_FIELDS = ("column", "normalize", "json_schema", "pattern", "full_match", "min_chars")
_OWN_FIELDS += ("max_chars", "model")
_USER_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class RewardFunctionConfig(BaseModel):
    """One reward function with its weight, and the settings of a built-in."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    function: str = Field(
        min_length=1,
        max_length=300,
        description=(
            "A built-in (exact_match, json_valid, json_schema, regex, length, reward_model) or "
            "'package.module:function' from a module allow-listed by FINETUNE_AGENT_REWARD_MODULES."
        ),
    )
    weight: float = Field(
        1.0, ge=-1000, le=1000, description="This reward's weight in the weighted sum."
    )
    column: str | None = Field(
        None,
        min_length=1,
        description=(
            "exact_match: the dataset column holding the reference (default 'reference'; a "
            "prompt/completion file offers its completion as 'reference')."
        ),
    )
    normalize: bool | None = Field(
        None,
        description="exact_match: compare lowercased with whitespace collapsed (default true).",
    )
    json_schema: dict[str, Any] | None = Field(
        None, description="json_schema: the JSON Schema a completion must satisfy to score 1."
    )
    pattern: str | None = Field(
        None,
        min_length=1,
        max_length=2000,
        description="regex: a Python regular expression; a completion matching it scores 1.",
    )
    full_match: bool | None = Field(
        None, description="regex: the whole completion must match (default: a match anywhere)."
    )
    min_chars: int | None = Field(
        None, ge=0, le=1_000_000, description="length: the shortest completion that scores 1."
    )
    max_chars: int | None = Field(
        None, ge=1, le=1_000_000, description="length: the longest completion that scores 1."
    )
    model: str | None = Field(
        None,
        min_length=1,
        description=(
            "reward_model: a registry model id of a reward model trained by this product "
            "(method 'reward'), or its directory."
        ),
    )

    @model_validator(mode="after")
    def _settings_fit_function(self) -> "RewardFunctionConfig":
        given = [name for name in _OWN_FIELDS if getattr(self, name) is not None]
        if self.function not in BUILTIN_REWARDS:
            if not _USER_SPEC.match(self.function):
                raise ValueError(_unknown_function(self.function))
            if given:
                raise ValueError(
                    f"function {self.function!r} is a user function: {', '.join(given)} "
                    "belong(s) to built-in rewards only; remove them"
                )
            return self
        needs, may = BUILTIN_REWARDS[self.function]
        for name in needs:
            if getattr(self, name) is None:
                raise ValueError(f"function '{self.function}' needs `{name}`")
        extra = [name for name in given if name not in needs + may]
        if extra:
            raise ValueError(
                f"function '{self.function}' does not read {', '.join(f'`{e}`' for e in extra)}; "
                "remove it"
            )
        self._check_builtin_values()
        return self

    def _check_builtin_values(self) -> None:
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as error:
                raise ValueError(
                    f"`pattern` {self.pattern!r} is not a valid regex: {error}"
                ) from None
        if self.json_schema is not None:
            schema_problem(self.json_schema)
        if self.function == "length":
            low, high = self.min_chars, self.max_chars
            if low is None and high is None:
                raise ValueError("function 'length' needs `min_chars`, `max_chars` or both")
            if low is not None and high is not None and low > high:
                raise ValueError(f"`min_chars` ({low}) is above `max_chars` ({high})")

    @property
    def name(self) -> str:
        """The name the reward is logged under (`rewards/<name>/mean`)."""
        return self.function.replace(":", ".") if ":" in self.function else self.function


def _unknown_function(function: str) -> str:
    close = difflib.get_close_matches(function, list(BUILTIN_REWARDS), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return (
        f"`function` {function!r} is not a built-in reward ({', '.join(BUILTIN_REWARDS)}) nor a "
        f"user function written 'package.module:function'{hint}"
    )


_SCHEMA_TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")


def schema_problem(schema: dict[str, Any], where: str = "json_schema") -> None:
    """Raise ValueError naming the place when `schema` uses a type or keyword shape we can't check.

    The checker (`phases.training.rewards.matches_schema`) covers the JSON Schema core a reward
    needs: type, properties, required, items, enum, const, additionalProperties (bool).
    """
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    for value in kinds:
        if value not in _SCHEMA_TYPES:
            raise ValueError(f"`{where}.type` {value!r} is not one of {', '.join(_SCHEMA_TYPES)}")
    for key, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, dict):
            raise ValueError(f"`{where}.properties.{key}` must be a schema object")
        schema_problem(sub, f"{where}.properties.{key}")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise ValueError(f"`{where}.required` must be a list of property names")
    if "items" in schema:
        if not isinstance(schema["items"], dict):
            raise ValueError(f"`{where}.items` must be a schema object")
        schema_problem(schema["items"], f"{where}.items")
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise ValueError(f"`{where}.enum` must be a list")


class RewardGuards(BaseModel):
    """What stops (or flags) an RL run whose rewards no longer teach anything."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    action: Literal["stop", "flag"] = Field(
        "stop",
        description=(
            "'stop': end the run (saved, status 'stopped') when a guard fires; 'flag': keep "
            "training and report it for the debugger."
        ),
    )
    zero_spread_fraction: float = Field(
        0.9,
        gt=0,
        le=1,
        description=(
            "A step has no learning signal when at least this share of prompts got the same "
            "reward for every generation (TRL's frac_reward_zero_std)."
        ),
    )
    zero_spread_steps: int = Field(
        10, ge=1, le=100_000, description="Consecutive such steps before the guard fires."
    )
    clipped_fraction: float = Field(
        0.95,
        gt=0,
        le=1,
        description="A step is clipped when at least this share of completions hit the length cap.",
    )
    clipped_steps: int = Field(
        10, ge=1, le=100_000, description="Consecutive clipped steps before the guard fires."
    )
