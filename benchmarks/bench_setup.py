"""What the benchmarks share: a small model, short chat data, a bare TRL run, the
one-prompt-at-a-time `generate` baseline, and starting the REST server on loopback.

The training model is the built-in Llama architecture at 4 layers x 256 wide (the hub is
offline here); the data is the quickstart's short chat examples (person -> JSON).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
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


def quickstart_examples(count: int) -> list:
    """The first `count` quickstart chat rows as evaluation examples (the prompt is the user
    turn, the reference the JSON answer)."""
    from phases.evaluation.eval_data import parse_record

    lines = QUICKSTART.read_text().splitlines()[:count]
    return [parse_record(json.loads(line), f"{QUICKSTART}:{i + 1}") for i, line in enumerate(lines)]


def new_tokens(row: list[int], ends: set[int]) -> int:
    """Tokens a completion cost: up to and including the first end token (as the API counts)."""
    end = next((i for i, token in enumerate(row) if token in ends), None)
    return len(row) if end is None else end + 1


def one_at_a_time(
    model: Any, tokenizer: Any, prompts: list[list[int]], *, max_new_tokens: int
) -> list[tuple[int, float]]:
    """The baseline: a plain loop of greedy `model.generate`, one prompt at a time, no
    padding. Returns (new tokens, seconds) per prompt."""
    import torch

    from models.generation import eos_ids

    ends = eos_ids(model, tokenizer)
    done = []
    with torch.no_grad():
        for prompt in prompts:
            ids = torch.tensor([prompt])
            start = time.perf_counter()
            output = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=sorted(ends),
            )
            seconds = time.perf_counter() - start
            done.append((new_tokens(output[0, len(prompt) :].tolist(), ends), seconds))
    return done


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict[str, str], port: int) -> subprocess.Popen:
    """`finetune-agent serve --no-workers` (uvicorn) on loopback, once `/healthz` answers."""
    import httpx

    exe = shutil.which("finetune-agent") or f"{sys.executable} -m llmfinetune_agent.cli"
    server = subprocess.Popen(
        [*exe.split(), "serve", "--no-workers", "--port", str(port), "--log-level", "warning"],
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the server did not start")
