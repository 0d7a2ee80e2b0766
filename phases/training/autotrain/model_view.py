"""The base model as AutoTrain's transformers (4.48) reads it.

Models saved by this project's transformers (5.x: built-in models, imported GGUF files) write
config and tokenizer files 4.48 does not know: `rope_parameters` instead of `rope_theta`, a
`TokenizersBackend` tokenizer class, special tokens under `extra_special_tokens`, the chat
template in its own `chat_template.jinja`. `compatible_model_dir` makes a folder of symlinks to
the weights with those two files rewritten; the original is never touched. A hub id is passed
through (the hub's files are in the format AutoTrain reads).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

REWRITTEN = ("config.json", "tokenizer_config.json")


def compatible_model_dir(model_path: str, dest: Path, *, tokenizer: Any = None) -> str:
    """A folder AutoTrain can load `model_path` from (`dest`), or the hub id as it is.

    `tokenizer`, when given, supplies the chat template in use (the run's override included).
    """
    source = Path(model_path)
    if not source.is_dir():
        return model_path
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for item in source.iterdir():
        if item.name not in REWRITTEN:
            (dest / item.name).symlink_to(item.resolve())
    config = _read(source / "config.json")
    (dest / "config.json").write_text(json.dumps(legacy_model_config(config), indent=1))
    template = getattr(tokenizer, "chat_template", None)
    if (source / "tokenizer_config.json").is_file():
        settings = _read(source / "tokenizer_config.json")
        if not template and (source / "chat_template.jinja").is_file():
            template = (source / "chat_template.jinja").read_text(encoding="utf-8")
        rewritten = legacy_tokenizer_config(settings, chat_template=template)
        (dest / "tokenizer_config.json").write_text(json.dumps(rewritten, indent=1))
    return str(dest)


def legacy_model_config(config: dict[str, Any]) -> dict[str, Any]:
    """A model config in the keys transformers 4.x reads."""
    config = dict(config)
    if "dtype" in config and "torch_dtype" not in config:
        config["torch_dtype"] = config.pop("dtype")
    rope = config.pop("rope_parameters", None)
    if isinstance(rope, dict) and "rope_theta" not in config:
        rope = dict(rope)
        config["rope_theta"] = rope.pop("rope_theta", 10000.0)
        if rope.get("rope_type", "default") != "default":
            config["rope_scaling"] = rope
    return config


def legacy_tokenizer_config(
    settings: dict[str, Any], *, chat_template: str | None
) -> dict[str, Any]:
    """A tokenizer config in the keys transformers 4.x reads, with the chat template inline."""
    settings = dict(settings)
    settings.pop("backend", None)
    if settings.get("tokenizer_class") in (None, "TokenizersBackend"):
        settings["tokenizer_class"] = "PreTrainedTokenizerFast"
    extra = settings.get("extra_special_tokens")
    if isinstance(extra, list):
        settings.pop("extra_special_tokens")
        settings.setdefault("additional_special_tokens", extra)
    if chat_template:
        settings["chat_template"] = chat_template
    return settings


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
