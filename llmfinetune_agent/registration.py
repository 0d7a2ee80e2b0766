"""What finalize registers, with lineage: the run's tuned model, the post-training
candidates released at the release gate and the rolled-back ones (plus the sources of both, so
every parent id resolves and no lineage skips a step). Registering again after a crash completes
the registration instead of duplicating it.

Each row gets its relation (`adapter`, `finetune`, `merge`, `quantized`), parent ids, the
operation and its parameters, format, sha256 and bytes of its weights, its evaluation with
deltas to its parent, the gate's verdict and an alias: `champion` (the last released candidate
that passed, in the order they were made), `candidate` (another that passed) or `rolled_back`
(a candidate that failed its gate, kept on record with the reason).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from llmfinetune_agent.artifacts import current_artifact
from llmfinetune_agent.run_store import RunStore, config_hash
from llmfinetune_agent.state import RunState

REGISTRY_PREFIX = "model:"


def weights_digest(path: Path) -> tuple[str, int]:
    """sha256 and bytes of a model's weights: the file itself, or a folder's weight files
    (safetensors, else every file) in name order."""
    path = Path(path)
    files = (
        [path]
        if path.is_file()
        else sorted(path.glob("*.safetensors")) or sorted(p for p in path.rglob("*") if p.is_file())
    )
    digest, size = hashlib.sha256(), 0
    for file in files:
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
    return digest.hexdigest(), size


def _format(path: Path) -> str:
    if str(path).endswith(".gguf"):
        return "gguf"
    if str(path).endswith(".json"):  # a prompt artifact
        return "prompt"
    return "peft" if (Path(path) / "adapter_config.json").exists() else "safetensors"


def _tuned_lineage(state: RunState, final_dir: Path) -> dict[str, Any]:
    config, evaluation = state["config"], state.get("evaluation") or {}
    artifact = current_artifact(state) or {}
    adapter_kept = (final_dir / "adapter_config.json").exists()
    training = config["training"]
    if artifact.get("kind") == "prompt":
        adapter_kept, operation = False, "prompt (system prompt and exemplars; weights frozen)"
    else:
        operation = f"{training['method']} ({'LoRA' if training.get('lora') else 'full'})" + (
            ", LoRA merged" if artifact.get("kind") == "adapter" and not adapter_kept else ""
        )
    return {
        "name": "tuned",
        "kind": "adapter" if adapter_kept else artifact.get("kind", "model"),
        "relation": "adapter"
        if adapter_kept
        else ("prompt" if artifact.get("kind") == "prompt" else "finetune"),
        "parent_ids": [],
        "operation": operation,
        "parameters": training,
        "format": _format(final_dir),
        "evaluation": {
            "metrics": evaluation.get("tuned") or {},
            "parent": "base model",
            "parent_metrics": evaluation.get("base") or {},
            "deltas": evaluation.get("deltas") or {},
        },
        "verdict": "pass" if evaluation.get("passed", True) else "accepted",
        "verdict_reason": "met its thresholds"
        if evaluation.get("passed", True)
        else "accepted by the reviewer below its thresholds",
    }


def register_run_models(state: RunState, final_dir: Path, store: RunStore) -> dict[str, Any]:
    """Register this run's models and return `{model_id (the champion), model_path,
    registered: [ids]}`.

    Safe to run again: finalize re-run after a crash, even one between two rows, reuses the
    rows already registered (this run's, same name and path), adds the missing ones and sets
    every alias as one uninterrupted registration would."""
    common = {
        "run_id": state["run_id"],
        "base_model": state["config"]["model"]["name_or_path"],
        "config_hash": config_hash(state["config"]),
        "data_hash": (state.get("data") or {}).get("data_hash"),
    }
    table = state.get("post_training")
    rows = released_rows(state) if table else []
    selected = _selected(state) if table else set()
    # The champion is a selected one: a source pulled in for lineage's sake is no release.
    champion_index = max(
        (r["index"] for r in rows if r["index"] in selected and r["verdict"] == "pass"), default=0
    )
    existing = {(m.name, m.path): m for m in store.list_models(run_id=state["run_id"])}
    tuned_lineage = _tuned_lineage(state, final_dir)
    tuned_lineage["alias"] = "champion" if champion_index == 0 else "candidate"
    tuned_metrics = (state.get("evaluation") or {}).get("tuned")
    ids = {0: _register_once(store, existing, common, final_dir, tuned_lineage, tuned_metrics)}
    for row in rows:
        if row["index"] == 0 or not row.get("path"):
            continue
        alias = (
            "rolled_back"
            if row["verdict"] != "pass"
            else ("champion" if row["index"] == champion_index else "candidate")
        )
        lineage = _candidate_lineage(row, ids, table["candidates"], alias)
        ids[row["index"]] = _register_once(
            store, existing, common, Path(row["path"]), lineage, row.get("metrics")
        )
    champion_id = ids[champion_index]
    champion_path = next((r["path"] for r in rows if r["index"] == champion_index), str(final_dir))
    return {"model_id": champion_id, "model_path": champion_path, "registered": list(ids.values())}


def _register_once(
    store: RunStore,
    existing: dict[tuple[str | None, str], Any],
    common: dict[str, Any],
    path: Path,
    lineage: dict[str, Any],
    metrics: Any,
) -> str:
    """The id of this row: the one an interrupted registration already made (its alias set as
    planned now), else a new row's."""
    found = existing.get((lineage["name"], str(path)))
    if found is None:
        return _register(store, common, path, lineage, metrics).id
    if found.alias != lineage["alias"]:
        store.set_model_alias(model_ids=[found.id], alias=lineage["alias"])
    return found.id


def _register(
    store: RunStore, common: dict[str, Any], path: Path, lineage: dict[str, Any], metrics: Any
):
    sha256, size = weights_digest(path)
    return store.register_model(
        path=str(path),
        metrics=metrics or {},
        lineage={**lineage, "sha256": sha256, "bytes": size},
        **common,
    )


def _selected(state: RunState) -> set[int]:
    """The candidates released: those the release gate selected, or the champion alone when
    no one was asked."""
    table, release = state.get("post_training") or {}, state.get("release")
    return set(release["select"]) if release else {table.get("champion", 0)}


def released_rows(state: RunState) -> list[dict[str, Any]]:
    """The table rows finalize registers: the selected candidates (every passing one when the
    gate said approve; the champion alone when no one was asked), the rolled-back candidates
    that were made (on record), and the sources of both (so a rolled-back candidate's lineage
    is true even when its source was not selected), in the order they were made."""
    table = state.get("post_training") or {}
    rows = {r["index"]: r for r in table.get("candidates") or []}
    rolled_back = {i for i, r in rows.items() if r["verdict"] != "pass"}
    chosen = _selected(state) | {i for i in rolled_back if rows[i].get("path")}
    for index in list(chosen):
        parent = rows[index].get("parent")
        while parent is not None and parent in rows:
            chosen.add(parent)
            parent = rows[parent].get("parent")
    return [rows[i] for i in sorted(chosen | rolled_back)]


def _candidate_lineage(
    row: dict[str, Any], ids: dict[int, str], rows: list[dict[str, Any]], alias: str
) -> dict[str, Any]:
    parents = [ids[row["parent"]]] if row.get("parent") in ids else []
    for source in row.get("sources") or []:
        if source["name"].startswith(REGISTRY_PREFIX):
            parents.append(source["name"].removeprefix(REGISTRY_PREFIX))
    parent_row = next((r for r in rows if r["index"] == row.get("parent")), {})
    parent_metrics = parent_row.get("metrics") or {}
    metrics = row.get("metrics") or {}
    measured = (
        "retention",
        "kl",
        "top1",
        "same_answers",
        "tokens_per_second",
        "bits_per_weight",
        "size_ratio",
        "speed_ratio",
        "held_out_score",
        "parent_scores",
        "search",
    )
    return {
        "name": row["name"],
        "kind": row["kind"],
        "relation": row["relation"],
        "parent_ids": parents,
        "operation": row["operation"],
        "parameters": row.get("parameters") or {},
        "format": _format(Path(row["path"])),
        "evaluation": {
            "metrics": metrics,
            "parent": parents[0] if parents else None,
            "parent_metrics": parent_metrics,
            "deltas": {
                k: round(v - parent_metrics[k], 6)
                for k, v in metrics.items()
                if isinstance(v, (int, float)) and isinstance(parent_metrics.get(k), (int, float))
            },
            **{k: row[k] for k in measured if row.get(k) is not None},
        },
        "verdict": row["verdict"],
        "verdict_reason": row.get("reason"),
        "alias": alias,
    }
