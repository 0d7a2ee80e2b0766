"""Shared fixtures: an isolated home directory and the built-in tiny model, built once."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own FINETUNE_AGENT_HOME so runs and caches never leak between tests."""
    home = tmp_path / "home"
    monkeypatch.setenv("FINETUNE_AGENT_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in tiny Llama, built once per test session into a temp directory."""
    from models.builtin import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
