"""The post_training section and merge configs refuse what cannot run, naming the field."""

from __future__ import annotations

import pytest

from llmfinetune_agent.config import ConfigError, parse_run_config
from phases.post_training.config import PostTrainingConfig


def _issues(post_training: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_run_config({"data": {"train": "t.jsonl"}, "post_training": post_training})
    return [str(issue) for issue in caught.value.issues]


def test_targets_are_checked_and_null_means_none() -> None:
    assert PostTrainingConfig(quantize=None).quantize == []
    assert PostTrainingConfig(quantize=["int8", "gguf:q4_k_m"]).has_work()
    assert not PostTrainingConfig().has_work()
    (issue,) = _issues({"quantize": ["gguf:q3_k"]})
    assert issue.startswith("post_training.quantize: unknown target(s) ['gguf:q3_k']")
    assert "gguf:q8_0" in issue
    (issue,) = _issues({"quantize": ["int8", "int8"]})
    assert "listed twice" in issue
    assert PostTrainingConfig().q8_0_rounding == "gptq"
    (issue,) = _issues({"q8_0_rounding": "best"})
    assert issue.startswith("post_training.q8_0_rounding: ") and "'gptq' or 'nearest'" in issue
    (issue,) = _issues({"gates": {"kl_8bit": -1}})
    assert issue.startswith("post_training.gates.kl_8bit: must be at least 0")


@pytest.mark.parametrize(
    ("merge", "where", "says"),
    [
        ({"method": "cat", "sources": ["run"]}, "post_training.merge", "at least 2 sources"),
        ({"method": "slerp", "sources": ["a", "b", "c"]}, "post_training.merge", "exactly 2"),
        (
            {"method": "ties", "sources": ["a", "b"], "weights": [1.0]},
            "post_training.merge.weights",
            "1 weights for 3 sources (run, a, b)",
        ),
        (
            {"method": "cat", "sources": ["a", "b"], "density": 0.5},
            "post_training.merge",
            "density applies",
        ),
        (
            {"method": "linear", "sources": ["a", "b"], "weights": [1, -1]},
            "post_training.merge.weights",
            "sum to 0, and linear divides by their sum",
        ),
        (
            {"method": "passthrough", "sources": ["a"]},
            "post_training.merge",
            "passthrough needs slices",
        ),
        (
            {"method": "merge_all", "sources": ["a", "b"]},
            "post_training.merge.method",
            "Input should be",
        ),
        (
            {"method": "linear", "sources": ["a", "b"], "evolve": {"budget": 1}},
            "post_training.merge.evolve.budget",
            "at least 2",
        ),
    ],
)
def test_merge_mistakes_name_the_field(merge, where, says) -> None:
    (issue,) = _issues({"merge": {**merge, "held_out": "held_out.jsonl"}})
    assert issue.startswith(where + ":") and says in issue, issue


@pytest.mark.parametrize("evolve", [False, True])
def test_a_merge_in_a_run_needs_held_out(evolve) -> None:
    """The merge is gated on held_out after training: without it the run would fail there."""
    merge = {"method": "linear", "sources": ["run", "model:3f9c2a71b0de"]}
    (issue,) = _issues({"merge": {**merge, "evolve": {"enabled": evolve}}})
    assert issue.startswith("post_training.merge.held_out: Field required"), issue


def test_cancelling_weights_are_refused_only_where_they_are_divided_by() -> None:
    from phases.post_training.merge_config import MergeJob, MergeSpec

    with pytest.raises(ValueError, match="sum to 0"):
        MergeJob(method="linear", sources=["a", "b"], weights=[0, 0], output="o")
    assert MergeSpec(method="cat", sources=["a", "b"], weights=[1, -1]).weights == [1, -1]
    assert MergeJob(method="linear", sources=["a", "b"], output="o").held_out is None


def test_merge_paths_are_local_paths_of_the_config(tmp_path) -> None:
    """held_out, folder sources and a local base are confined and anchored like data files;
    'run' and registry ids are not paths."""
    from llmfinetune_agent.config import resolve_paths
    from llmfinetune_agent.sections import local_paths

    config = parse_run_config(
        {
            "data": {"train": "t.jsonl"},
            "post_training": {
                "merge": {
                    "method": "ties",
                    "sources": ["run", "model:3f9c2a71b0de", "models/other"],
                    "base": "./base",
                    "held_out": "held_out.jsonl",
                }
            },
        }
    )
    found = {where: value for where, value, _ in local_paths(config.model_dump(mode="json"))}
    assert found == {
        "data.train": "t.jsonl",
        "post_training.merge.held_out": "held_out.jsonl",
        "post_training.merge.sources.2": "models/other",
        "post_training.merge.base": "./base",
    }
    anchored = resolve_paths(config, tmp_path).post_training.merge
    assert anchored.held_out == str(tmp_path / "held_out.jsonl")
    assert anchored.sources == ["run", "model:3f9c2a71b0de", str(tmp_path / "models" / "other")]
    assert anchored.base == str(tmp_path / "base")


def test_a_reward_model_is_not_post_trained() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_run_config(
            {
                "data": {"train": "t.jsonl", "format": "preference"},
                "training": {"method": "reward"},
                "post_training": {"quantize": ["int8"]},
            }
        )
    (issue,) = caught.value.issues
    assert "training.method 'reward' trains a scorer" in str(issue)


def test_a_prompt_run_is_not_post_trained() -> None:
    """It validated, then failed after training and evaluation ("this run has prompt artifact")."""
    with pytest.raises(ConfigError) as caught:
        parse_run_config(
            {
                "data": {"train": "t.jsonl"},
                "training": {"method": "prompt"},
                "post_training": {"quantize": ["int8"]},
            }
        )
    (issue,) = caught.value.issues
    assert "training.method 'prompt' writes a prompt and changes no weights" in str(issue)
