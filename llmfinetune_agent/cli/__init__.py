"""The `finetune-agent` command line.

Start-up stays fast (`--help` in well under half a second): only typer is imported here;
each command imports the config, torch or transformers inside its own body.
"""

import os

import typer

# Our own progress display replaces the libraries' tqdm bars (e.g. "Writing model shards").
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

from llmfinetune_agent.cli import (  # noqa: E402
    config_cmd,
    data_cmd,
    fork_cmd,
    phase_cmd,
    run_cmd,
    serve_cmd,
)

app = typer.Typer(
    name="finetune-agent",
    help="Fine-tune language models with a LangGraph multi-agent pipeline and human approvals.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: rich formatting costs ~250 ms at start-up
)
app.add_typer(config_cmd.app, name="config")
app.add_typer(data_cmd.app, name="data")
run_cmd.register(app)
fork_cmd.register(app, run_cmd.runs_app)
phase_cmd.register(app)
serve_cmd.register(app)

__all__ = ["app"]
