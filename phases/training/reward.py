"""Score a (prompt, response) pair with a reward model trained by `train(method="reward")`.

The text is built as RewardTrainer built it during training: the chat template for
conversational pairs, else prompt + response + eos token.
"""

from functools import lru_cache
from pathlib import Path
from typing import Any


def score(model_dir: Path, prompt: str, response: str) -> float:
    """The reward of `response` to `prompt` (higher is better) from the model in `model_dir`.

    The loaded model is kept per directory for the process (the last two), so scoring many
    pairs loads it once; `score.cache_clear()` forgets them after retraining into the same dir.
    """
    model, tokenizer = _load(str(Path(model_dir).resolve()))
    return reward_of(model, tokenizer, prompt, response)


def reward_of(scorer: Any, tokenizer: Any, prompt: Any, response: Any) -> float:
    """The scorer's reward for `response` to `prompt` (texts, or chat messages)."""
    import torch

    if isinstance(prompt, list):
        turns = (
            response if isinstance(response, list) else [{"role": "assistant", "content": response}]
        )
        text = tokenizer.apply_chat_template([*prompt, *turns], tokenize=False)
    else:
        text = str(prompt) + str(response)
        if tokenizer.eos_token and not text.endswith(tokenizer.eos_token):
            text += tokenizer.eos_token
    inputs = tokenizer(text, return_tensors="pt").to(scorer.device)
    with torch.no_grad():
        return float(scorer(**inputs).logits[0, 0])


def load_scorer(directory: Path):
    """(model, tokenizer) of a saved reward model or LoRA reward adapter, in eval mode."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"No reward model at {directory}: train one with method 'reward'.")
    tokenizer = AutoTokenizer.from_pretrained(directory)
    if (directory / "adapter_config.json").is_file():
        from peft import AutoPeftModelForSequenceClassification

        model = AutoPeftModelForSequenceClassification.from_pretrained(directory, num_labels=1)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(directory)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer


@lru_cache(maxsize=2)
def _load(model_dir: str):
    """`load_scorer`, kept for reuse per directory."""
    return load_scorer(Path(model_dir))


score.cache_clear = _load.cache_clear
