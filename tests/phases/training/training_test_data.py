"""Tiny, learnable jsonl datasets for the training tests (helpers, not fixtures)."""

import json
from pathlib import Path

NAMES = ["Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Henry"]
CITIES = ["Paris", "Tokyo", "Lima", "Oslo"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def prompt_completion_rows(n: int = 16) -> list[dict]:
    return [
        {
            "prompt": f"{NAMES[i % 8]} lives in {CITIES[i % 4]}. JSON:",
            "completion": f' {{"name": "{NAMES[i % 8]}", "city": "{CITIES[i % 4]}"}}',
        }
        for i in range(n)
    ]


def chat_rows(n: int = 8) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "system", "content": "Answer with the city."},
                {"role": "user", "content": f"Where does {NAMES[i % 8]} live?"},
                {"role": "assistant", "content": CITIES[i % 4]},
            ]
        }
        for i in range(n)
    ]


def preference_rows(n: int = 16) -> list[dict]:
    """Chosen answers are JSON with the right name; rejected ones are a vague sentence."""
    return [
        {
            "prompt": f"{NAMES[i % 8]} is {20 + i} years old. JSON:",
            "chosen": f' {{"name": "{NAMES[i % 8]}", "age": {20 + i}}}',
            "rejected": " I do not know the answer to that",
        }
        for i in range(n)
    ]


def completion_logprob(model, tokenizer, prompt: str, completion: str) -> float:
    """Sum of log p(completion tokens | prompt), as DPO scores a completion."""
    import torch

    prompt_ids = tokenizer(prompt)["input_ids"]
    full_ids = tokenizer(prompt + completion + tokenizer.eos_token)["input_ids"]
    ids = torch.tensor([full_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0, :-1], dim=-1)
    targets = ids[0, 1:]
    token_logprobs = logprobs.gather(1, targets[:, None])[:, 0]
    return float(token_logprobs[len(prompt_ids) - 1 :].sum())


def mean_margin(model_dir: Path, rows: list[dict]) -> float:
    """Mean log p(chosen) - log p(rejected) over preference rows: what DPO widens."""
    from models.loading import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(str(model_dir), for_generation=True)
    margins = [
        completion_logprob(model, tokenizer, row["prompt"], row["chosen"])
        - completion_logprob(model, tokenizer, row["prompt"], row["rejected"])
        for row in rows
    ]
    return sum(margins) / len(margins)


def built_trainer(method: str, config, model_dir: Path, data: Path, work: Path):
    """The trainer train() would build for `method`, from the same pieces, for inspection."""
    from phases.training.callbacks import make_callbacks
    from phases.training.data import load_training_data
    from phases.training.trainers import BUILDERS, common_args

    callbacks = make_callbacks(stop_at_fraction=None, progress=None, should_stop=None)
    return BUILDERS[method](
        config,
        model=str(model_dir),
        train_data=load_training_data(data, method),
        eval_data=None,
        base_args=common_args(
            config, checkpoints_dir=work / "checkpoints", max_length=128, has_eval=False
        ),
        work_dir=work,
        callbacks=list(callbacks.values()),
        monitor=callbacks["monitor"],
        cache_dir=None,
    )
