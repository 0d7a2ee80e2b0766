"""Reward functions: each built-in scores what it says, several combine with weights in TRL's
signature, every mistake is refused before a model loads, naming the field, and a user function
that fails while training is bad input naming its `training.rewards[i]`."""

import json
import sys

import pytest
from training_test_data import write_jsonl

from phases.training import parse_training_config, train
from phases.training.data import TrainingInputError
from phases.training.reward_config import RewardFunctionConfig
from phases.training.rewards import build_rewards, matches_schema

PROMPTS = ["p1", "p2", "p3"]


def _one(spec: dict, completions: list, columns: tuple = ("prompt",), **data) -> list[float]:
    [function] = build_rewards(
        [RewardFunctionConfig(**spec)], columns=columns, allowed_modules=["sample_rewards"]
    )
    return function(prompts=PROMPTS[: len(completions)], completions=completions, **data)


def test_exact_match_compares_json_as_json_and_text_normalized() -> None:
    refs = ['{"a": 1, "b": [2]}', "Paris", "Paris"]
    got = ['{"b": [2],  "a": 1}', "  paris ", "Lyon"]
    scores = _one({"function": "exact_match"}, got, ("prompt", "reference"), reference=refs)
    assert scores == [1.0, 1.0, 0.0]
    strict = {"function": "exact_match", "normalize": False, "column": "answer"}
    assert _one(strict, ["paris"], ("answer",), answer=["Paris"]) == [0.0]


def test_chat_completions_are_scored_by_their_content() -> None:
    chat = [
        [{"role": "assistant", "content": '{"x": 1}'}],
        [{"role": "assistant", "content": "no"}],
    ]
    assert _one({"function": "json_valid"}, chat) == [1.0, 0.0]


def test_json_valid_schema_regex_and_length() -> None:
    texts = ['{"name": "Ann", "age": 3}', '```json\n{"name": "Bo"}\n```', "name: Ann"]
    assert _one({"function": "json_valid"}, texts) == [1.0, 1.0, 0.0]
    schema = {
        "type": "object",
        "required": ["name", "age"],
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    }
    assert _one({"function": "json_schema", "json_schema": schema}, texts) == [1.0, 0.0, 0.0]
    assert _one({"function": "regex", "pattern": r"^name:"}, texts) == [0.0, 0.0, 1.0]
    anywhere = {"function": "regex", "pattern": "Ann"}
    assert _one(anywhere, texts) == [1.0, 0.0, 1.0]
    assert _one({**anywhere, "full_match": True}, texts) == [0.0, 0.0, 0.0]
    sized = {"function": "length", "min_chars": 4, "max_chars": 8}
    assert _one(sized, ["abcdef", "ab", "a" * 12]) == [1.0, 0.5, 0.5]


def test_schema_checker_tells_booleans_from_integers() -> None:
    assert not matches_schema(True, {"type": "integer"})
    assert matches_schema({"a": None}, {"properties": {"a": {"type": ["null", "string"]}}})
    assert not matches_schema(
        {"a": 1, "z": 2}, {"properties": {"a": {}}, "additionalProperties": False}
    )
    assert matches_schema([1, 2], {"type": "array", "items": {"enum": [1, 2]}})


def test_user_functions_get_dataset_columns_and_are_named_for_trl() -> None:
    specs = [
        RewardFunctionConfig(function="sample_rewards:says_topic"),
        RewardFunctionConfig(function="json_valid"),
        RewardFunctionConfig(function="json_valid", weight=0.5),
    ]
    functions = build_rewards(
        specs, columns=["prompt", "topic"], allowed_modules=["sample_rewards"]
    )
    assert [f.__name__ for f in functions] == [
        "sample_rewards.says_topic",
        "json_valid",
        "json_valid_2",
    ]
    scores = functions[0](
        prompts=["a", "b"], completions=["about cats", "dogs"], topic=["cats", "cats"]
    )
    assert scores == [1.0, 0.0]


