"""`finetune-agent stats`: runs by status and method, the time and steps they spent, gates
answered and how long they waited, interactions served with latency percentiles, feedback
(the same numbers as `GET /stats`)."""

from __future__ import annotations

import json
from typing import Any

import typer


def register(app: typer.Typer) -> None:
    """Add `stats` to the top-level app."""
    app.command("stats")(stats_command)


def stats_command(
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as JSON."),
) -> None:
    """Print the service's statistics from its database."""
    from llmfinetune_agent.settings import Settings
    from llmfinetune_agent.stats import service_stats

    stats = service_stats(Settings.from_env().database_url)
    typer.echo(json.dumps(stats, indent=2) if as_json else render_stats(stats))


def render_stats(stats: dict[str, Any]) -> str:
    """The statistics as a few readable lines."""
    runs, gates = stats["runs"], stats["gates"]
    interactions, feedback = stats["interactions"], stats["feedback"]
    lines = [
        f"runs: {runs['total']} ({_counts(runs['by_status'])})",
        f"  by method: {_counts(runs['by_method'])}",
        f"  ended runs' time: {_spread(runs['ended_seconds'], 's')}",
        f"  training steps: {runs['training_steps']} ({_counts(runs['steps_by_method'])})",
        f"gates: {gates['answered']} answered, {gates['waiting']} waiting; "
        f"wait {_spread(gates['wait_seconds'], 's')}",
        *(
            f"  {gate}: {g['answered']}/{g['asked']} answered ({_counts(g['decisions'])}); "
            f"wait {_spread(g['wait_seconds'], 's')}"
            for gate, g in gates["by_gate"].items()
        ),
        f"interactions: {interactions['total']} ({_counts(interactions['by_source'])})",
        f"  latency: {_spread(interactions['latency_seconds'], 's')}",
        f"  tokens: {interactions['prompt_tokens']} in, {interactions['completion_tokens']} out",
        f"feedback: {feedback['total']} (up {feedback['up']}, down {feedback['down']}, "
        f"better answers {feedback['better_answers']}, comments {feedback['comments']})",
    ]
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def _spread(summary: dict[str, Any], unit: str) -> str:
    if not summary.get("count"):
        return "—"
    return (
        f"p50 {summary['p50']:g}{unit}, p90 {summary['p90']:g}{unit}, "
        f"p99 {summary['p99']:g}{unit}, max {summary['max']:g}{unit}"
    )
