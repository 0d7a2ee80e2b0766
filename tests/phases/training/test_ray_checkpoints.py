"""Which checkpoint a restarted Ray Train worker resumes from, checked on folders laid out as
Ray Train's storage keeps them (`<storage>/<name>/checkpoint_<time>/checkpoint/`), without Ray."""

import json
from pathlib import Path

from phases.training.checkpoints import checkpoint_step
from phases.training.ray_train import is_complete, stored_checkpoints, write_manifest


def _hf_checkpoint(folder: Path, step: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"w" * 1000)
    (folder / "optimizer.pt").write_bytes(b"o" * 2000)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return folder


def _persisted(storage: Path, step: int) -> Path:
    """A checkpoint as Ray copies it into storage: manifest written first, then copied whole."""
    checkpoint = _hf_checkpoint(storage / f"checkpoint_2026-12-06_20-00-{step:02d}" / "c", step)
    write_manifest(checkpoint)
    return checkpoint.rename(checkpoint.parent / "checkpoint")


def test_the_newest_complete_checkpoint_in_storage_is_found_reported_or_not(tmp_path) -> None:
    storage = tmp_path / "storage" / "run-1"
    for step in (10, 20, 30):
        _persisted(storage, step)
    cut_off = _persisted(storage, 40)
    optimizer = cut_off / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:500])  # the copy was killed mid-file
    found = stored_checkpoints(storage)
    assert sorted(checkpoint_step(c) for c in found) == [10, 20, 30]
    assert not is_complete(cut_off)


def test_a_checkpoint_missing_a_file_or_its_manifest_is_incomplete(tmp_path) -> None:
    checkpoint = _persisted(tmp_path / "run", 10)
    assert is_complete(checkpoint)
    (checkpoint / "optimizer.pt").unlink()
    assert not is_complete(checkpoint)
    bare = _hf_checkpoint(tmp_path / "bare", 10)  # never given a manifest
    assert not is_complete(bare)
    (bare / "finetune-agent-manifest.json").write_text('{"files": {"optimizer.pt"')  # cut off
    assert not is_complete(bare)
    assert stored_checkpoints(tmp_path / "missing") == []
