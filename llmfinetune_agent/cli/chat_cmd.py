"""`finetune-agent chat MODEL`: talk to a model (a tuned one from the registry, or any model a
run config accepts), with tools.

    finetune-agent chat builtin:smollm2-135m-instruct --tools calculator,python --preset coding
    finetune-agent chat MODEL_ID --message "What is 12 times 7?"     # one turn, no terminal
    finetune-agent chat --chat chat-5e0b3c9a41d2 --message "And times 8?"   # continue it

At a terminal it is interactive (an empty line or Ctrl-D ends it). Without one and without
`--message`, each line of standard input is a message. The answer goes to stdout; tool calls,
their results and the chat id go to stderr. The conversation is kept in the service's
database, like runs: continue it later with `--chat ID` (or over REST, `/chats/{id}`).
"""

from __future__ import annotations

import json
import sys

import typer

from llmfinetune_agent.cli.exit_codes import BAD_INPUT, FAILED


def register(app: typer.Typer) -> None:
    """Add the `chat` command to the top-level app."""
    app.command("chat")(chat)


def chat(
    model: str | None = typer.Argument(
        None, help="A registry model id or a model reference (e.g. builtin:tiny-llama)."
    ),
    tools: str = typer.Option(
        "", "--tools", help="Comma-separated tools: calculator, python, package.module:function."
    ),
    preset: str = typer.Option(
        "helpful", "--preset", help="helpful, concise, coding, teacher, friendly (or --system)."
    ),
    system: str | None = typer.Option(None, "--system", help="Your own system prompt."),
    message: str | None = typer.Option(
        None, "--message", "-m", help="Send this one message, print the answer, and exit."
    ),
    chat_id: str | None = typer.Option(None, "--chat", help="Continue this conversation."),
    max_new_tokens: int = typer.Option(256, min=1, max=4096, help="Tokens per reply at most."),
) -> None:
    """Chat with a model that can call tools; the conversation is kept (continue it with --chat)."""
    from llmfinetune_agent.chat.service import ChatError

    with _open_chats() as chats:
        try:
            chat_id = chat_id or _create(chats, model, tools, preset, system, max_new_tokens)
            chats.describe(chat_id)  # an unknown --chat id fails here, before any input
        except (ChatError, ValueError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(BAD_INPUT) from None
        typer.echo(f"chat {chat_id}", err=True)
        ok = True
        for text in _messages(message):
            ok = _turn(chats, chat_id, text) and ok
    if not ok:
        raise typer.Exit(FAILED)


def _open_chats():
    import contextlib

    from llmfinetune_agent.chat.service import ChatService
    from llmfinetune_agent.checkpointing import open_checkpointer
    from llmfinetune_agent.run_store import RunStore
    from llmfinetune_agent.settings import Settings

    @contextlib.contextmanager
    def opened():
        settings = Settings.from_env()
        settings.ensure_dirs()
        with open_checkpointer(settings.database_url) as saver:
            yield ChatService(settings, saver, store=RunStore(settings.database_url), source="cli")

    return opened()


def _create(chats, model, tools, preset, system, max_new_tokens) -> str:
    from pydantic import ValidationError

    from llmfinetune_agent.chat.config import ChatConfig

    if not model:
        raise ValueError("give a MODEL (a registry id or a model reference), or --chat ID")
    fields = {
        "model": model,
        "tools": [t.strip() for t in tools.split(",") if t.strip()],
        "preset": "custom" if system else preset,
        "system_prompt": system,
        "max_new_tokens": max_new_tokens,
    }
    try:
        config = ChatConfig(**fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'chat'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(problems) from None
    return chats.create_chat(config)["id"]


def _messages(message: str | None):
    """The one `--message`, else lines typed at the terminal, else lines of standard input."""
    if message is not None:
        yield message
        return
    interactive = sys.stdin.isatty()
    while True:
        try:
            line = input("you> ") if interactive else sys.stdin.readline()
        except (EOFError, KeyboardInterrupt):
            return
        if not line or (interactive and not line.strip()):
            return
        if line.strip():
            yield line.strip()


def _turn(chats, chat_id: str, text: str) -> bool:
    """One message and its answer; False if the turn failed."""
    streaming = sys.stdout.isatty()
    answer, shown = "", ""
    for event in chats.send(chat_id, text):
        if event.kind == "token" and streaming:
            shown += event.data["text"]
            typer.echo(event.data["text"], nl=False)
        elif event.kind == "tool_call":
            typer.echo(f"[{event.data['name']}] {json.dumps(event.data['args'])}", err=True)
        elif event.kind == "tool_result":
            status = " (error)" if event.data.get("status") == "error" else ""
            typer.echo(f"[{event.data['name']} ->{status}] {event.data['content']}", err=True)
        elif event.kind == "message":
            answer = event.data.get("content", "")
        elif event.kind == "error":
            typer.echo(f"error: {event.data['message']}", err=True)
            return False
    typer.echo(answer[len(shown) :] if answer.startswith(shown) else answer)
    return True
