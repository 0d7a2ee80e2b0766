"""The deployment files agree with the settings the app reads."""

from __future__ import annotations

import re

import yaml

from llmfinetune_agent import settings as settings_module
from models.paths import HOME_ENV
from tests.api.conftest import REPO

SETTINGS_ENV = {
    value
    for name, value in vars(settings_module).items()
    if name.endswith("_ENV") and isinstance(value, str)
} | {HOME_ENV}


def test_compose_environment_names_are_settings_the_app_reads() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["postgres"]["healthcheck"]["test"]
    assert "home" in compose["volumes"]
    for name in ("api", "worker"):
        env = services[name]["environment"]
        ours = {k for k in env if k.startswith("FINETUNE_AGENT_")}
        assert ours <= SETTINGS_ENV, f"{name}: unknown settings {ours - SETTINGS_ENV}"
        assert ours == SETTINGS_ENV, f"{name}: settings not set {SETTINGS_ENV - ours}"
        assert env["FINETUNE_AGENT_DATABASE_URL"].startswith("postgresql://")
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "--no-workers" in services["api"]["command"]
    # Workers execute runs with no HTTP server: no port, and not the image's /healthz check.
    assert services["worker"]["command"][:2] == ["finetune-agent", "worker"]
    assert "ports" not in services["worker"]
    assert services["worker"]["healthcheck"]["disable"] is True
    assert services["worker"]["deploy"]["replicas"] >= 2


def test_dockerfile_environment_names_are_settings() -> None:
    text = (REPO / "Dockerfile").read_text()
    names = set(re.findall(r"\b(FINETUNE_AGENT_[A-Z_]+)=", text))
    assert names and names <= SETTINGS_ENV
