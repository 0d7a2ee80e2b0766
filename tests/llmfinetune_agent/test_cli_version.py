"""`finetune-agent --version` prints the installed version without loading the heavy libraries."""

import subprocess
import sys
from importlib.metadata import version

# Runs the CLI in a fresh interpreter and reports which heavy modules the command imported.
_PROBE = """
import sys
from llmfinetune_agent.cli import main
sys.argv = ["finetune-agent", *sys.argv[1:]]
try:
    main()
except SystemExit as stop:
    heavy = sorted(m for m in ("torch", "transformers", "langgraph", "sqlalchemy") if m in sys.modules)
    print("HEAVY:", ",".join(heavy), file=sys.stderr)
    raise
"""


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=60
    )


def test_version_prints_the_package_version_and_imports_nothing_heavy() -> None:
    done = _cli("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"finetune-agent {version('finetune-agent')}\n"
    assert "HEAVY: \n" in done.stderr


def test_help_lists_the_version_option_and_imports_nothing_heavy() -> None:
    done = _cli("--help")
    assert done.returncode == 0, done.stderr
    assert "--version  Print the version and exit." in done.stdout
    assert "run " in done.stdout and "resume " in done.stdout
    assert "HEAVY: \n" in done.stderr
