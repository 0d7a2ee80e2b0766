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


def test_compose_ray_profile_runs_a_head_that_dispatches_and_a_worker_node() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    head, node = services["ray-head"], services["ray-worker"]
    assert head["profiles"] == node["profiles"] == ["ray"]
    start_head = head["command"][-1]
    # The head offers no CPUs (training goes to the worker nodes) and is the runs' Ray driver.
    assert "ray start --head" in start_head and "--num-cpus=0" in start_head
    assert start_head.endswith("exec finetune-agent worker")
    assert head["environment"]["FINETUNE_AGENT_BACKEND"] == "ray"
    assert set(head["environment"]) == SETTINGS_ENV
    host, port = head["environment"]["FINETUNE_AGENT_RAY_ADDRESS"].split(":")
    assert host == "ray-head" and f"--port={port}" in start_head
    assert f"--address=ray-head:{port}" in node["command"][-1]
    # Every node mounts the home volume: runs and Ray Train's checkpoints are shared storage.
    for service in (head, node):
        assert any(v.startswith("home:") for v in service["volumes"])
    # The local replicas stay on the local backend unless told otherwise.
    assert services["worker"]["environment"]["FINETUNE_AGENT_BACKEND"] == "local"


def test_kuberay_manifest_places_the_dispatcher_on_the_head_and_training_on_workers() -> None:
    documents = list(yaml.safe_load_all((REPO / "deploy" / "raycluster.yaml").read_text()))
    [cluster] = [d for d in documents if d["kind"] == "RayCluster"]
    head = cluster["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    containers = {c["name"]: c for c in head["template"]["spec"]["containers"]}
    dispatcher = containers["dispatcher"]
    assert dispatcher["command"] == ["finetune-agent", "worker"]
    env = {e["name"]: e.get("value") for e in dispatcher["env"]}
    assert set(env) <= SETTINGS_ENV and env["FINETUNE_AGENT_BACKEND"] == "ray"
    # The driver reaches the head's raylet through the shared /tmp/ray.
    mounts = {m["mountPath"] for m in dispatcher["volumeMounts"]}
    assert "/tmp/ray" in mounts and mounts == {
        m["mountPath"] for m in containers["ray-head"]["volumeMounts"]
    }
    [gpu] = cluster["spec"]["workerGroupSpecs"]
    assert gpu["rayStartParams"]["num-gpus"] == "1"
    [worker] = gpu["template"]["spec"]["containers"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"
    claim = documents[0]
    assert claim["kind"] == "PersistentVolumeClaim" and claim["spec"]["accessModes"] == [
        "ReadWriteMany"
    ]
