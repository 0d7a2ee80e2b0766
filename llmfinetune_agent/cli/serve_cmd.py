"""`finetune-agent serve`: the REST API (and its run workers) under uvicorn."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `serve` command to the top-level app."""
    app.command("serve")(serve)


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind (0.0.0.0 exposes it)."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: bool = typer.Option(
        True, "--workers/--no-workers", help="Execute runs here (--no-workers: API only)."
    ),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve the REST API: runs, interrupts, live events, models and generation."""
    import uvicorn

    from llmfinetune_agent.execution import open_service

    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(
            f"warning: binding {host}: set FINETUNE_AGENT_API_KEY to require a key", err=True
        )
    # Open the stores once before uvicorn does: an unreachable database then ends the command
    # with one line (see cli.main), not a lifespan traceback from inside the server.
    with open_service():
        pass
    # By import string: llmfinetune_agent must not import api (the layers point down).
    factory = "api.main:create_app" if workers else "api.main:create_api_only_app"
    uvicorn.run(factory, factory=True, host=host, port=port, log_level=log_level)
