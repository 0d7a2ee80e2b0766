"""`finetune-agent chat MODEL`: talk to a model (a tuned one from the registry, or any model a
run config accepts), with tools.

    finetune-agent chat builtin:smollm2-135m-instruct --tools calculator,python --preset coding
    finetune-agent chat MODEL_ID --message "What is 12 times 7?"     # one turn, no terminal
    finetune-agent chat --chat chat-5e0b3c9a41d2 --message "And times 8?"   # continue it

At a terminal it is interactive (an empty line or Ctrl-D ends it). Without one and without
`--message`, each line of standard input is a message. The answer goes to stdout; tool calls,
their results and the chat id go to stderr. The conversation is kept in the service's
database, like runs: continue it later with `--chat ID` (or over REST, `/chats/{id}`), with
the settings it was created with (another MODEL, --tools, --preset, --system or
--max-new-tokens beside `--chat` is refused). Bad input exits 2, a failed turn 1.
"""

from __future__ import annotations

import itertools
import json
import sys

import typer

from llmfinetune_agent.cli.exit_codes import BAD_INPUT, FAILED, OK

# The options that set up a chat, by ChatConfig field: given with --chat they are refused.
SETTING_OPTIONS = {
    "tools": "--tools",
    "preset": "--preset",
    "system_prompt": "--system",
    "max_new_tokens": "--max-new-tokens",
}


def register(app: typer.Typer) -> None:
    """Add the `chat` command to the top-level app."""
    app.command("chat")(chat)


def chat(
    model: str | None = typer.Argument(
        None, help="A registry model id or a model reference (e.g. builtin:tiny-llama)."
    ),
    tools: str | None = typer.Option(
        None, "--tools", help="Comma-separated tools: calculator, python, package.module:function."
    ),
    preset: str | None = typer.Option(
        None,
        "--preset",
        help="helpful (default), concise, coding, teacher, friendly; or your own --system.",
    ),
    system: str | None = typer.Option(None, "--system", help="Your own system prompt."),
    message: str | None = typer.Option(
        None, "--message", "-m", help="Send this one message, print the answer, and exit."
    ),
    chat_id: str | None = typer.Option(
        None, "--chat", help="Continue this conversation (with the settings it was created with)."
    ),
    max_new_tokens: int | None = typer.Option(
        None, min=1, max=4096, help="Tokens per reply at most (default 256)."
    ),
) -> None:
    """Chat with a model that can call tools; the conversation is kept (continue it with --chat)."""
    from llmfinetune_agent.chat.service import ChatError, check_message

    settings = {
        "tools": tools,
        "preset": preset,
        "system_prompt": system,
        "max_new_tokens": max_new_tokens,
    }
    messages = _messages(message)
    if message is None and not sys.stdin.isatty():
        # Piped lines: the first is read before a chat is made for it; none is a mistake
        # (an empty pipe or </dev/null), not an empty chat and exit 0.
        message = next(messages, None)
        if message is None:
            typer.echo(
                "error: no message: standard input held none; give --message TEXT, or pipe "
                "the messages in, one a line",
                err=True,
            )
            raise typer.Exit(BAD_INPUT)
        messages = itertools.chain([message], messages)
    with _open_chats() as chats:
        try:
            if message is not None:  # before a chat is created for it
                check_message(message)
            if chat_id is not None:  # `--chat ''` is an unknown chat, not "no --chat"
                _continue(chats, chat_id, model, settings)
            else:
                chat_id = _create(chats, model, settings)
        except (ChatError, ValueError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(BAD_INPUT) from None
        typer.echo(f"chat {chat_id}", err=True)
        codes = [_turn(chats, chat_id, text) for text in messages]
    if any(codes):
        raise typer.Exit(max(codes))


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


def _continue(chats, chat_id: str, model: str | None, settings: dict) -> None:
    """Check that `--chat ID` exists and is given no settings: they are fixed at creation."""
    chat = chats.describe(chat_id)  # an unknown id fails here, before any input
    given = [SETTING_OPTIONS[name] for name, value in settings.items() if value is not None]
    if model is not None and model != chat["model"]:
        given.insert(0, f"MODEL {model!r} (the chat's is {chat['model']!r})")
    if given:
        raise ValueError(
            f"{', '.join(given)}: a chat's settings are fixed when it is created; continue "
            f"{chat_id} without them, or start a new chat"
        )


def _create(chats, model: str | None, settings: dict) -> str:
    from pydantic import ValidationError

    from llmfinetune_agent.chat.config import ChatConfig

    if not model:
        raise ValueError("give a MODEL (a registry id or a model reference), or --chat ID")
    fields = {name: value for name, value in settings.items() if value is not None}
    if settings["tools"] is not None:
        fields["tools"] = [t.strip() for t in settings["tools"].split(",") if t.strip()]
    try:
        config = ChatConfig(model=model, **fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'chat'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
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


def _turn(chats, chat_id: str, text: str) -> int:
    """One message and its answer; the exit code (0, or why the turn failed)."""
    from llmfinetune_agent.chat.service import ChatError

    streaming = sys.stdout.isatty()
    answer, shown = "", ""
    try:
        events = chats.send(chat_id, text)
    except ChatError as exc:  # a message too long, or another turn of the chat is running
        typer.echo(f"error: {exc}", err=True)
        return BAD_INPUT
    for event in events:
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
            return FAILED
    typer.echo(answer[len(shown) :] if answer.startswith(shown) else answer)
    return OK
