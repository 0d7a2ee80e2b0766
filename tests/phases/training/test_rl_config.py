"""The RL methods' config (grpo, rloo, kto), their rewards' validation, and the data kinds they
learn from ("prompt", "kto"): every mistake names its field before anything loads."""

import json

import pytest

from llmfinetune_agent.config import ConfigError, parse_run_config
from phases.data import Record, dataset_kind, normalize
from phases.training.config import GRPOTraining, KTOTraining, RLOOTraining, parse_training_config
from phases.training.data import TrainingInputError, load_training_data

JSON_REWARD = {"function": "json_valid"}


def _issues(training: dict, data: dict | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_run_config({"data": data or {"train": "d.jsonl"}, "training": training})
    return {i.path: f"{i.message} {i.hint}".strip() for i in info.value.issues}


def test_grpo_defaults_fit_a_cpu() -> None:
    config = parse_training_config({"method": "grpo", "rewards": [JSON_REWARD]})
    assert isinstance(config, GRPOTraining)
    assert config.lora is not None and config.lora.r == 16
    assert (config.use_vllm, config.num_generations, config.max_completion_length) == (
        False,
        4,
        32,
    )
    assert config.beta == 0.0 and config.guards.action == "stop"
    rloo = parse_training_config({"method": "rloo", "rewards": [JSON_REWARD]})
    assert isinstance(rloo, RLOOTraining) and rloo.beta == 0.05
    assert isinstance(parse_training_config({"method": "kto"}), KTOTraining)


@pytest.mark.parametrize(
    ("reward", "words"),
    [
        ({"function": "exact"}, ["'exact' is not a built-in reward", "did you mean 'exact_match'"]),
        ({"function": "regex", "pattern": "(["}, ["`pattern` '([' is not a valid regex"]),
        ({"function": "regex"}, ["function 'regex' needs `pattern`"]),
        ({"function": "json_schema"}, ["needs `json_schema`"]),
        (
            {"function": "json_schema", "json_schema": {"type": "obj"}},
            ["`json_schema.type` 'obj' is not one of"],
        ),
        ({"function": "length", "min_chars": 9, "max_chars": 3}, ["`min_chars` (9) is above"]),
        ({"function": "length"}, ["needs `min_chars`, `max_chars` or both"]),
        ({"function": "json_valid", "pattern": "x"}, ["does not read `pattern`"]),
        ({"function": "reward_model"}, ["needs `model`"]),
        ({"function": "my.mod:fn", "column": "x"}, ["is a user function: column"]),
    ],
)
def test_a_misconfigured_reward_names_its_field(reward: dict, words: list[str]) -> None:
    issues = _issues({"method": "grpo", "rewards": [JSON_REWARD, reward]})
    assert list(issues) == ["training.rewards.1"]
    for word in words:
        assert word in issues["training.rewards.1"]


def test_groups_must_fill_the_batch_and_rewards_are_required() -> None:
    issues = _issues({"method": "grpo", "num_generations": 3, "rewards": [JSON_REWARD]})
    assert "must be a multiple of training.num_generations (3)" in issues["training"]
    assert "training.rewards" in _issues({"method": "rloo"})


def test_rl_methods_refuse_preference_data_and_name_the_formats() -> None:
    issues = _issues(
        {"method": "grpo", "rewards": [JSON_REWARD]}, {"train": "d.jsonl", "format": "preference"}
    )
    text = " ".join(issues.values())
    assert (
        "learns from prompt, prompt_completion, chat data" in text and "'dpo' or 'reward'" in text
    )


def test_the_data_phase_detects_prompt_and_kto_data() -> None:
    rows = [Record({"prompt": " Say hi ", "reference": "hi", "id": 3}, "p.jsonl", 1)]
    prompts = normalize(rows)
    assert prompts.kind == "prompt"
    assert prompts.examples[0].record == {"prompt": "Say hi", "reference": "hi"}
    thumbs = normalize(
        [
            Record({"prompt": "a", "completion": "b", "label": True}, "k.jsonl", 1),
            Record({"prompt": "a", "completion": "c", "label": "false"}, "k.jsonl", 2),
            Record({"prompt": "a", "completion": "d", "label": "maybe"}, "k.jsonl", 3),
        ]
    )
    assert thumbs.kind == "kto" and [e.record["label"] for e in thumbs.examples] == [True, False]
    assert thumbs.dropped[0].detail == "'label' is 'maybe'; expected true or false"
    assert dataset_kind([{"prompt": "x"}, {"prompt": "y", "reference": "z"}]) == "prompt"


def test_rl_training_offers_a_completion_as_the_reference(tmp_path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text('{"prompt": "p", "completion": "c"}\n', encoding="utf-8")
    assert load_training_data(path, "grpo").records == [{"prompt": "p", "reference": "c"}]
    assert load_training_data(path, "sft").records == [{"prompt": "p", "completion": "c"}]
    chat = tmp_path / "chat.jsonl"
    turns = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    chat.write_text(json.dumps({"messages": turns}) + "\n", encoding="utf-8")
    assert load_training_data(chat, "rloo").records == [{"prompt": turns[:1], "reference": "a"}]
    bad = tmp_path / "kto.jsonl"
    bad.write_text('{"prompt": "p", "completion": "c", "label": "yes"}\n', encoding="utf-8")
    with pytest.raises(TrainingInputError, match="field 'label' must be true"):
        load_training_data(bad, "kto")


def test_the_plan_counts_prompts_per_step_and_the_sampled_tokens() -> None:
    from phases.training import estimate_training

    config = parse_training_config({"method": "grpo", "rewards": [JSON_REWARD], "epochs": 1})
    plan = estimate_training(config, num_examples=160, mean_tokens=20, num_parameters=1000)
    # 8 completions a step are 2 prompts x 4 generations: 80 steps for 160 prompts.
    assert (plan["total_steps"], plan["steps_per_epoch"]) == (80, 80)
    # Each completion is prompt + up to 32 tokens trained, plus the 32 sampled (a third each).
    assert plan["tokens"] == int(80 * 8 * (20 + 32) + 80 * 8 * 32 / 3)
