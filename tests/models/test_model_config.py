"""The `model` section's own checks: a chat template that Jinja cannot compile is refused when
the config is validated, naming `model.chat_template`, not when a run first renders a chat."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from llmfinetune_agent.cli import app
from models.builtin import CHAT_TEMPLATE
from models.config import ModelConfig

REPO = Path(__file__).resolve().parents[2]
UNCLOSED = "{% for m in messages %}{{ m.content }"


def test_a_template_jinja_cannot_compile_is_refused_with_jinjas_reason() -> None:
    with pytest.raises(ValidationError) as caught:
        ModelConfig(chat_template=UNCLOSED)
    (error,) = caught.value.errors()
    assert error["loc"] == ("chat_template",)
    assert error["msg"] == (
        "Value error, not a valid Jinja template: unexpected '}' (line 1 of the template)"
    )


def test_templates_transformers_accepts_are_accepted() -> None:
    """The built-in template uses transformers' `{% generation %}` block; loop controls too."""
    assert ModelConfig(chat_template=CHAT_TEMPLATE).chat_template == CHAT_TEMPLATE
    loop = "{% for m in messages %}{% if loop.first %}{% continue %}{% endif %}{{ m }}{% endfor %}"
    assert ModelConfig(chat_template=loop).chat_template == loop
    with pytest.raises(ValidationError, match="'endgeneration'"):
        ModelConfig(chat_template="{% generation %}{{ messages }}")


def test_config_validate_names_the_field(tmp_path: Path) -> None:
    config = json.loads((REPO / "configs" / "quickstart-tiny.json").read_text())
    config["data"]["train"] = str(REPO / "configs" / "data" / "quickstart" / "train.jsonl")
    config["model"]["chat_template"] = UNCLOSED
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = CliRunner().invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 2, result.output
    assert (
        "model.chat_template: not a valid Jinja template: unexpected '}' (line 1 of the template)"
        in result.output
    )
