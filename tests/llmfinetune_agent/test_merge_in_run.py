"""A merge in a run that cannot be made (a source that does not exist) is a rolled-back
candidate with its reason, as a failed export is: the run's post-training stage still ends
with its table and the accepted model stays the champion. A merge that can be made reads the
sources validation checked: 'run' first when not listed, the weights counted with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmfinetune_agent.config import parse_run_config
from llmfinetune_agent.context import RunContext
from llmfinetune_agent.merge_sources import run_merge_step
from llmfinetune_agent.settings import Settings
from phases.post_training.stage import run_post_training

ROWS = [
    {
        "messages": [
            {"role": "user", "content": f"{n} lives in {c}."},
            {"role": "assistant", "content": c},
        ]
    }
    for n, c in [("Anna", "Oslo"), ("Tom", "Rome")]
]


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("model:zzz", "no registered model with id 'zzz'"),
        ("/nonexistent/x", "'/nonexistent/x': no such folder"),
    ],
)
def test_a_merge_that_cannot_be_made_is_rolled_back(
    source, says, tiny_model_dir: Path, tmp_path: Path
) -> None:
    for name in ("eval.jsonl", "held_out.jsonl"):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    config = parse_run_config(
        {
            "data": {"train": "t.jsonl"},
            "evaluation": {"metrics": ["rougeL"], "max_new_tokens": 4},
            "post_training": {
                "merge": {
                    "method": "linear",
                    "sources": ["run", source],
                    "held_out": str(tmp_path / "held_out.jsonl"),
                }
            },
        }
    )
    state = {
        "config": config.model_dump(mode="json"),
        "artifact": {"kind": "model", "path": str(tiny_model_dir)},
    }
    result = run_post_training(
        config.post_training,
        evaluation=config.evaluation,
        tuned_dir=tiny_model_dir,
        eval_path=tmp_path / "eval.jsonl",
        output_dir=tmp_path / "post_training",
        base_model="builtin:tiny-llama",
        merge_step=run_merge_step(state, RunContext(settings=Settings.from_env())),
    )
    tuned, merge = result["candidates"]
    assert result["champion"] == 0 and tuned["alias"] == "champion"
    assert merge["name"] == "merge:linear" and merge["path"] is None
    assert merge["verdict"] == "fail" and merge["alias"] == "rolled_back"
    assert merge["reason"].startswith("could not be made: merge source") and says in merge["reason"]


def test_a_missing_held_out_fails_the_run_at_the_data_check(tmp_path: Path) -> None:
    """The API refused it at submission; a CLI run took it, trained, and then rolled the merge
    back ("Eval data file not found")."""
    from llmfinetune_agent.execution import open_service

    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in ROWS * 4))
    config = parse_run_config(
        {
            "model": {"name_or_path": "builtin:tiny-llama"},
            "data": {"train": str(train), "eval": str(train)},
            "post_training": {
                "merge": {
                    "method": "linear",
                    "sources": ["run", "builtin:tiny-llama"],
                    "held_out": str(tmp_path / "nope.jsonl"),
                }
            },
            "hitl": {"approve_plan": False, "approve_data": True},
        }
    )
    with open_service() as service:
        run = service.start(service.create_run(config).id)
    assert run.status == "failed" and run.pending_interrupt is None
    assert f"post_training.merge.held_out: {tmp_path / 'nope.jsonl'}: no such file" in run.error


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return {k: v for f in sorted(folder.glob("*.safetensors")) for k, v in load_file(f).items()}


def _merged_row(merge: dict, tuned: Path, tmp_path: Path) -> dict:
    """The row a run's merge step makes from `merge` (held_out: ROWS, scored by loss), with
    `tuned` as the run's own model."""
    (tmp_path / "held_out.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    merge = {**merge, "held_out": str(tmp_path / "held_out.jsonl"), "score": "loss"}
    config = parse_run_config({"data": {"train": "t.jsonl"}, "post_training": {"merge": merge}})
    state = {
        "config": config.model_dump(mode="json"),
        "artifact": {"kind": "model", "path": str(tuned)},
    }
    step = run_merge_step(state, RunContext(settings=Settings.from_env()))
    (row,) = step(
        config.post_training.merge,
        rows=[{"path": str(tuned)}],
        output_dir=tmp_path / "merge",
        say=print,
    )
    return row


def test_weights_count_the_unlisted_run_at_run_time(
    tiny_model_dir: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`sources: [other], weights: [0, 1]` is (run, other) both when validated and when merged:
    the merge is the other model, not the run's own."""
    import torch

    from models.builtin import build_tiny_llama

    other = build_tiny_llama(tmp_path_factory.mktemp("other"), seed=1)
    merge = {"method": "linear", "sources": [str(other)], "weights": [0.0, 1.0]}
    row = _merged_row(merge, tiny_model_dir, tmp_path)
    models = row["parameters"]["mergekit_config"]["models"]
    assert [(m["model"], m["parameters"]["weight"]) for m in models] == [
        (str(tiny_model_dir), 0.0),
        (str(other), 1.0),
    ]
    merged, wanted, own = _weights(Path(row["path"])), _weights(other), _weights(tiny_model_dir)
    assert merged.keys() == wanted.keys()
    assert all(torch.equal(merged[k], wanted[k]) for k in wanted)
    assert not all(torch.equal(merged[k], own[k]) for k in own)


def test_the_merge_parent_is_the_runs_model_wherever_it_is_listed(
    tiny_model_dir: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """parent_path was the first source's path while parent named the run's row."""
    from models.builtin import build_tiny_llama

    other = build_tiny_llama(tmp_path_factory.mktemp("other"), seed=1)
    row = _merged_row(
        {"method": "linear", "sources": [str(other), "run"]}, tiny_model_dir, tmp_path
    )
    assert row["parent"] == 0 and Path(row["parent_path"]) == tiny_model_dir


def test_the_early_path_check_leaves_what_other_checks_read(tmp_path: Path) -> None:
    """The model and data are checked by their own phase right after, knowledge sources by
    retrieval when it is on: a disabled retrieval's missing folder is no reason to fail."""
    from llmfinetune_agent.agents.data_agent import check_config_paths
    from phases.data import DataError

    missing = str(tmp_path / "gone")
    check_config_paths(
        parse_run_config(
            {"data": {"train": missing}, "knowledge": {"enabled": False, "sources": [missing]}}
        )
    )
    prompt = {"method": "prompt", "reflection_model": missing}
    with pytest.raises(DataError, match=f"training.reflection_model: {missing}: no such file"):
        check_config_paths(parse_run_config({"data": {"train": missing}, "training": prompt}))
