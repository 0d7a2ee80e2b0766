"""`finetune-agent models list|show` (the registry with lineage) and `merge MERGE_CONFIG`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from llmfinetune_agent.cli.exit_codes import BAD_INPUT, FAILED

models_app = typer.Typer(
    help="The model registry: models with their lineage.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add the `models` group and `merge` to the top-level app."""
    app.add_typer(models_app, name="models")
    app.command("merge")(merge_command)


def _store() -> Any:
    from llmfinetune_agent.run_store import RunStore
    from llmfinetune_agent.settings import Settings

    return RunStore(Settings.from_env().database_url)


def model_json(record: Any) -> dict[str, Any]:
    """A registry record as JSON-ready data."""
    data = asdict(record)
    data["created_at"] = record.created_at.isoformat()
    return data


def lineage_chain(store: Any, record: Any) -> list[Any]:
    """The record and its first parents back to the root (a fine-tune of a base model)."""
    chain, seen = [record], {record.id}
    while chain[-1].parent_ids:
        parent = store.get_model(model_id=chain[-1].parent_ids[0])
        if parent is None or parent.id in seen:
            break
        chain.append(parent)
        seen.add(parent.id)
    return chain


@models_app.command("list")
def models_list(
    run: str | None = typer.Option(None, "--run", help="Only this run's models."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable JSON."),
) -> None:
    """Registered models, newest first: alias, relation, parents, format, size, verdict."""
    store = _store()
    if run is not None and store.get_run(run_id=run) is None:  # not "0 models": no such run
        typer.echo(f"error: --run: no run with id {run!r} (see finetune-agent runs list)", err=True)
        raise typer.Exit(BAD_INPUT)
    records = store.list_models(run_id=run)
    if as_json:
        typer.echo(json.dumps([model_json(r) for r in records], indent=2))
        return
    typer.echo(
        f"{'id':14}{'name':16}{'alias':13}{'relation':11}{'parents':16}{'format':13}"
        f"{'size':>10}  {'verdict':9}run"
    )
    for r in records:
        size = f"{r.bytes / 1e6:.1f} MB" if r.bytes else "—"
        parents = ",".join(r.parent_ids) or r.base_model.rsplit("/", 1)[-1][:15]
        typer.echo(
            f"{r.id:14}{(r.name or 'model')[:15]:16}{r.alias or '—':13}{r.relation or 'finetune':11}"
            f"{parents[:15]:16}{r.format or '—':13}{size:>10}  {r.verdict or '—':9}{r.run_id or '—'}"
        )
    typer.echo(f"{len(records)} model(s)")


@models_app.command("show")
def models_show(
    model_id: str = typer.Argument(..., help="The model's id (see `finetune-agent models list`)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable JSON."),
) -> None:
    """One model: what it is, how it was made, from what (its lineage), how it fared."""
    store = _store()
    record = store.get_model(model_id=model_id)
    if record is None:
        typer.echo(
            f"error: no model with id '{model_id}' (see finetune-agent models list)", err=True
        )
        raise typer.Exit(BAD_INPUT)
    chain = lineage_chain(store, record)
    if as_json:
        data = model_json(record)
        data["lineage"] = [{"id": m.id, "name": m.name, "relation": m.relation} for m in chain]
        typer.echo(json.dumps(data, indent=2))
        return
    evaluation = record.evaluation or {}
    rows = [
        ("id", record.id),
        ("name", record.name or "model"),
        ("alias", record.alias or "—"),
        ("path", record.path),
        (
            "lineage",
            " <- ".join(f"{m.name or 'model'} ({m.id}, {m.relation or 'finetune'})" for m in chain)
            + f" <- {record.base_model}",
        ),
        (
            "operation",
            f"{record.operation or '—'} {json.dumps(record.parameters) if record.parameters else ''}",
        ),
        (
            "format",
            f"{record.format or '—'}, {record.bytes or '?'} bytes, sha256 {record.sha256 or '—'}",
        ),
        ("metrics", json.dumps(record.metrics)),
        ("deltas to parent", json.dumps(evaluation.get("deltas") or {})),
        ("verdict", f"{record.verdict or '—'}: {record.verdict_reason or ''}"),
        ("run", record.run_id or "—"),
    ]
    for key in (
        "kl",
        "top1",
        "retention",
        "tokens_per_second",
        "bits_per_weight",
        "held_out_score",
    ):
        if key in evaluation:
            rows.append((key, json.dumps(evaluation[key])))
    for label, value in rows:
        typer.echo(f"{label:18}{value}")


def merge_command(
    merge_config: Path = typer.Argument(
        ..., help="Merge config (JSON): method, sources, output, ..."
    ),
) -> None:
    """Merge models or LoRA adapters outside a run (`post_training.merge` inside one); with
    `held_out`, the merge is scored against its parents; it is registered with its lineage."""
    from pydantic import ValidationError

    from llmfinetune_agent.config import issues_from_validation, read_config_json
    from llmfinetune_agent.execution import user_errors
    from llmfinetune_agent.merge_sources import resolve_source
    from llmfinetune_agent.settings import Settings
    from phases.post_training.merge_config import MergeJob
    from phases.post_training.merge_search import run_merge_job

    try:
        job = MergeJob.model_validate(read_config_json(merge_config))
    except ValidationError as exc:
        typer.echo(f"{merge_config}: INVALID", err=True)
        for issue in issues_from_validation(exc, MergeJob):
            typer.echo(f"  - {issue}", err=True)
        raise typer.Exit(BAD_INPUT) from None
    except user_errors() as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(BAD_INPUT) from None
    here = merge_config.resolve().parent
    job = _anchored(job, here)
    store, cache = _store(), Settings.from_env().models_cache_dir
    try:
        sources = [(name, resolve_source(name, store)) for name in job.sources]
        base = resolve_source(job.base, store) if job.base else None
        row = run_merge_job(
            job,
            sources,
            base=base,
            cache_dir=cache,
            protected=_protected(store, merge_config),
            say=lambda m: typer.echo(m),
        )
    except user_errors() as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(BAD_INPUT) from None
    _print_merge(row)
    if job.add_to_registry:
        record = _register_merge(store, row)
        typer.echo(f"registered as model {record.id} (finetune-agent models show {record.id})")
    raise typer.Exit(FAILED if row["verdict"] == "fail" else 0)


def _protected(store: Any, merge_config: Path) -> dict[str, Path]:
    """What a merge's output must not replace besides its inputs: the config file, and every
    registered model's files (its record would point at other weights)."""
    kept = {"config": merge_config}
    for record in store.list_models():
        kept[f"registered model {record.id} ({record.name or 'model'})"] = Path(record.path)
    return kept


def _anchored(job: Any, folder: Path) -> Any:
    """Relative paths of a merge config read from the config file's folder."""

    def anchor(value: str | None) -> str | None:
        if (
            value is None
            or value == "run"
            or value.startswith("model:")
            or Path(value).is_absolute()
        ):
            return value
        return str((folder / value).resolve())

    return job.model_copy(
        update={
            "sources": [anchor(s) for s in job.sources],
            "output": anchor(job.output),
            "held_out": anchor(job.held_out),
            "base": anchor(job.base),
        }
    )


def _print_merge(row: dict[str, Any]) -> None:
    typer.echo(f"{row['name']} -> {row['path']}")
    for name, score in (row.get("parent_scores") or {}).items():
        typer.echo(f"  held-out score {name:30} {score:.4f}")
    if row.get("held_out_score") is not None:
        typer.echo(f"  held-out score {'merge':30} {row['held_out_score']:.4f}")
    search = row.get("search")
    if search:
        for trial in search["trials"]:
            typer.echo(
                f"  trial {trial['trial']:3} weights {trial['weights']} density {trial['density']} score {trial['score']:.4f}"
            )
    typer.echo(f"verdict: {row['verdict']} — {row['reason']}")


def _register_merge(store: Any, row: dict[str, Any]) -> Any:
    from llmfinetune_agent.registration import REGISTRY_PREFIX, weights_digest

    sha256, size = weights_digest(Path(row["path"]))
    parents = [
        s["name"].removeprefix(REGISTRY_PREFIX)
        for s in row["sources"]
        if s["name"].startswith(REGISTRY_PREFIX)
    ]
    lineage = {
        "name": row["name"],
        "kind": "model",
        "relation": "merge",
        "parent_ids": parents,
        "operation": row["operation"],
        "parameters": row["parameters"],
        "format": "safetensors",
        "sha256": sha256,
        "bytes": size,
        "evaluation": {
            k: row[k]
            for k in ("held_out_score", "parent_scores", "search")
            if row.get(k) is not None
        },
        "verdict": row["verdict"],
        "verdict_reason": row["reason"],
        "alias": "rolled_back" if row["verdict"] == "fail" else "candidate",
    }
    return store.register_model(
        run_id=None, path=row["path"], base_model=row["parent_path"], metrics={}, lineage=lineage
    )
