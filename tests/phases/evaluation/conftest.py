"""Eval files in each normalized kind, and the tiny model loaded once for generation."""

import json
from pathlib import Path

import pytest

PAIRS = [
    ("Alice is 30 years old and lives in Paris.", '{"name": "Alice", "age": 30}'),
    ("Bob lives in Oslo.", '{"name": "Bob"}'),
    ("Q: what is the answer? A:", " 42"),
    ("Tell me about Emma, who is a doctor in Rome and works at a large house", " She is."),
    ("hello", " world"),
    ("The first year of school was good", " yes"),
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    """Write records as JSON lines and return the path."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def jsonl_file(tmp_path: Path):
    """Write records to <tmp>/eval.jsonl and return its path."""
    return lambda records: write_jsonl(tmp_path / "eval.jsonl", records)


@pytest.fixture
def prompt_completion_eval(tmp_path: Path) -> Path:
    """A small prompt/completion eval split."""
    records = [{"prompt": p, "completion": c} for p, c in PAIRS]
    return write_jsonl(tmp_path / "eval.jsonl", records)


@pytest.fixture
def chat_eval(tmp_path: Path) -> Path:
    """A small chat eval split (one with a system message)."""
    records = [
        {"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": c.strip()}]}
        for p, c in PAIRS[:3]
    ]
    records[0]["messages"].insert(0, {"role": "system", "content": "Answer in JSON."})
    return write_jsonl(tmp_path / "chat_eval.jsonl", records)


@pytest.fixture(scope="module")
def tiny_for_generation(tiny_model_dir: Path):
    """The tiny Llama and its tokenizer, loaded once per test module for generation."""
    from models.loading import load_model_and_tokenizer

    return load_model_and_tokenizer(str(tiny_model_dir), for_generation=True)
