"""A merge in a run that cannot be made (a source that does not exist) is a rolled-back
candidate with its reason, as a failed export is: the run's post-training stage still ends
with its table and the accepted model stays the champion."""

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
