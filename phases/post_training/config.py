"""The `post_training` section of a run config: merge, quantize/export, the quality gates."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from phases.post_training.merge_config import RunMergeSpec

QUANTIZE_TARGETS = ("int8", "gguf:q8_0", "gguf:q4_k_m", "gguf:bf16", "ternary")
# Which gate thresholds hold a target: 8-bit-or-better ones, or 4-bit-and-below ones.
PRECISION_CLASS = {
    "int8": "8bit",
    "gguf:q8_0": "8bit",
    "gguf:bf16": "8bit",
    "gguf:q4_k_m": "4bit",
    "ternary": "4bit",
}


class ReleaseGates(BaseModel):
    """What a post-training candidate must keep of the model it was made from (on the run's
    eval set) to stay a candidate; a candidate that misses is rolled back."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    retention_8bit: float = Field(
        0.99,
        ge=0,
        le=10,
        description="int8, q8_0, bf16: each gated metric at least this share of the source's.",
    )
    kl_8bit: float = Field(
        0.002,
        ge=0,
        le=100,
        description="int8, q8_0, bf16: mean KL divergence of next-token distributions at most this.",
    )
    retention_4bit: float = Field(
        0.95, ge=0, le=10, description="q4_k_m and ternary: metric retention at least this."
    )
    kl_4bit: float = Field(
        0.035, ge=0, le=100, description="q4_k_m and ternary: mean KL divergence at most this."
    )
    merge_min_gain: float = Field(
        0.0,
        ge=-1,
        le=1,
        description="A merge's held-out score must be at least its best parent's plus this.",
    )


class PostTrainingConfig(BaseModel):
    """What happens to the accepted model before it is released: merges, quantized and GGUF
    exports, each gated on the run's own eval set, and the release gate."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    merge_lora: bool = Field(
        True, description="Merge a LoRA adapter into the base weights for the final model."
    )
    quantize: list[str] = Field(
        default_factory=list,
        max_length=len(QUANTIZE_TARGETS),
        description=(
            "Compressed versions to make of the accepted (or merged) model, each gated and shown "
            "at approve_release: int8 (torchao weight-only, safetensors), gguf:q8_0, gguf:q4_k_m, "
            "gguf:bf16 (one GGUF file with tokenizer and chat template, for llama.cpp / Ollama / "
            "LM Studio), ternary (BitNet b1.58 absmean weights; experimental)."
        ),
    )
    ternary_calibration_steps: int = Field(
        0,
        ge=0,
        le=10_000,
        description="ternary: steps of straight-through-estimator fine-tuning on the training "
        "data after rounding (0: none).",
    )
    q8_0_rounding: Literal["gptq", "nearest"] = Field(
        "gptq",
        description="gguf:q8_0: `gptq` rounds the blocks' linear weights against their inputs "
        "on the training data (lower error, same format); `nearest` rounds as llama.cpp does.",
    )
    merge: RunMergeSpec | None = Field(
        None, description="A merge of this run's model with others, gated on `merge.held_out`."
    )
    gates: ReleaseGates = Field(
        default_factory=ReleaseGates,
        description="Thresholds of the quality gates: what a candidate must keep of its source.",
    )
    speed_tokens: int = Field(
        32, ge=1, le=4096, description="Tokens generated to measure each candidate's CPU tokens/s."
    )

    @field_validator("quantize", mode="before")
    @classmethod
    def _targets(cls, value: Any) -> Any:
        if value is None:  # configs written before targets existed said `"quantize": null`
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            return value
        unknown = [t for t in value if t not in QUANTIZE_TARGETS]
        if unknown:
            raise ValueError(
                f"unknown target(s) {unknown}; choose from {', '.join(QUANTIZE_TARGETS)}"
            )
        if len(set(value)) != len(value):
            raise ValueError("a target is listed twice")
        return value

    def has_work(self) -> bool:
        """True when there is something to make and gate before the release."""
        return bool(self.quantize or self.merge)
