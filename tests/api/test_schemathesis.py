"""schemathesis fuzzes every operation of the app's OpenAPI: no input may cause a 5xx."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from api.main import create_app
from tests.api.conftest import live_server


@pytest.mark.slow
def test_no_server_errors_from_fuzzed_requests(settings, tmp_path) -> None:
    app = create_app(settings, workers=False, upload_limit_bytes=100_000)
    st = shutil.which("schemathesis") or shutil.which("st")
    assert st, "schemathesis is in the dev extra"
    with live_server(app) as url:
        result = subprocess.run(
            [
                st,
                "run",
                f"{url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                os.environ.get("FINETUNE_AGENT_FUZZ_EXAMPLES", "25"),
                "--request-timeout",
                "20",
                "--workers",
                "1",
                "--seed",
                "1",
                "--generation-database",
                "none",
                # An event stream stays open while its run is unfinished (here: queued for
                # ever, the app has no workers); it is covered by test_run_flow instead.
                "--exclude-path-regex",
                "/events$",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
