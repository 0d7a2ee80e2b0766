"""What a conversation is set up with: model, personality, tools and generation limits."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmfinetune_agent.chat.prompts import PRESETS, TOOLS_HINT
from llmfinetune_agent.config import refuse_boolean

PresetName = Literal["helpful", "concise", "coding", "teacher", "friendly", "custom"]


class ChatConfig(BaseModel):
    """A conversation's settings, fixed when it is created."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: str = Field(
        ...,
        min_length=1,
        max_length=4096,
        description=(
            "A registry model id (GET /models), or any model reference a run config accepts: "
            "'builtin:tiny-llama', 'builtin:smollm2-135m-instruct', a local model folder, a "
            "hub id in the local cache, a .gguf file; or a prompt artifact (a .json file with "
            "'model' and 'system_prompt')."
        ),
    )
    preset: PresetName = Field(
        "helpful",
        description="The personality: a named system prompt (helpful, concise, coding, teacher, "
        "friendly), or 'custom' with your own system_prompt.",
    )
    system_prompt: str | None = Field(
        None,
        min_length=1,
        max_length=20_000,
        description="Your own system prompt (implies preset 'custom').",
    )
    tools: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Tools the assistant may call: 'calculator', 'python' (a sandbox), or "
        "'package.module:function' from a module allow-listed by FINETUNE_AGENT_TOOL_MODULES.",
    )
    max_iterations: int = Field(
        5, ge=1, le=50, description="Tool rounds per message before the model must answer."
    )
    max_new_tokens: int = Field(256, ge=1, le=4096, description="Tokens per reply at most.")
    temperature: float | None = Field(
        None, gt=0, le=10, description="Sampling temperature; unset: greedy decoding."
    )

    @field_validator("max_iterations", "max_new_tokens", "temperature", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        # pydantic reads true as 1: "max_new_tokens": true gave replies of one token.
        return refuse_boolean(value)

    @field_validator("tools")
    @classmethod
    def _each_tool_once(cls, tools: list[str]) -> list[str]:
        # Named twice (over REST or the CLI), a tool would be offered to the model twice.
        return list(dict.fromkeys(tools))

    @model_validator(mode="after")
    def _custom_prompt(self) -> ChatConfig:
        if self.system_prompt is not None and self.preset not in ("helpful", "custom"):
            raise ValueError(
                f"give either preset '{self.preset}' or your own system_prompt, not both"
            )
        if self.system_prompt is not None:
            self.preset = "custom"
        elif self.preset == "custom":
            raise ValueError("preset 'custom' needs a system_prompt")
        return self

    def system_text(self, extra: str | None = None) -> str:
        """The system message: the preset's (or custom) prompt, then a prompt artifact's text
        and the tools hint when they apply."""
        parts = [self.system_prompt or PRESETS[self.preset]]
        if extra:
            parts.append(extra)
        if self.tools:
            parts.append(TOOLS_HINT)
        return "\n\n".join(parts)