@pytest.mark.parametrize(
    ("spec", "columns", "allowed", "words"),
    [
        (
            {"function": "exact_match"},
            ("prompt",),
            [],
            "training.rewards[0].column: exact_match compares with column 'reference'",
        ),
        (
            {"function": "exact_match", "column": "gold"},
            ("prompt", "reference"),
            [],
            "column 'gold'",
        ),
        (
            {"function": "os.path:join"},
            ("prompt",),
            ["sample_rewards"],
            "module 'os.path' is not allow-listed (sample_rewards)",
        ),
        (
            {"function": "sample_rewards:nothing"},
            ("prompt",),
            ["sample_rewards"],
            "has no function 'nothing'",
        ),
        (
            {"function": "reward_model", "model": "/no/such/dir"},
            ("prompt",),
            [],
            "training.rewards[0].model: '/no/such/dir' is no reward model",
        ),
    ],
)
def test_bad_rewards_fail_before_training_naming_the_field(spec, columns, allowed, words) -> None:
    with pytest.raises(TrainingInputError) as error:
        build_rewards([RewardFunctionConfig(**spec)], columns=columns, allowed_modules=allowed)
    assert words in str(error.value)
    assert "FINETUNE_AGENT_REWARD_MODULES" in str(error.value) or "allow-listed" not in words


def test_a_reward_module_that_fails_to_import_is_bad_input(tmp_path, monkeypatch) -> None:
    (tmp_path / "failing_rewards.py").write_text('raise RuntimeError("no config")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "failing_rewards", raising=False)
    with pytest.raises(TrainingInputError) as error:
        build_rewards(
            [RewardFunctionConfig(function="failing_rewards:score")],
            columns=["prompt"],
            allowed_modules=["failing_rewards"],
        )
    assert str(error.value) == (
        "training.rewards[0].function 'failing_rewards:score': importing module "
        "'failing_rewards' failed: RuntimeError: no config; fix the module, or name another"
    )


def test_a_causal_lm_is_refused_as_reward_model(tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    with pytest.raises(TrainingInputError, match="is a LlamaForCausalLM, not a reward model"):
        build_rewards(
            [RewardFunctionConfig(function="reward_model", model=str(tmp_path))], columns=["prompt"]
        )


def _user(function: str, completions: list) -> list:
    [reward] = build_rewards(
        [RewardFunctionConfig(function=function)],
        columns=["prompt"],
        allowed_modules=["sample_rewards", "json"],
    )
    return reward(prompts=PROMPTS[: len(completions)], completions=completions)


@pytest.mark.parametrize(
    ("function", "words"),
    [
        ("json:dumps", "failed: TypeError: dumps() missing 1 required positional argument: 'obj'"),
        ("sample_rewards:one_score_too_few", "returned 2 scores for 3 completions"),
        ("sample_rewards:scores_as_words", "returned 'high' (a str) as score 1, not a number"),
        ("sample_rewards:one_number", "returned a float, not a list of scores"),
    ],
)
def test_a_failing_user_reward_is_bad_input_naming_it(function, words) -> None:
    with pytest.raises(TrainingInputError) as error:
        _user(function, ["a", "b", "c"])
    message = str(error.value)
    assert message.startswith(f"training.rewards[0].function '{function}' "), message
    assert words in message
    assert "one number (or None) per completion" in message


def test_a_user_reward_may_leave_a_completion_unscored() -> None:
    assert _user("sample_rewards:scores_as_words", ["a"]) == [None]


def test_a_failing_built_in_stays_our_bug_but_names_the_setting() -> None:
    with pytest.raises(RuntimeError) as error:
        _one({"function": "exact_match"}, ["a"], ("prompt", "reference"))  # no reference given
    assert not isinstance(error.value, TrainingInputError)
    assert str(error.value) == "training.rewards[0] (exact_match) failed: KeyError: 'reference'"
    assert isinstance(error.value.__cause__, KeyError)


def test_a_user_reward_that_raises_in_training_names_its_setting(tiny_model_dir, tmp_path) -> None:
    config = {
        "method": "grpo",
        "rewards": [{"function": "json_valid"}, {"function": "json:dumps"}],
        "max_steps": 2,
        "batch_size": 4,
        "num_generations": 2,
        "max_completion_length": 4,
        "lora": None,
    }
    data = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"Q{i}?"} for i in range(4)])
    with pytest.raises(TrainingInputError) as error:
        train(
            parse_training_config(config),
            model=str(tiny_model_dir),
            train_path=data,
            eval_path=None,
            output_dir=tmp_path / "out",
            reward_modules=["json"],
        )
    assert str(error.value).startswith(
        "training.rewards[1].function 'json:dumps' failed: TypeError: dumps() missing 1 "
        "required positional argument: 'obj'. "
    )
