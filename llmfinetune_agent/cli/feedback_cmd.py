"""`finetune-agent feedback export MODEL_ID --as preference|kto OUT.jsonl`: what users said about
a model's answers, as training data the data phase detects as it is (a DPO, KTO or reward run
can start from it)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from llmfinetune_agent.cli.exit_codes import BAD_INPUT
from llmfinetune_agent.cli.export_cmd import write_export

feedback_app = typer.Typer(
    help="Feedback on served answers, as training data.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add the `feedback` group to the top-level app."""
    app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    model_id: str = typer.Argument(..., help="The registry id of the model the feedback is on."),
    out: Path = typer.Argument(..., help="The JSONL file to write."),
    kind: str = typer.Option(
        "preference",
        "--as",
        help="'preference' (prompt/chosen/rejected: DPO, reward) or 'kto' (prompt/completion/label).",
    ),
) -> None:
    """Write MODEL_ID's feedback as preference pairs or KTO rows; say how many."""
    from llmfinetune_agent.feedback_store import FeedbackStore
    from llmfinetune_agent.settings import Settings

    if not model_id.strip():
        typer.echo("MODEL_ID '': give the registry id of the model the feedback is on.", err=True)
        raise typer.Exit(BAD_INPUT)
    if kind not in ("preference", "kto"):
        typer.echo(f"--as {kind!r}: choose 'preference' or 'kto'.", err=True)
        raise typer.Exit(BAD_INPUT)
    store = FeedbackStore(Settings.from_env().database_url)
    rows, conversations = store.feedback_export(model_id=model_id, kind=kind)
    if conversations:
        typer.echo(
            f"Left out {conversations} rated answer(s) to conversations: a {kind} row holds one "
            "prompt, and the earlier turns would be lost.",
            err=True,
        )
    if not rows:
        typer.echo(
            f"No {kind} data from feedback on model {model_id!r}: rate its answers with "
            "POST /generations/{id}/feedback first (a better answer or thumbs up and down).",
            err=True,
        )
        raise typer.Exit(BAD_INPUT)
    # A folder, an unwritable place or a file on the way: a message, exit 2, as `export` says.
    write_export(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    typer.echo(f"Wrote {len(rows)} {kind} rows from feedback on {model_id} to {out}.")
