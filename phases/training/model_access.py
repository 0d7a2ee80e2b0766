"""Load the base model for training: a causal LM, or a one-logit reward head on the same base.

Imported only inside `train()` / `score()`: it pulls in torch and transformers.
"""

from pathlib import Path

from models.config import ModelConfig


def resolve_model_dir(model: ModelConfig | str, *, cache_dir: Path | None) -> Path:
    """The local Hugging Face directory of a model reference (built or imported if needed)."""
    from models.loading import resolve_model_path

    return Path(resolve_model_path(model, cache_dir=cache_dir))


def load_causal_lm(model: ModelConfig | str, *, cache_dir: Path | None, keep_adapter: bool):
    """(model, tokenizer) for training, through the shared loader, with a pad token set.

    A LoRA adapter given as the base model is trained further when `keep_adapter` (LoRA
    training); for full fine-tuning it is merged into its base first.
    """
    from models.loading import load_model_and_tokenizer

    causal_lm, tokenizer = load_model_and_tokenizer(model, cache_dir=cache_dir)
    if is_adapter(causal_lm) and not keep_adapter:
        causal_lm = causal_lm.merge_and_unload()
    _ensure_pad_token(causal_lm, tokenizer)
    return causal_lm, tokenizer


def is_adapter(model) -> bool:
    """True for a PEFT model (a base model with an adapter on top)."""
    from accelerate.utils import is_peft_model

    return is_peft_model(model)


def load_reward_model(model: ModelConfig | str, *, cache_dir: Path | None):
    """(sequence classifier with num_labels=1, tokenizer) from the base model's weights.

    The score head is new (randomly initialised, seeded by the caller); the backbone is the base.
    """
    import torch
    from transformers import AutoModelForSequenceClassification

    from models.loading import load_tokenizer

    directory = resolve_model_dir(model, cache_dir=cache_dir)
    if (directory / "adapter_config.json").is_file():
        from phases.training.data import TrainingInputError

        raise TrainingInputError(
            f"{directory} is a LoRA adapter; a reward model is built from a full model. "
            "Merge the adapter into its base model first, or start from the base model."
        )
    tokenizer = load_tokenizer(model, cache_dir=cache_dir)
    trust = isinstance(model, ModelConfig) and model.trust_remote_code
    dtype = torch.bfloat16 if _wants_bf16(model) else torch.float32
    scorer = AutoModelForSequenceClassification.from_pretrained(
        directory, num_labels=1, dtype=dtype, trust_remote_code=trust
    )
    _ensure_pad_token(scorer, tokenizer)
    return scorer, tokenizer


def _wants_bf16(model: ModelConfig | str) -> bool:
    import torch

    dtype = model.dtype if isinstance(model, ModelConfig) else "auto"
    if dtype == "bfloat16":
        return True
    return dtype == "auto" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def _ensure_pad_token(model, tokenizer) -> None:
    """Batches need padding, and a sequence classifier finds the last real token by pad id."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
