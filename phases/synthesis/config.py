"""The `data_generation` section of a run config (synthetic examples from seed samples)."""

from pydantic import BaseModel, ConfigDict, Field


class DataGenerationConfig(BaseModel):
    """Synthetic data generation from the seed samples and the task description."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Generate new training examples from the seed data.")
    num_examples: int = Field(100, gt=0, description="How many new examples to ask for.")
    generator: str | None = Field(
        None,
        description="Model that writes the examples (same forms as model.name_or_path); default: the base model.",
    )
    temperature: float = Field(0.8, gt=0, description="Sampling temperature of the generator.")
    min_quality: float = Field(
        0.5, ge=0.0, le=1.0, description="Drop generated examples scoring below this quality."
    )
