"""`finetune-agent chat` refuses bad input with exit 2 and a message, never a traceback: a blank
or overlong message before any chat is created for it, settings beside `--chat` (they were
fixed when the chat was created), a preset together with `--system`, a prompt artifact whose
`model` is empty (in `compare` too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from llmfinetune_agent.checkpointing import open_checkpointer
from llmfinetune_agent.cli import app
from llmfinetune_agent.cli.exit_codes import BAD_INPUT
from llmfinetune_agent.settings import Settings


def cli(*args: str, stdin: str | None = None) -> Any:
    result = CliRunner().invoke(app, ["chat", *args], input=stdin)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def chat_ids() -> set[str]:
    """Every conversation in the (per-test) service's checkpoint store."""
    settings = Settings.from_env()
    settings.ensure_dirs()
    with open_checkpointer(settings.database_url) as saver:
        threads = {c.config["configurable"]["thread_id"] for c in saver.list(None)}
    return {t for t in threads if t.startswith("chat-")}


def created_chat(result: Any) -> str:
    return next(line.split()[1] for line in result.stderr.splitlines() if line.startswith("chat "))


def test_a_blank_or_overlong_message_is_refused_before_a_chat_exists(tiny_model_dir) -> None:
    for message in ("   ", "x" * 20_001):
        refused = cli(str(tiny_model_dir), "-m", message)
        assert refused.exit_code == BAD_INPUT, refused.output
        assert refused.stderr == "error: a message is 1 to 20000 characters of text\n"
    assert chat_ids() == set()
    # A line of standard input the chat cannot take: refused the same way, no traceback.
    piped = cli(str(tiny_model_dir), "--max-new-tokens", "2", stdin="x" * 20_001 + "\n")
    assert piped.exit_code == BAD_INPUT
    assert piped.stderr.splitlines()[-1] == "error: a message is 1 to 20000 characters of text"


def test_a_chat_keeps_the_settings_it_was_created_with(tiny_model_dir, tmp_path) -> None:
    first = cli(str(tiny_model_dir), "--max-new-tokens", "2", "-m", "Hello")
    assert first.exit_code == 0, first.output
    chat_id = created_chat(first)
    for extra in (["builtin:tiny-llama"], ["--tools", "calculator"], ["--preset", "coding"]):
        refused = cli(*extra, "--chat", chat_id, "-m", "Again")
        assert refused.exit_code == BAD_INPUT, refused.output
        assert "a chat's settings are fixed when it is created" in refused.stderr
    refused = cli("--chat", chat_id, "--system", "Be terse.", "--max-new-tokens", "9", "-m", "x")
    assert refused.stderr.startswith("error: --system, --max-new-tokens: a chat's settings")
    same_model = cli(str(tiny_model_dir), "--chat", chat_id, "-m", "Again")
    assert same_model.exit_code == 0, same_model.output
    assert chat_ids() == {chat_id}


def test_a_preset_and_your_own_system_prompt_are_refused_together(tiny_model_dir) -> None:
    refused = cli(str(tiny_model_dir), "--system", "Be terse.", "--preset", "coding", "-m", "hi")
    assert refused.exit_code == BAD_INPUT
    assert refused.stderr == (
        "error: chat: give either preset 'coding' or your own system_prompt, not both\n"
    )
    assert chat_ids() == set()


def test_a_prompt_artifact_with_an_empty_model_is_named(tmp_path: Path) -> None:
    artifact = tmp_path / "emptymodel.json"
    artifact.write_text('{"model": "", "system_prompt": "Be terse."}')
    refused = cli(str(artifact), "-m", "hi")
    assert refused.exit_code == BAD_INPUT
    assert refused.stderr.startswith(f"error: prompt artifact {artifact}: its 'model' is empty")
    # `compare` resolves its models the same way.
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "Hi", "completion": "Hello"}\n')
    compared = CliRunner().invoke(
        app, ["compare", str(artifact), "builtin:tiny-llama", "--data", str(rows)]
    )
    assert compared.exit_code == BAD_INPUT, compared.output
    assert f"prompt artifact {artifact}: its 'model' is empty" in compared.stderr


def test_no_message_on_standard_input_is_refused_before_a_chat_exists(tiny_model_dir) -> None:
    """`</dev/null` (or an empty pipe) made an empty chat and ended 0, answering nothing."""
    for stdin in ("", "\n  \n"):
        refused = cli(str(tiny_model_dir), stdin=stdin)
        assert refused.exit_code == BAD_INPUT, refused.output
        assert refused.stderr.startswith("error: no message: standard input held none")
    assert chat_ids() == set()


def test_an_empty_chat_id_is_an_unknown_chat_not_a_missing_option(tiny_model_dir) -> None:
    refused = cli(str(tiny_model_dir), "--chat", "", "-m", "hi")
    assert refused.exit_code == BAD_INPUT
    assert refused.stderr == "error: no chat with id ''\n"
    assert chat_ids() == set()


def test_a_registered_model_whose_files_are_gone_is_refused_at_once(tmp_path: Path) -> None:
    """The chat was made, then every message failed (exit 1) on the missing folder."""
    from llmfinetune_agent.run_store import RunStore

    gone = tmp_path / "deleted-model"
    record = RunStore(Settings.from_env().database_url).register_model(
        run_id=None, path=str(gone), base_model="builtin:tiny-llama"
    )
    refused = cli(record.id, "-m", "hi")
    assert refused.exit_code == BAD_INPUT
    assert refused.stderr == (
        f"error: model '{record.id}' is registered, but its files are gone ({gone}): restore "
        "them, or chat with another model\n"
    )
    assert chat_ids() == set()


def test_a_tool_named_twice_is_given_once(tiny_model_dir) -> None:
    from llmfinetune_agent.cli.chat_cmd import _open_chats

    made = cli(
        str(tiny_model_dir), "--tools", "calculator,calculator", "-m", "hi", "--max-new-tokens", "1"
    )
    assert made.exit_code == 0, made.output
    with _open_chats() as chats:
        assert chats.describe(created_chat(made))["tools"] == ["calculator"]
