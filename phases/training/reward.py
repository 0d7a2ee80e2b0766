"""Score a (prompt, response) pair with a reward model trained by `train(method="reward")`.

The text is built as RewardTrainer built it during training: prompt + response + eos token.
"""

from functools import lru_cache
from pathlib import Path


def score(model_dir: Path, prompt: str, response: str) -> float:
    """The reward of `response` to `prompt` (higher is better) from the model in `model_dir`.

    The loaded model is kept per directory for the process (the last two), so scoring many
    pairs loads it once; `score.cache_clear()` forgets them after retraining into the same dir.
    """
    import torch

    model, tokenizer = _load(str(Path(model_dir).resolve()))
    text = prompt + response
    if tokenizer.eos_token and not text.endswith(tokenizer.eos_token):
        text += tokenizer.eos_token
    inputs = tokenizer(text, return_tensors="pt").to(model.device)
    with torch.no_grad():
        return float(model(**inputs).logits[0, 0])


@lru_cache(maxsize=2)
def _load(model_dir: str):
    """(model, tokenizer) of a saved reward model or LoRA reward adapter, kept for reuse."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    directory = Path(model_dir)
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


score.cache_clear = _load.cache_clear
