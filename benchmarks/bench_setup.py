"""What the training benchmarks share: a small model, short chat data, and a bare TRL run.

The model is the built-in Llama architecture at 4 layers x 256 wide (the hub is offline here,
so SmolLM2-135M cannot be fetched); the data is the quickstart's 240 short chat examples.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "configs" / "data" / "quickstart" / "train.jsonl"


def build_model(root: Path) -> Path:
    """A small Llama (4 x 256) with the built-in tokenizer and chat template."""
    from models import build_tiny_llama

    return build_tiny_llama(root / "model", hidden_size=256, num_layers=4)


def chat_data(root: Path) -> Path:
    """The quickstart chat examples as a normalized `messages` jsonl (the phase's input)."""
    path = root / "train.jsonl"
    path.write_text(QUICKSTART.read_text())
    return path


def count_tokens(model_dir: Path, data: Path) -> int:
    """Tokens in one epoch of `data` rendered with the chat template (what both paths train on)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    texts = [tokenizer.apply_chat_template(r["messages"], tokenize=False) for r in rows]
    return sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)


def bare_trl_sft(model_dir: Path, data: Path, out: Path, **sft_args: Any) -> float:
    """Seconds for a plain TRL script: load, SFTTrainer(...).train(), save. No wrappers."""
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dataset = load_dataset("json", data_files=str(data), split="train")
    args = SFTConfig(output_dir=str(out), report_to="none", use_cpu=True, **sft_args)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    trainer.save_model(str(out / "model"))
    return time.perf_counter() - start


def ours(model_dir: Path, data: Path, out: Path, **config: Any) -> float:
    """Seconds for our training phase (`phases.training.train`) with the given config fields."""
    from phases.training import train
    from phases.training.config import parse_training_config

    start = time.perf_counter()
    result = train(
        parse_training_config(config),
        model=str(model_dir),
        train_path=data,
        eval_path=None,
        output_dir=out,
    )
    assert result.status == "completed", result.message
    return time.perf_counter() - start
