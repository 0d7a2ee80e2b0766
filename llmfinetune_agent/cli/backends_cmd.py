"""`finetune-agent backends install|list|remove`: training backends in environments of their own.

finetune-agent backends install autotrain   # a venv under <home>/backends (~4 min, 7.3 GB)
finetune-agent backends list                # what is installed: version, path, size
finetune-agent backends remove autotrain
"""

from __future__ import annotations

import typer

from llmfinetune_agent.cli.exit_codes import BAD_INPUT, FAILED, OK

app = typer.Typer(
    help="Training backends that live in their own virtual environment (AutoTrain).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
KNOWN = ("autotrain",)


def _known(name: str) -> str:
    if name not in KNOWN:
        typer.echo(f"error: unknown backend {name!r}; known: {', '.join(KNOWN)}", err=True)
        raise typer.Exit(BAD_INPUT)
    return name


@app.command("install")
def install(
    name: str = typer.Argument(..., help="The backend: 'autotrain'."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if it is installed."),
) -> None:
    """Install a backend's pinned virtual environment under the backends folder."""
    from llmfinetune_agent.settings import Settings
    from phases.training.autotrain.install import BackendInstallError, install_autotrain

    _known(name)
    backends_dir = Settings.from_env().backends_dir
    try:
        found = install_autotrain(backends_dir, force=force, log=typer.echo)
    except BackendInstallError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(FAILED) from None
    typer.echo(
        f"autotrain {found.version} installed in {found.path} "
        f"({found.size_bytes / 1e9:.1f} GB, installed in {found.install_seconds:.0f} s; "
        f"torch {found.packages.get('torch')}, transformers {found.packages.get('transformers')})"
    )
    raise typer.Exit(OK)


@app.command("list")
def list_backends() -> None:
    """Each backend: installed (version, path, size) or the command that installs it."""
    from llmfinetune_agent.settings import Settings
    from phases.training.autotrain import INSTALL_COMMAND, installed_backend

    backends_dir = Settings.from_env().backends_dir
    typer.echo("trl        built in (this environment)")
    found = installed_backend(backends_dir)
    if found is None:
        typer.echo(f"autotrain  not installed: {INSTALL_COMMAND}")
    else:
        typer.echo(
            f"autotrain  {found.version}  {found.path}  {found.size_bytes / 1e9:.1f} GB  "
            f"installed {found.installed_at}"
        )
    raise typer.Exit(OK)


@app.command("remove")
def remove(name: str = typer.Argument(..., help="The backend: 'autotrain'.")) -> None:
    """Delete a backend's environment (runs that ask for it then fail at their plan)."""
    from llmfinetune_agent.settings import Settings
    from phases.training.autotrain.install import remove_autotrain

    _known(name)
    try:
        removed = remove_autotrain(Settings.from_env().backends_dir)
    except OSError as exc:  # a folder it may not delete, a file where a folder goes
        typer.echo(f"error: cannot remove {name}: {exc.strerror or exc}: {exc.filename}", err=True)
        raise typer.Exit(FAILED) from None
    typer.echo(f"{name} removed" if removed else f"{name} was not installed")
    raise typer.Exit(OK)
