"""Where a merge writes: only a folder an earlier merge wrote is ever replaced; an output that
is a file, a source, holds a source or lies inside one, or holds anyone else's files is refused
before any work and left as it was; a merge whose weights cancel out (NaN) is refused, not
written; sources that are not model or adapter folders are named."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from phases.post_training.errors import PostTrainingInputError
from phases.post_training.merge_config import MergeSpec
from phases.post_training.merge_output import MARKER, check_replaceable
from phases.post_training.merging import merge_models

LINEAR = MergeSpec(method="linear", sources=["a", "b"], weights=[0.5, 0.5])


@pytest.fixture(scope="module")
def models(tiny_model_dir: Path, tmp_path_factory) -> list[Path]:
    """The tiny Llama and a nudged copy: two full models of one architecture."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("models")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.02)
    model.save_pretrained(out / "nudged")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out / "nudged")
    return [tiny_model_dir, out / "nudged"]


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).iterdir())
        if p.is_file()
    }


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".partial", ".work")))


def test_an_earlier_merge_is_replaced_but_not_a_folder_with_other_files(models, tmp_path) -> None:
    out = tmp_path / "merged"
    merge_models(LINEAR, models, out)
    first = _digest(out)
    assert MARKER in first and "config.json" in first
    merge_models(LINEAR, models, out, weights=[0.9, 0.1])  # its own output: replaced
    assert _digest(out)["model.safetensors"] != first["model.safetensors"]

    (out / "notes.txt").write_text("mine")
    before = _digest(out)
    with pytest.raises(PostTrainingInputError, match=r"output .*merged already holds .*notes\.txt"):
        merge_models(LINEAR, models, out)
    assert _digest(out) == before

    project = tmp_path / "project"
    project.mkdir()
    (project / "train.jsonl").write_text("{}\n")
    with pytest.raises(PostTrainingInputError, match=r"train\.jsonl.*choose a new or empty"):
        merge_models(LINEAR, models, project)
    assert (project / "train.jsonl").read_text() == "{}\n"
    assert _leftovers(tmp_path) == []


def test_an_output_that_is_or_holds_a_source_is_refused(models, tmp_path) -> None:
    before = _digest(models[1])
    for output, says in (
        (models[1], "is the merge source"),
        (models[1].parent, "holds the merge source"),
        (models[1] / "merged", "is inside the merge source"),
    ):
        with pytest.raises(PostTrainingInputError, match=says):
            merge_models(LINEAR, models, output)
    assert _digest(models[1]) == before
    assert not (models[1] / "merged").exists()


def test_an_output_that_is_a_file_is_refused_up_front(models, tmp_path) -> None:
    held = tmp_path / "held.jsonl"
    held.write_text("keep\n")
    with pytest.raises(PostTrainingInputError, match=r"output .*held\.jsonl is an existing file"):
        merge_models(LINEAR, models, held)
    assert held.read_text() == "keep\n"
    assert _leftovers(tmp_path) == []


def test_weights_that_cancel_out_give_no_model(models, tmp_path) -> None:
    """mergekit's linear divides by the weights' sum: [1, -1] would write NaN weights."""
    with pytest.raises(PostTrainingInputError, match="not finite"):
        merge_models(LINEAR, models, tmp_path / "merged", weights=[1.0, -1.0])
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_sources_that_are_not_models_are_named(models, tmp_path) -> None:
    gguf = tmp_path / "model-q8_0.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(PostTrainingInputError, match=r"model-q8_0\.gguf is a file"):
        merge_models(LINEAR, [models[0], gguf], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PostTrainingInputError, match="neither a LoRA adapter .* nor a model"):
        merge_models(LINEAR, [models[0], tmp_path / "empty"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_gating_a_merge_without_held_out_is_bad_input(models, tmp_path) -> None:
    from phases.evaluation.config import EvaluationConfig
    from phases.post_training.merge_search import merge_and_gate

    pairs = [("a", models[0]), ("b", models[1])]
    with pytest.raises(PostTrainingInputError, match="merge.held_out is required"):
        merge_and_gate(
            LINEAR, pairs, output_dir=tmp_path / "m", evaluation=EvaluationConfig(), index=1
        )


def test_a_marker_that_is_not_a_merges_list_does_not_make_a_folder_ours(tmp_path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / MARKER).write_text("[]")  # rewritten by hand: no list of files a merge wrote
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(PostTrainingInputError, match="already holds files a merge did not write"):
        check_replaceable(folder, "output")
