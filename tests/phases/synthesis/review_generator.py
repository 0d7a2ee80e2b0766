"""A generator model that can follow the format, for the tests: the built-in tiny Llama trained
for a short while on generation prompt -> new example pairs of a structured task (a short
product review -> JSON with its sentiment and topic).

The prompts are the synthesis phase's own (`generation_messages`) rendered by the local chat
adapter, so the model learns exactly what it will be asked at generation time. Trained once per
test session into the session's base temp dir (shared by every test module that asks).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

TASK = "Classify a short product review as JSON with its sentiment and area."
# The area is a category the review's words imply, never a word copied from it.
AREAS = {
    "hardware": ("battery", "screen", "keyboard", "speaker", "camera", "charger"),
    "service": ("delivery", "support team", "courier", "return process"),
    "value": ("price", "subscription", "discount"),
}
OPENERS = ("", "Honestly, ", "Sadly, ", "Wow, ", "After a month, ", "So far ", "Overall ")
GOOD = (
    "works perfectly",
    "is excellent",
    "exceeded my hopes",
    "is worth every cent",
    "feels solid",
    "is bright and clear",
    "arrived quickly",
    "never lets me down",
)
BAD = (
    "broke within a week",
    "is awful",
    "stopped working",
    "was a waste of money",
    "feels cheap",
    "keeps failing",
    "arrived damaged",
    "is far too slow",
)


def review_record(rng: random.Random) -> dict:
    """One chat example of the structured task."""
    area, positive = rng.choice(sorted(AREAS)), rng.random() < 0.5
    phrase = rng.choice(GOOD if positive else BAD)
    review = f"{rng.choice(OPENERS)}the {rng.choice(AREAS[area])} {phrase}."
    review = review[0].upper() + review[1:]
    answer = json.dumps({"sentiment": "positive" if positive else "negative", "area": area})
    return {
        "messages": [
            {"role": "user", "content": review},
            {"role": "assistant", "content": answer},
        ]
    }


def seed_records(count: int = 10, seed: int = 7) -> list[dict]:
    """`count` distinct seed examples."""
    rng, seen, out = random.Random(seed), set(), []
    while len(out) < count:
        record = review_record(rng)
        key = json.dumps(record)
        if key not in seen:
            seen.add(key)
            out.append(record)
    return out


def train_review_generator(base_dir: Path, out_dir: Path, steps: int = 150) -> Path:
    """Fine-tune the tiny model at `base_dir` into `out_dir` to answer generation prompts with
    well-formed new examples; returns `out_dir` (reused when already trained)."""
    if (out_dir / "config.json").is_file():
        return out_dir
    import torch

    from llmfinetune_agent.chat_model import LocalChatModel
    from models.config import ModelConfig
    from phases.synthesis.prompts import generation_messages, render_example

    chat = LocalChatModel(local_model=ModelConfig(name_or_path=str(base_dir)))
    model, tokenizer = chat._model()
    model.train()
    torch.manual_seed(0)
    rng = random.Random(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(steps):
        batch = [_pair(chat, tokenizer, rng, generation_messages, render_example) for _ in range(8)]
        width = max(len(ids) for ids, _ in batch)
        pad = tokenizer.pad_token_id
        ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in batch])
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
        loss = model(input_ids=ids, attention_mask=(labels != -100) | (ids != pad), labels=labels)
        loss.loss.backward()
        for group in optimizer.param_groups:
            group["lr"] = 3e-3 * min(1.0, (step + 1) / 20) * (1 - step / steps) + 1e-4
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def _pair(chat, tokenizer, rng, generation_messages, render_example) -> tuple[list, list]:
    exemplars = [review_record(rng) for _ in range(2)]
    prompt = chat.render_prompt(generation_messages(TASK, exemplars, "chat"))
    target = render_example(review_record(rng), "chat") + tokenizer.eos_token
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    return prompt_ids + target_ids, [-100] * len(prompt_ids) + target_ids
