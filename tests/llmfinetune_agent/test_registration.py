"""Finalize's registration of a run's models: a registration cut short (kill -9 between two
rows) completes when finalize runs again, ending as an uninterrupted one would; and a
rolled-back candidate's lineage goes through its source even when that source was not selected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmfinetune_agent.cli.models_cmd import lineage_chain
from llmfinetune_agent.registration import register_run_models, released_rows
from llmfinetune_agent.run_store import RunStore, dispose_engine


class CrashingStore(RunStore):
    """A store whose process dies (an exception here) right after its `rows`-th model row is
    committed, as a kill -9 in the middle of finalize's registration would leave it."""

    def __init__(self, database_url: str, *, rows: int) -> None:
        super().__init__(database_url)
        self.rows_left = rows

    def register_model(self, **fields: Any):
        record = super().register_model(**fields)
        self.rows_left -= 1
        if self.rows_left == 0:
            raise SystemExit(137)
        return record


def _candidate(index: int, name: str, parent: int, path: Path, verdict: str = "pass") -> dict:
    path.write_bytes(name.encode())
    return {
        "index": index,
        "name": name,
        "kind": "gguf" if name.startswith("gguf:") else "model",
        "relation": "merge" if name.startswith("merge:") else "quantized",
        "operation": name,
        "parameters": {},
        "parent": parent,
        "parent_path": "",
        "path": str(path),
        "metrics": {"exact_match": 0.5},
        "verdict": verdict,
        "reason": "r",
    }


def _state(tmp_path: Path, candidates: list[dict], select: list[int]) -> dict[str, Any]:
    final = tmp_path / "final"
    final.mkdir(exist_ok=True)
    (final / "model.safetensors").write_bytes(b"tuned")
    tuned = {"index": 0, "name": "tuned", "parent": None, "path": str(final), "verdict": "pass"}
    return {
        "run_id": "run1",
        "config": {
            "model": {"name_or_path": "builtin:tiny-llama"},
            "training": {"method": "sft", "lora": None},
        },
        "data": {"data_hash": "d"},
        "artifact": {"kind": "model", "path": str(final)},
        "evaluation": {"tuned": {"exact_match": 0.5}, "base": {"exact_match": 0.0}},
        "post_training": {"candidates": [tuned, *candidates], "champion": max(select)},
        "release": {"select": select},
    }


def _registry(store: RunStore, result: dict[str, Any]) -> dict[str, Any]:
    """What a user sees of the run's registration: each row by name with its alias, path,
    verdict and parents (by name), and the run's model."""
    records = store.list_models(run_id="run1")
    names = {r.id: r.name for r in records}
    rows = {
        r.name: (r.alias, r.path, r.verdict, [names.get(p, p) for p in r.parent_ids])
        for r in records
    }
    assert len(rows) == len(records), "a model registered twice"
    return {
        "rows": rows,
        "champion": [r.name for r in records if r.alias == "champion"],
        "model": (names[result["model_id"]], result["model_path"]),
        "registered": sorted(names[i] for i in result["registered"]),
    }


@pytest.fixture
def release(tmp_path: Path) -> dict[str, Any]:
    """A release of every candidate: a merge, then int8 and three GGUFs made from it."""
    made = tmp_path / "made"
    made.mkdir()
    merge = made / "merge"
    merge.mkdir()
    candidates = [_candidate(1, "merge:linear", 0, merge / "model.safetensors")]
    for index, name in enumerate(["int8", "gguf:q8_0", "gguf:q4_k_m", "gguf:bf16"], start=2):
        candidates.append(_candidate(index, name, 1, made / f"{index}.gguf"))
    return _state(tmp_path, candidates, select=[0, 1, 2, 3, 4, 5])


@pytest.mark.parametrize("crash_after", [1, 2, 4])
def test_a_registration_killed_between_rows_completes_as_an_uninterrupted_one(
    release: dict[str, Any], tmp_path: Path, crash_after: int
) -> None:
    whole_url = f"sqlite:///{tmp_path / 'whole.db'}"
    whole = RunStore(whole_url)
    expected = _registry(whole, register_run_models(release, tmp_path / "final", whole))
    assert expected["champion"] == ["gguf:bf16"]
    assert expected["model"] == ("gguf:bf16", str(tmp_path / "made" / "5.gguf"))

    url = f"sqlite:///{tmp_path / 'crashed.db'}"
    with pytest.raises(SystemExit):
        register_run_models(release, tmp_path / "final", CrashingStore(url, rows=crash_after))
    store = RunStore(url)
    assert len(store.list_models(run_id="run1")) == crash_after
    resumed = _registry(store, register_run_models(release, tmp_path / "final", store))
    assert resumed == expected
    again = _registry(store, register_run_models(release, tmp_path / "final", store))
    assert again == expected  # a further finalize re-run adds nothing
    for database in (whole_url, url):
        dispose_engine(database)


def test_a_rolled_back_candidate_keeps_its_unselected_source(tmp_path: Path) -> None:
    """int8 made from a merge fails its gate; the reviewer releases the tuned model alone. The
    merge is registered (passing, a candidate, not the champion) so int8's lineage is true."""
    merge = tmp_path / "merge"
    merge.mkdir()
    state = _state(
        tmp_path,
        [
            _candidate(1, "merge:linear", 0, merge / "model.safetensors"),
            _candidate(2, "int8", 1, tmp_path / "int8.bin", verdict="fail"),
        ],
        select=[0],
    )
    assert [r["name"] for r in released_rows(state)] == ["tuned", "merge:linear", "int8"]
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    store = RunStore(url)
    result = register_run_models(state, tmp_path / "final", store)
    registry = _registry(store, result)
    assert registry["rows"] == {
        "tuned": ("champion", str(tmp_path / "final"), "pass", []),
        "merge:linear": ("candidate", str(merge / "model.safetensors"), "pass", ["tuned"]),
        "int8": ("rolled_back", str(tmp_path / "int8.bin"), "fail", ["merge:linear"]),
    }
    assert registry["model"] == ("tuned", str(tmp_path / "final"))
    (int8,) = [r for r in store.list_models(run_id="run1") if r.name == "int8"]
    assert [m.name for m in lineage_chain(store, int8)] == ["int8", "merge:linear", "tuned"]
    dispose_engine(url)
