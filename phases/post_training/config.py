"""The `post_training` section of a run config (merge, compression)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PostTrainingConfig(BaseModel):
    """What happens to the trained model before it is registered."""

    model_config = ConfigDict(extra="forbid")

    merge_lora: bool = Field(
        True, description="Merge a LoRA adapter into the base weights for the final model."
    )
    quantize: Literal["int8"] | None = Field(
        None, description="Compress the final model (dynamic int8 quantisation on CPU); null keeps it as is."
    )
