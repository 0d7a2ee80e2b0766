"""Two small tasks and a LoRA adapter trained on each, over one tiny base model.

Task "capitals" answers a country with its capital; task "opposites" answers a word with its
opposite. Each adapter is trained with real gradient steps until it has learned its own task
(its loss on that task falls far below the base model's) and nothing of the other.
"""

from __future__ import annotations

import json
from pathlib import Path

CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Peru": "Lima",
    "Kenya": "Nairobi",
    "Norway": "Oslo",
    "Egypt": "Cairo",
    "Chile": "Santiago",
    "India": "Delhi",
}
OPPOSITES = {
    "hot": "cold",
    "up": "down",
    "early": "late",
    "big": "small",
    "open": "closed",
    "fast": "slow",
    "light": "dark",
    "full": "empty",
}
TASKS = {
    "capitals": [(f"Capital of {k}?", v) for k, v in CAPITALS.items()],
    "opposites": [(f"Opposite of {k}?", v) for k, v in OPPOSITES.items()],
}


def write_task(task: str, path: Path) -> Path:
    """The task's examples as chat JSONL (the eval format)."""
    rows = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in TASKS[task]
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def train_adapter(
    base_dir: Path, task: str, output_dir: Path, *, steps: int = 40, seed: int = 0, **lora
) -> Path:
    """A LoRA adapter on every linear layer of `base_dir`, trained on one task's answers: each
    step one batch of all eight examples (right padded, loss on the answers only)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from phases.evaluation.eval_data import load_eval_examples
    from phases.evaluation.generation import teacher_forcing_ids

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base_dir),
        LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", **lora),
    )
    examples = load_eval_examples(write_task(task, output_dir.parent / f"{task}.jsonl"))
    pairs = [teacher_forcing_ids(tokenizer, e) for e in examples]
    width = max(len(ids) for ids, _ in pairs)
    input_ids = torch.full((len(pairs), width), tokenizer.pad_token_id)
    labels = torch.full((len(pairs), width), -100)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, (ids, first) in enumerate(pairs):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, first : len(ids)] = torch.tensor(ids[first:])
        mask[row, : len(ids)] = 1
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    model.train()
    for _ in range(steps):
        model(input_ids=input_ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir
