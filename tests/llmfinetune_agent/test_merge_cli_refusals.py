"""`finetune-agent merge` refuses, with exit code 2 and a message naming what is wrong, an
output that would destroy data (the config's own folder, a source, a registered model, an
existing file), registered sources a merge cannot read (GGUF files, prompts) and weights that
cancel out; every file is left as it was. A merge into its own earlier output replaces it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmfinetune_agent.cli import app
from llmfinetune_agent.run_store import RunStore
from llmfinetune_agent.settings import Settings


@pytest.fixture
def sources(tiny_model_dir: Path, tmp_path: Path) -> list[str]:
    """Two copies of the tiny Llama, the first registered."""
    import shutil

    for name in ("a", "b"):
        shutil.copytree(tiny_model_dir, tmp_path / "models" / name)
    record = RunStore(Settings.from_env().database_url).register_model(
        run_id=None,
        path=str(tmp_path / "models" / "a"),
        base_model="builtin:tiny-llama",
        lineage={"name": "a", "relation": "finetune", "format": "safetensors"},
    )
    return [f"model:{record.id}", str(tmp_path / "models" / "b")]


def _merge(folder: Path, **config) -> tuple[int, str]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "merge.json"
    path.write_text(json.dumps({"method": "linear", "add_to_registry": False, **config}))
    result = CliRunner().invoke(app, ["merge", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def _files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_an_output_holding_other_files_or_the_config_is_refused(sources, tmp_path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("mine")
    code, output = _merge(project, sources=sources, output=".")
    assert code == 2, output
    assert f"error: output {project} holds the config ({project / 'merge.json'})" in output
    assert sorted(p.name for p in project.iterdir()) == ["merge.json", "notes.txt"]


def test_an_output_that_is_a_source_or_a_registered_model_is_refused(sources, tmp_path) -> None:
    before = _files(tmp_path / "models")
    code, output = _merge(tmp_path / "cfg", sources=sources, output=sources[1])
    assert code == 2 and f"output {sources[1]} is the merge source {sources[1]}" in output
    other = [sources[1], str(tmp_path / "models" / "b")]
    code, output = _merge(tmp_path / "cfg", sources=other, output=str(tmp_path / "models" / "a"))
    assert code == 2 and "is the registered model" in output, output
    code, output = _merge(tmp_path / "cfg", sources=sources, output=str(tmp_path / "models"))
    assert code == 2 and "holds the merge source" in output
    assert _files(tmp_path / "models") == before


def test_an_output_that_is_a_file_is_refused_and_nothing_is_left(sources, tmp_path) -> None:
    held = tmp_path / "cfg" / "held.jsonl"
    held.parent.mkdir()
    held.write_text("keep\n")
    code, output = _merge(tmp_path / "cfg", sources=sources, output="held.jsonl")
    assert code == 2 and f"output {held} is an existing file" in output
    assert "Traceback" not in output and held.read_text() == "keep\n"
    assert sorted(p.name for p in held.parent.iterdir()) == ["held.jsonl", "merge.json"]


@pytest.mark.parametrize(
    ("kind", "fmt", "path", "says"),
    [("gguf", "gguf", "m.gguf", "a GGUF file"), ("prompt", "prompt", "prompt.json", "a prompt")],
)
def test_registered_gguf_files_and_prompts_are_not_merge_sources(
    kind, fmt, path, says, sources, tmp_path
) -> None:
    (tmp_path / path).write_text("{}")
    record = RunStore(Settings.from_env().database_url).register_model(
        run_id=None,
        path=str(tmp_path / path),
        base_model="builtin:tiny-llama",
        lineage={"name": kind, "kind": kind, "relation": "finetune", "format": fmt},
    )
    code, output = _merge(tmp_path / "cfg", sources=[sources[0], f"model:{record.id}"], output="o")
    assert code == 2, output
    assert f"error: merge source model:{record.id} is {says}; merges take safetensors" in output
    assert not (tmp_path / "cfg" / "o").exists()


def test_cancelling_weights_are_refused_naming_weights(sources, tmp_path) -> None:
    code, output = _merge(tmp_path / "cfg", sources=sources, weights=[1, -1], output="o")
    assert code == 2 and "weights: weights [1.0, -1.0] sum to 0" in output
    assert not (tmp_path / "cfg" / "o").exists()


def test_a_merge_replaces_its_own_earlier_output(sources, tmp_path) -> None:
    code, output = _merge(tmp_path / "cfg", sources=sources, output="o")
    assert code == 0, output
    first = _files(tmp_path / "cfg" / "o")
    code, output = _merge(tmp_path / "cfg", sources=sources, weights=[0.9, 0.1], output="o")
    assert code == 0, output
    again = _files(tmp_path / "cfg" / "o")
    assert again.keys() == first.keys() and again != first
    assert sorted(p.name for p in (tmp_path / "cfg").iterdir()) == ["merge.json", "o"]
