"""An unreachable run database ends any command with one clear line and exit code 1: no
driver traceback, no password echoed, no minutes of silent retrying."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _cli(home: Path, database_url: str | None, *args: str) -> subprocess.CompletedProcess:
    """The CLI in a fresh process on `home`, with `database_url` (None: the home's SQLite)."""
    env = {**os.environ, "FINETUNE_AGENT_HOME": str(home)}
    env.pop("FINETUNE_AGENT_DATABASE_URL", None)
    if database_url is not None:
        env["FINETUNE_AGENT_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "llmfinetune_agent.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["runs", "list"], "cannot use the run database postgresql://agent:***@127.0.0.1"),
        (["run", str(REPO / "configs" / "quickstart-tiny.json")], "Postgres checkpoint database"),
        (["serve", "--port", "0"], "Postgres checkpoint database"),
    ],
)
def test_an_unreachable_database_is_one_line(args: list[str], says: str, tmp_path: Path) -> None:
    url = f"postgresql://agent:s3cret@127.0.0.1:{_closed_port()}/x"
    done = _cli(tmp_path, url, *args)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "s3cret" not in done.stderr + done.stdout
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    assert line.startswith("error: ") and says in line and "Connection refused" in line


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("garbage", "Unsupported database URL 'garbage' in FINETUNE_AGENT_DATABASE_URL"),
        ("mysql://x@y/z", "Unsupported database URL"),
        ("sqlite:///", "The run store needs a SQLite file"),
    ],
)
def test_a_database_url_of_no_usable_kind_is_one_line(url: str, says: str, tmp_path) -> None:
    done = _cli(tmp_path, url, "runs", "list")
    assert done.returncode == 2, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    assert line.startswith(f"error: {says}")


@pytest.mark.parametrize(
    "damage", [b"not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 5000]
)
def test_a_damaged_sqlite_file_is_one_line(damage: bytes, tmp_path: Path) -> None:
    """A truncated or overwritten database file ended every command in a 148-line traceback."""
    (tmp_path / "finetune-agent.db").write_bytes(damage)
    done = _cli(tmp_path, None, "runs", "list")
    assert done.returncode == 1, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    assert line.startswith("error: cannot use the run database sqlite:///"), line
    assert "is damaged or is not a SQLite database" in line


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "list"],
        ["stats"],
        ["runs", "history", "x"],
        ["cancel", "x"],
        ["export", "runs", "out.json"],
        ["chat", "--chat", "x", "-m", "hi"],
    ],
)
def test_a_home_that_is_a_file_is_one_line(args: list[str], tmp_path: Path) -> None:
    """FINETUNE_AGENT_HOME naming a file (or /dev/null) ended every command in a mkdir
    traceback (FileExistsError); now one line names the file and the setting, exit 2."""
    home = tmp_path / "home"
    home.write_text("not a folder")
    done = _cli(home, None, *args)
    assert done.returncode == 2, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    assert line == (
        f"error: cannot make the folder {home}: {home} is not a folder. "
        f"Check FINETUNE_AGENT_HOME='{home}'."
    )


def test_a_sqlite_url_under_a_file_names_the_url(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    url = f"sqlite:///{blocker}/sub/run.db"
    done = _cli(tmp_path / "home", url, "runs", "list")
    assert done.returncode == 2, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    assert line == (
        f"error: cannot make the folder {blocker}/sub: {blocker} is not a folder. "
        f"Check FINETUNE_AGENT_DATABASE_URL='{url}'."
    )
