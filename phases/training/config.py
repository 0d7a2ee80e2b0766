"""The `training` section of a run config (method, hyper-parameters, LoRA, checkpointing)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TrainingMethod = Literal["sft", "dpo", "reward"]


class LoraSettings(BaseModel):
    """LoRA adapter settings (PEFT). Present means: train an adapter, not the full model."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, gt=0, description="Rank of the LoRA update matrices.")
    alpha: int = Field(32, gt=0, description="LoRA scaling numerator (lora_alpha).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA branch.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear",
        description="Module names to adapt, or 'all-linear' for every linear layer but the head.",
    )


class TrainingConfig(BaseModel):
    """How to train: method, schedule, batching, checkpoints."""

    model_config = ConfigDict(extra="forbid")

    method: TrainingMethod = Field(
        "sft",
        description=(
            "'sft' (supervised fine-tuning), 'dpo' (direct preference optimisation, needs "
            "preference data) or 'reward' (a reward model on preference pairs)."
        ),
    )
    lora: LoraSettings | None = Field(
        None, description="LoRA adapter settings; null trains all weights (full fine-tuning)."
    )
    epochs: float = Field(3.0, gt=0, description="Passes over the training data.")
    max_steps: int | None = Field(
        None, gt=0, description="Stop after this many optimizer steps (overrides epochs)."
    )
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate.")
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = Field(
        "linear", description="Learning-rate schedule after warm-up."
    )
    warmup_ratio: float = Field(
        0.0, ge=0.0, lt=1.0, description="Fraction of steps spent warming the learning rate up."
    )
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    batch_size: int = Field(8, gt=0, description="Examples per device per step.")
    gradient_accumulation_steps: int = Field(
        1, gt=0, description="Micro-batches accumulated into one optimizer step."
    )
    packing: Literal["auto", "on", "off"] = Field(
        "auto",
        description=(
            "Pack several examples into one sequence. 'auto' packs only where it pays: on a GPU "
            "with variable-length data (on CPU, plain padding measured faster)."
        ),
    )
    completion_only_loss: bool = Field(
        True,
        description="Take the loss on the completion / assistant reply only, not on the prompt.",
    )
    gradient_checkpointing: bool = Field(
        False, description="Trade compute for memory by recomputing activations."
    )
    beta: float = Field(0.1, gt=0, description="DPO: strength of the KL penalty to the reference.")
    save_steps: int = Field(
        50, gt=0, description="Save a resumable checkpoint every N optimizer steps (crash safety)."
    )
    save_total_limit: int = Field(2, gt=0, description="Keep at most this many step checkpoints.")
    logging_steps: int = Field(5, gt=0, description="Log loss and learning rate every N steps.")
    eval_steps: int | None = Field(
        None, gt=0, description="Compute eval loss every N steps (default: once per epoch)."
    )
    seed: int = Field(42, description="Seed for initialisation and data order.")
