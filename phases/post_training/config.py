"""The `post_training` section of a run config (merge, compression)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class PostTrainingConfig(BaseModel):
    """What happens to the trained model before it is registered."""

    model_config = ConfigDict(extra="forbid")

    merge_lora: bool = Field(
        True, description="Merge a LoRA adapter into the base weights for the final model."
    )
    quantize: str | None = Field(
        None,
        description="Compression of the final model. Not available in this version: keep it null.",
    )

    @field_validator("quantize")
    @classmethod
    def _no_compression_yet(cls, value: Any) -> None:
        # Refused rather than ignored: a user asking for int8 must not get a float32 model silently.
        if value is not None:
            raise ValueError(
                f"compression ({value!r}) is not available in this version; set quantize to null"
            )
        return None
