"""Training backends: which engine trains a run, and what each one can do.

`trl` trains in this process (`phases.training.run`); `autotrain` runs AutoTrain Advanced in a
virtual environment of its own (`phases.training.autotrain`), because its pins (transformers
4.48, TRL 0.13, pydantic 2.10) cannot share one with this project's. This module is the one
statement of what AutoTrain accepts, read by the training config's validation; it imports
nothing from the rest of the training phase.
"""

import difflib
from typing import Any

BACKENDS = ("trl", "autotrain")

# The methods AutoTrain's LLM trainer has (its `llm-sft`, `llm-dpo`, `llm-reward` tasks).
AUTOTRAIN_METHODS = ("sft", "dpo", "reward")

# AutoTrain 0.8.36's LLMTrainingParams fields that the run config already sets, each with the
# field to set instead, and those the phase itself owns (paths, hub, logging, safety on CPU).
AUTOTRAIN_FROM_RUN_CONFIG = {
    "model": "model.name_or_path",
    "lr": "training.learning_rate",
    "epochs": "training.epochs",
    "batch_size": "training.batch_size",
    "gradient_accumulation": "training.gradient_accumulation_steps",
    "scheduler": "training.lr_scheduler",
    "warmup_ratio": "training.warmup_ratio",
    "weight_decay": "training.weight_decay",
    "max_grad_norm": "training.max_grad_norm",
    "seed": "training.seed",
    "logging_steps": "training.logging_steps",
    "save_total_limit": "training.save_total_limit",
    "disable_gradient_checkpointing": "training.gradient_checkpointing",
    "peft": "training.lora",
    "lora_r": "training.lora.r",
    "lora_alpha": "training.lora.alpha",
    "lora_dropout": "training.lora.dropout",
    "target_modules": "training.lora.target_modules",
    "dpo_beta": "training.beta",
    "block_size": "data.max_length",
    "model_max_length": "data.max_length",
    "trainer": "training.method",
}
AUTOTRAIN_OWNED = (
    "project_name",
    "data_path",
    "train_split",
    "valid_split",
    "log",
    "push_to_hub",
    "username",
    "token",
    "chat_template",  # the phase renders chats with the run's own template
    "mixed_precision",  # off: CPU-safe
    "quantization",  # none: 4-bit needs a GPU (and bitsandbytes, left out of the environment)
    "distributed_backend",
    "use_flash_attention_2",  # neither flash-attn nor unsloth is in the environment
    "unsloth",
    "eval_strategy",  # AutoTrain's own validation crashes LoRA runs (it reloads a .bin adapter)
)
AUTOTRAIN_PASS_THROUGH = (
    "add_eos_token",
    "padding",
    "auto_find_batch_size",
    "optimizer",
    "merge_adapter",
    "model_ref",
    "max_prompt_length",
    "max_completion_length",
    "text_column",
    "prompt_text_column",
    "rejected_text_column",
)

ParamValue = str | int | float | bool | None


def check_autotrain_params(params: dict[str, Any]) -> None:
    """Raise ValueError naming the first key AutoTrain's pass-through does not take, and why."""
    for key in params:
        if key in AUTOTRAIN_FROM_RUN_CONFIG:
            raise ValueError(
                f"'{key}' is set from the run config: set {AUTOTRAIN_FROM_RUN_CONFIG[key]} instead"
            )
        if key in AUTOTRAIN_OWNED:
            raise ValueError(
                f"'{key}' is set by finetune-agent itself (paths, logging and CPU-safe settings)"
            )
        if key not in AUTOTRAIN_PASS_THROUGH:
            close = difflib.get_close_matches(key, AUTOTRAIN_PASS_THROUGH, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ValueError(
                f"unknown AutoTrain parameter '{key}': {hint}it takes "
                + ", ".join(AUTOTRAIN_PASS_THROUGH)
            )


def autotrain_refusal(
    method: str, epochs: float, max_steps: int | None, num_processes: int = 1
) -> str | None:
    """Why AutoTrain cannot train these settings, or None when it can."""
    if method not in AUTOTRAIN_METHODS:
        return (
            f"backend 'autotrain' trains {', '.join(AUTOTRAIN_METHODS)} (AutoTrain's methods); "
            f"method '{method}' trains with backend 'trl' only"
        )
    if max_steps is not None:
        return (
            "backend 'autotrain' trains whole epochs and has no max_steps: remove "
            "training.max_steps and set training.epochs"
        )
    if num_processes != 1:
        return (
            "backend 'autotrain' trains in one process on the machine executing the run: "
            "remove training.num_processes (or set it to 1), or use backend 'trl'"
        )
    if epochs != int(epochs):
        return f"backend 'autotrain' trains whole epochs: training.epochs {epochs:g} is not whole"
    return None
