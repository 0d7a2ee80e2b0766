"""Reward functions for GRPO and RLOO, built from the run config's `rewards`.

Every function has TRL's reward signature, `fn(prompts, completions, **columns) -> list[float]`
(completions are texts, or lists of chat messages for conversational data). `build_rewards`
checks everything a reward needs before any model loads: the reference column is in the data,
a user function's module is allow-listed and importable, a reward model's directory holds a
reward model. A reward model itself loads on the first call.

A reward that fails while training says which one it is: a user function that raises, or returns
anything but one number (or None) per completion, raises TrainingInputError naming
`training.rewards[i].function` with what it raised or returned; a built-in that raises (a bug
of ours) raises RuntimeError naming its `training.rewards[i]`, chained to the original.

    fns = build_rewards(config.rewards, columns={"prompt", "reference"}, allowed_modules=[])
    fns[0](prompts=["2+2?"], completions=["4"], reference=["4"])  # -> [1.0]
"""

import json
import re
import reprlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from phases.training.data import REFERENCE_COLUMN, TrainingInputError
from phases.training.reward_config import RewardFunctionConfig
from phases.user_functions import UserFunctionError, import_user_function

RewardFunction = Callable[..., list[float]]
REWARD_MODULES_SETTING = "FINETUNE_AGENT_REWARD_MODULES"
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.DOTALL)


def completion_text(completion: Any) -> str:
    """The text of one completion: itself, or the content of its chat messages."""
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)


def parsed_json(text: str) -> tuple[bool, Any]:
    """(True, value) when `text` (optionally in a ``` fence) is a JSON object or array."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    try:
        value = json.loads(fenced.group(1) if fenced else stripped)
    except ValueError:
        return False, None
    return isinstance(value, (dict, list)), value


def _same(answer: str, reference: str, normalize: bool) -> bool:
    """Equal as parsed JSON when the reference is JSON, else as (normalized) text."""
    is_json, expected = parsed_json(reference)
    if is_json:
        ok, got = parsed_json(answer)
        return ok and json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)
    if normalize:
        return " ".join(answer.split()).lower() == " ".join(reference.split()).lower()
    return answer == reference


def exact_match(column: str, normalize: bool) -> RewardFunction:
    """1 when the completion equals the row's reference in `column`, else 0."""

    def reward(prompts: list, completions: list, **columns: Any) -> list[float]:
        references = columns[column]
        return [
            float(_same(completion_text(c), str(r), normalize))
            for c, r in zip(completions, references, strict=True)
        ]

    return reward


def json_valid(prompts: list, completions: list, **_: Any) -> list[float]:
    """1 when the completion is a JSON object or array, else 0."""
    return [float(parsed_json(completion_text(c))[0]) for c in completions]


def matches_schema(value: Any, schema: dict[str, Any]) -> bool:
    """Whether `value` satisfies `schema` (type, properties, required, additionalProperties,
    items, enum, const: the JSON Schema core a reward needs)."""
    if "const" in schema and value != schema["const"]:
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is_type(value, kind) for kind in kinds):
            return False
    if isinstance(value, dict):
        return _object_matches(value, schema)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return all(matches_schema(item, schema["items"]) for item in value)
    return True


def _object_matches(value: dict, schema: dict[str, Any]) -> bool:
    properties = schema.get("properties") or {}
    if any(key not in value for key in schema.get("required", [])):
        return False
    if schema.get("additionalProperties") is False and set(value) - set(properties):
        return False
    return all(matches_schema(value[k], sub) for k, sub in properties.items() if k in value)


def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    python = {"object": dict, "array": list, "string": str, "boolean": bool}.get(kind)
    return value is None if kind == "null" else python is not None and isinstance(value, python)


def json_schema(schema: dict[str, Any]) -> RewardFunction:
    """1 when the completion is JSON satisfying `schema`, else 0."""

    def reward(prompts: list, completions: list, **_: Any) -> list[float]:
        scores = []
        for completion in completions:
            text = completion_text(completion).strip()
            fenced = _FENCE.match(text)
            try:
                value = json.loads(fenced.group(1) if fenced else text)
            except ValueError:
                scores.append(0.0)
                continue
            scores.append(float(matches_schema(value, schema)))
        return scores

    return reward


def regex(pattern: str, full_match: bool) -> RewardFunction:
    """1 when the completion matches `pattern` (anywhere, or as a whole), else 0."""
    compiled = re.compile(pattern)
    match = compiled.fullmatch if full_match else compiled.search

    def reward(prompts: list, completions: list, **_: Any) -> list[float]:
        return [float(match(completion_text(c).strip()) is not None) for c in completions]

    return reward


def length(min_chars: int | None, max_chars: int | None) -> RewardFunction:
    """1 inside [min_chars, max_chars]; outside, falling linearly to 0 at twice the distance."""
    low, high = min_chars or 0, max_chars

    def score(size: int) -> float:
        if size < low:
            return max(0.0, 1.0 - (low - size) / max(low, 1))
        if high is not None and size > high:
            return max(0.0, 1.0 - (size - high) / max(high, 1))
        return 1.0

    def reward(prompts: list, completions: list, **_: Any) -> list[float]:
        return [score(len(completion_text(c).strip())) for c in completions]

    return reward


def reward_model(directory: Path) -> RewardFunction:
    """The score of a reward model trained by this product (`method: reward`), loaded once."""
    from phases.training.reward import load_scorer, reward_of

    loaded: list = []

    def reward(prompts: list, completions: list, **_: Any) -> list[float]:
        if not loaded:
            loaded.extend(load_scorer(directory))
        scorer, tokenizer = loaded
        return [
            reward_of(scorer, tokenizer, p, c) for p, c in zip(prompts, completions, strict=True)
        ]

    return reward


