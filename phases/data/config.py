"""The `data` section of a run config."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from models.config import MAX_TOKENS

DataFormat = Literal[
    "auto",
    "alpaca",
    "dolly",
    "prompt_completion",
    "messages",
    "sharegpt",
    "ultrachat",
    "oasst",
    "oasst_trees",
    "tool_calling",
    "xlam",
    "preference",
    "kto",
    "prompt",
    "text",
]


class DataConfig(BaseModel):
    """Where the training data is and how to read and split it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    train: str = Field(
        ...,
        description=(
            "Training data: a CSV, TSV, JSON, JSONL or Parquet file, a directory of them, or a "
            "folder written by `datasets`' save_to_disk."
        ),
        min_length=1,
    )
    eval: str | None = Field(
        None,
        description="Evaluation data (same formats). When absent, eval_fraction of train is held out.",
    )
    format: DataFormat = Field(
        "auto",
        description=(
            "Data format: 'auto' detects it from the columns; or one of alpaca "
            "(instruction/input/output), dolly (instruction/context/response), "
            "prompt_completion, messages (OpenAI chat), sharegpt (conversations/from/value), "
            "ultrachat (data: alternating texts), oasst (OpenAssistant message rows, trees "
            "flattened into conversations), oasst_trees (OpenAssistant's trees export), "
            "tool_calling (TRL: messages with tool_calls and tool turns, plus tools), xlam "
            "(query/tools/answers), preference (prompt/chosen/rejected), kto "
            "(prompt/completion/label true|false), prompt (prompt, optional reference: RL "
            "prompts), text."
        ),
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Column mapping from a standard name to the name in your file, "
            'e.g. {"prompt": "question", "completion": "answer"}.'
        ),
    )
    eval_fraction: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="Fraction of the de-duplicated training rows held out for evaluation when no eval file is given.",
    )
    # Seeds stay within the range numpy and torch accept (0..2^32-1).
    seed: int = Field(
        42, ge=0, le=2**32 - 1, description="Seed of the deterministic train/eval split."
    )
    max_length: int = Field(
        512,
        gt=0,
        le=MAX_TOKENS,
        description=(
            "Longest example in tokens (chat rows as rendered by the chat template, as the "
            "trainer sees them); longer rows are dropped and counted in the report."
        ),
    )
    deduplicate: bool = Field(True, description="Remove exact duplicate rows before splitting.")
    system_prompt_from: str | None = Field(
        None,
        description=(
            "A prompt artifact (a prompt run's prompt.json, or the folder holding it): its "
            "optimized system prompt becomes the system message of every chat row, training "
            "and eval alike, so an SFT run starts from the prompt a prompt run found."
        ),
    )
