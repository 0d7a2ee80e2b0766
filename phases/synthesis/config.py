"""The `data_generation` section of a run config (synthetic examples from seed samples)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.config import MAX_TOKENS

# SmolLM2-135M generating on 2 CPU cores, 2026-12-06: 0.48, 0.59 and 0.66 replies/s at batch
# 4, 8 and 16, and no more at 32. On a GPU a batch is nearly free up to its memory; 64 keeps a
# 135M-1B generator's padded batch of 160-token replies within a few GB (not measured here).
CPU_BATCH, GPU_BATCH = 16, 64


class DataGenerationConfig(BaseModel):
    """Synthetic data generation from the seed samples and the task description."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(False, description="Generate new training examples from the seed data.")
    num_examples: int = Field(
        100, gt=0, le=1_000_000, description="How many new examples to ask for."
    )
    generator: str | None = Field(
        None,
        description="Model that writes the examples (same forms as model.name_or_path); default: the base model.",
    )
    chat_model: str | None = Field(
        None,
        description=(
            "Instead of a local model: any langchain-core chat model class as 'module:Class', "
            "e.g. 'langchain_openai:ChatOpenAI' for an OpenAI-compatible endpoint."
        ),
    )
    chat_model_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            'Arguments for chat_model, e.g. {"model": "my-model", "base_url": '
            '"http://localhost:8000/v1"}; keep API keys in the environment, not here.'
        ),
    )
    # Past about 10 sampling is uniform noise over the vocabulary. 0.6 measured with
    # SmolLM2-135M-Instruct on the quickstart seeds: 51% of candidates kept (0.8: 41%, most of
    # its drops outputs naming a city or name the input never states).
    temperature: float = Field(
        0.6, gt=0, le=10, description="Sampling temperature of the generator."
    )
    min_quality: float = Field(
        0.5, ge=0.0, le=1.0, description="Drop generated examples scoring below this quality."
    )
    output_first: bool | None = Field(
        None,
        description=(
            "Ask for the output before the input (the input is then written to state what the "
            "output holds). Default: when the seeds' outputs copy values from their inputs "
            "(a name, an age)."
        ),
    )
    exemplars_per_prompt: int = Field(
        3,
        gt=0,
        le=100,
        description="Seed examples shown in each generation prompt (drawn at random).",
    )
    batch_size: int | None = Field(
        None,
        gt=0,
        le=4096,
        description=(
            "Generation prompts sent together. Default: sized to the machine, "
            f"{CPU_BATCH} on a CPU, {GPU_BATCH} on a GPU."
        ),
    )
    max_new_tokens: int = Field(
        160, gt=0, le=MAX_TOKENS, description="Tokens a local generator may write per example."
    )
    max_attempts_factor: float = Field(
        3.0,
        ge=1.0,
        le=100.0,
        description="Stop after num_examples x this many candidates, even if fewer were kept.",
    )
    give_up_after: int = Field(
        16,
        gt=0,
        le=100_000_000,  # num_examples x max_attempts_factor at most
        description=(
            "Stop early when this many candidates were made and none was kept (a generator too "
            "weak for the task)."
        ),
    )
    near_duplicate_threshold: float = Field(
        0.85,
        gt=0.0,
        le=1.0,
        description=(
            "MinHash Jaccard similarity at or above which a generated example counts as a near "
            "duplicate of a seed, a kept example or an eval example."
        ),
    )
    seed: int = Field(
        0, ge=0, le=2**32 - 1, description="Random seed for choosing exemplars and passages."
    )

    def generation_batch_size(self) -> int:
        """`batch_size`, or the machine's default: GPU_BATCH when CUDA is available, else
        CPU_BATCH (a remote chat_model gets the same number of prompts per call)."""
        if self.batch_size:
            return self.batch_size
        import torch  # only when generating: the config stays light to import

        return GPU_BATCH if torch.cuda.is_available() else CPU_BATCH

    @model_validator(mode="after")
    def _one_generator(self) -> "DataGenerationConfig":
        if self.generator and self.chat_model:
            raise ValueError(
                "data_generation.generator (a local model) and data_generation.chat_model (a "
                "langchain-core chat model) both name a generator: keep one of them"
            )
        if self.chat_model and ":" not in self.chat_model:
            raise ValueError(
                f"data_generation.chat_model must look like 'module:Class' "
                f"(e.g. 'langchain_openai:ChatOpenAI'), got {self.chat_model!r}"
            )
        return self