def check_reward_model_dir(model: str, where: str) -> Path:
    """`model` as the directory of a reward model; TrainingInputError naming `where` if not."""
    directory = Path(model).expanduser()
    config_file = directory / "config.json"
    adapter_file = directory / "adapter_config.json"
    if not (config_file.is_file() or adapter_file.is_file()):
        raise TrainingInputError(
            f"{where}: {model!r} is no reward model (no config.json or adapter_config.json "
            "there). Give the registry id or directory of a model trained with method 'reward'."
        )
    if config_file.is_file():
        architectures = json.loads(config_file.read_text(encoding="utf-8")).get("architectures")
        if architectures and not any("SequenceClassification" in a for a in architectures):
            raise TrainingInputError(
                f"{where}: {model!r} is a {architectures[0]}, not a reward model (a sequence "
                "classifier trained with method 'reward')."
            )
    return directory


def _builtin(spec: RewardFunctionConfig, where: str) -> RewardFunction:
    if spec.function == "exact_match":
        return exact_match(spec.column or REFERENCE_COLUMN, spec.normalize is not False)
    if spec.function == "json_valid":
        return json_valid
    if spec.function == "json_schema":
        return json_schema(spec.json_schema or {})
    if spec.function == "regex":
        return regex(spec.pattern or "", bool(spec.full_match))
    if spec.function == "length":
        return length(spec.min_chars, spec.max_chars)
    return reward_model(check_reward_model_dir(spec.model or "", f"{where}.model"))


def build_rewards(
    rewards: list[RewardFunctionConfig],
    *,
    columns: Iterable[str],
    allowed_modules: Iterable[str] = (),
) -> list[RewardFunction]:
    """One callable per configured reward, each named as TRL logs it (`rewards/<name>/mean`).

    Raises TrainingInputError naming `training.rewards[i].<field>` for a reference column the
    data lacks, a user function outside the allow-list or not importable, a path that holds no
    reward model.
    """
    columns, functions, names = set(columns), [], []
    for index, spec in enumerate(rewards):
        where = f"training.rewards[{index}]"
        if spec.function == "exact_match":
            column = spec.column or REFERENCE_COLUMN
            if column not in columns:
                raise TrainingInputError(
                    f"{where}.column: exact_match compares with column '{column}', which the "
                    f"training data does not have (it has {', '.join(sorted(columns))}). Add "
                    "the reference column, or name yours in `column`."
                )
        if ":" in spec.function:
            try:
                function = import_user_function(
                    spec.function,
                    allowed=allowed_modules,
                    what=f"{where}.function",
                    setting=REWARD_MODULES_SETTING,
                )
            except UserFunctionError as error:
                raise TrainingInputError(str(error)) from None
            function = _checked_user_function(function, f"{where}.function {spec.function!r}")
        else:
            function = _reported_builtin(_builtin(spec, where), f"{where} ({spec.function})")
        functions.append(_named(function, _unique(spec.name, names)))
    return functions


def _unique(name: str, taken: list[str]) -> str:
    """`name`, or `name_2`, `name_3`... when an earlier reward has it (TRL logs by name)."""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}_{number}"
    taken.append(candidate)
    return candidate


def _named(function: RewardFunction, name: str) -> RewardFunction:
    def reward(*args: Any, **kwargs: Any) -> list[float]:
        return function(*args, **kwargs)

    reward.__name__ = reward.__qualname__ = name
    return reward


_USER_SIGNATURE = (
    "It is called as fn(prompts=[...], completions=[...], <dataset columns>=[...], **kwargs) "
    "and must return a list with one number (or None) per completion."
)


def _checked_user_function(function: RewardFunction, where: str) -> RewardFunction:
    """`function` raising TrainingInputError naming `where` when it fails or returns anything
    but one score per completion: the user's code, so the user's input to fix."""

    def reward(prompts: list, completions: list, **columns: Any) -> list[float]:
        try:
            scores = function(prompts=prompts, completions=completions, **columns)
        except Exception as error:  # the user's code can fail any way; say whose it is
            raise TrainingInputError(
                f"{where} failed: {type(error).__name__}: {str(error).rstrip('.')}. "
                + _USER_SIGNATURE
            ) from error
        return _scores(scores, len(completions), where)

    return reward


def _scores(scores: Any, expected: int, where: str) -> list:
    """`scores` as a list, checked: `expected` of them, each a number or None."""
    if isinstance(scores, (str, bytes, dict)) or not isinstance(scores, Iterable):
        raise TrainingInputError(
            f"{where} returned a {type(scores).__name__}, not a list of scores. {_USER_SIGNATURE}"
        )
    scores = list(scores)
    if len(scores) != expected:
        raise TrainingInputError(
            f"{where} returned {len(scores)} scores for {expected} completions. {_USER_SIGNATURE}"
        )
    for position, score in enumerate(scores):
        if not _is_score(score):
            raise TrainingInputError(
                f"{where} returned {reprlib.repr(score)} (a {type(score).__name__}) as score "
                f"{position}, not a number. {_USER_SIGNATURE}"
            )
    return scores


def _is_score(value: Any) -> bool:
    """None (TRL: no score for this completion) or anything float() takes but text."""
    if value is None:
        return True
    if isinstance(value, (str, bytes)):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _reported_builtin(function: RewardFunction, where: str) -> RewardFunction:
    """`function` (ours) naming `where` when it raises, chained so the bug stays visible."""

    def reward(prompts: list, completions: list, **columns: Any) -> list[float]:
        try:
            return function(prompts=prompts, completions=completions, **columns)
        except Exception as error:
            raise RuntimeError(f"{where} failed: {type(error).__name__}: {error}") from error

    return reward
