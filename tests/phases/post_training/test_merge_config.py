"""In a run, `post_training.merge` is validated against the sources the merge will read:
'run' first when it is not listed. What would fail after training (weights or slerp inputs
that do not match) or silently merge the wrong model (slices counted from a list with an
unlisted 'run' at 0) is refused by `config validate`, naming the field and the list."""

from __future__ import annotations

import pytest

from llmfinetune_agent.config import ConfigError, parse_run_config
from phases.post_training.merge_config import MergeJob


def _issues(merge: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_run_config(
            {
                "data": {"train": "t.jsonl"},
                "post_training": {"merge": {**merge, "held_out": "held_out.jsonl"}},
            }
        )
    return [str(issue) for issue in caught.value.issues]


def _merge_in_run(merge: dict) -> list[str]:
    config = parse_run_config(
        {
            "data": {"train": "t.jsonl"},
            "post_training": {"merge": {**merge, "held_out": "held_out.jsonl"}},
        }
    )
    return config.post_training.merge.merged_sources(config.post_training.merge.sources)


@pytest.mark.parametrize("source", [0, 1])
def test_slices_over_sources_without_run_are_refused(source) -> None:
    """Source 0 used to be the run's model while the user meant their folder (a merge equal
    to the run's model became champion); source 1 was refused though it ran as the folder."""
    (issue,) = _issues(
        {
            "method": "passthrough",
            "sources": ["models/other"],
            "slices": [{"source": source, "layers": [0, 2]}],
        }
    )
    assert issue.startswith(
        "post_training.merge.slices: a run merges 2 sources (run, models/other): 'run' is put "
        "first when sources do not list it, so slices[].source 0 would be this run's model"
    ), issue


def test_slices_count_the_sources_as_written_when_run_is_listed() -> None:
    merge = {"method": "passthrough", "slices": [{"source": 1, "layers": [0, 2]}]}
    assert _merge_in_run({**merge, "sources": ["run", "models/other"]}) == [
        "run",
        "models/other",
    ]
    (issue,) = _issues({**merge, "sources": ["run"]})
    assert issue.startswith("post_training.merge.slices: slices name source(s) [1], but there")


def test_weights_are_counted_with_the_unlisted_run() -> None:
    """2 weights for A and B validated, then the run merged (run, A, B) and zip() failed."""
    (issue,) = _issues(
        {"method": "linear", "sources": ["model:aaa", "model:bbb"], "weights": [0.3, 0.7]}
    )
    assert issue.startswith(
        "post_training.merge.weights: 2 weights for 3 sources (run, model:aaa, model:bbb); "
        "give one weight per source, in that order ('run', this run's model, is put first"
    ), issue
    merge = {"method": "linear", "sources": ["model:aaa", "model:bbb"], "weights": [0, 0.3, 0.7]}
    assert _merge_in_run(merge) == ["run", "model:aaa", "model:bbb"]


def test_slerp_counts_the_unlisted_run() -> None:
    """slerp of A and B validated, then mergekit got (run, A, B) after training."""
    (issue,) = _issues({"method": "slerp", "sources": ["model:aaa", "model:bbb"]})
    assert issue.startswith(
        "post_training.merge: slerp merges exactly 2 sources, got 3 sources "
        "(run, model:aaa, model:bbb) ('run', this run's model, is put first"
    ), issue
    assert _merge_in_run({"method": "slerp", "sources": ["model:aaa"]}) == ["run", "model:aaa"]


def test_outside_a_run_the_sources_are_as_written() -> None:
    job = MergeJob(
        method="passthrough",
        sources=["models/a"],
        slices=[{"source": 0, "layers": [0, 2]}],
        output="o",
    )
    assert job.merged_sources(job.sources) == ["models/a"]
    with pytest.raises(ValueError, match=r"1 weights for 2 sources \(a, b\); give one weight"):
        MergeJob(method="linear", sources=["a", "b"], weights=[1.0], output="o")
