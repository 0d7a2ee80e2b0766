"""The `python` tool's sandbox: no network, a wall-clock timeout, a memory limit, an empty
environment, no writes outside its temporary folder, a bounded number of processes. (The
service answering while a program runs: tests/api/test_chats_api.py.)"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from llmfinetune_agent.tools.python_sandbox import SandboxLimits, run_python

LIMITS = SandboxLimits(timeout_seconds=10)


def test_a_plain_program_runs_and_prints() -> None:
    result = run_python("print(sum(range(10)))", LIMITS)
    assert (result.stdout, result.exit_code, result.timed_out) == ("45\n", 0, False)
    assert result.as_text() == "45"


def test_a_network_connection_fails() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.2)
        port = server.getsockname()[1]
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)\nprint('connected')"
        result = run_python(code, LIMITS)
        with pytest.raises(TimeoutError):
            server.accept()  # nothing ever reached the listening socket
    assert result.exit_code == 1 and "connected" not in result.stdout
    assert "PermissionError" in result.stderr
    assert result.isolation["network"] in ("namespace", "user-namespace")
    assert result.isolation["sockets"] == "seccomp"


def test_an_endless_loop_ends_at_the_timeout() -> None:
    result = run_python("while True: pass", SandboxLimits(timeout_seconds=1.5))
    assert result.timed_out and result.exit_code == 137  # SIGKILL
    assert result.as_text().startswith("The program was stopped: it ran past its time limit.")


def test_allocating_10_gb_fails() -> None:
    result = run_python("data = bytearray(10 * 1024**3)\nprint('allocated')", LIMITS)
    assert result.exit_code == 1 and "MemoryError" in result.stderr
    assert "allocated" not in result.stdout


def test_the_program_sees_none_of_the_service_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINETUNE_AGENT_API_KEY", "secret-api-key")
    monkeypatch.setenv("FINETUNE_AGENT_DATABASE_URL", "postgresql://user:secret-pw@db/x")
    code = (
        "import os, json\n"
        "print(json.dumps(sorted(os.environ)))\n"
        f"try:\n    print(open('/proc/{os.getpid()}/environ', 'rb').read())\n"
        "except OSError as exc:\n    print('proc', type(exc).__name__)\n"
    )
    result = run_python(code, LIMITS)
    assert result.exit_code == 0, result.stderr
    names, proc = result.stdout.splitlines()
    assert set(eval(names)) <= {"LC_CTYPE"}  # noqa: S307 - our own JSON list; Python's locale coercion
    assert proc == "proc PermissionError"
    assert "secret" not in result.stdout + result.stderr


def test_writing_outside_its_folder_fails_and_inside_works(tmp_path: Path) -> None:
    outside = Path("/tmp") / f"sandbox-escape-{os.getpid()}.txt"
    code = (
        "open('inside.txt', 'w').write('ok')\nprint(open('inside.txt').read())\n"
        f"open({str(outside)!r}, 'w').write('escaped')\n"
    )
    result = run_python(code, LIMITS)
    assert result.stdout == "ok\n"
    assert result.exit_code == 1 and "PermissionError" in result.stderr
    assert not outside.exists()


def test_reading_the_service_files_fails() -> None:
    readme = Path(__file__).resolve().parents[3] / "README.md"
    result = run_python(f"print(open({str(readme)!r}).read()[:10])", LIMITS)
    assert result.exit_code == 1 and "PermissionError" in result.stderr


def test_processes_are_limited() -> None:
    code = "import os\nfor _ in range(200):\n    if os.fork() == 0:\n        import time; time.sleep(30)\n"
    result = run_python(code, SandboxLimits(timeout_seconds=5, processes=8))
    assert result.exit_code == 1 and "BlockingIOError" in result.stderr


def test_endless_output_is_cut() -> None:
    result = run_python(
        "while True: print('x' * 1000)", SandboxLimits(timeout_seconds=2, max_output_chars=5000)
    )
    assert result.truncated and len(result.stdout) == 5000


def test_output_keeps_exactly_the_limit_in_characters() -> None:
    limits = SandboxLimits(max_output_chars=1000)
    big = run_python("import sys; print('y' * 1_000_000); sys.stderr.write('é' * 5000)", limits)
    assert (big.stdout, big.stderr, big.truncated) == ("y" * 1000, "é" * 1000, True)
    fits = run_python("print('é' * 999)", limits)  # 999 characters and a newline: all kept
    assert (fits.stdout, fits.truncated) == ("é" * 999 + "\n", False)
