"""Training segments as Ray jobs: one detached `TrainingJob` actor per training attempt.

The trainer node of a run executed by the Ray backend calls `ClusterTraining` (through the
runtime context) instead of training in its own process. The attempt id the node computes is
the job's actor name, so there is at most one job per attempt in the cluster:

- no actor of that name: a `TrainingJob` is created (it writes `training_job_started` to the
  run's log) and runs `phases.training.ray_train.train_on_ray` (Ray Train, with failover) in
  a thread of its own;
- an actor of that name is alive (a driver died while it trained, and this is the driver that
  resumed the run): this driver attaches to it (`training_job_attached`) and waits for the
  same result, instead of starting a second job.

The job is detached and pinned to the head node with no CPU reserved (like Ray Train's own
controller, which runs beside it): it outlives the driver that created it, and its workers are
placed by `training.resources`. A cancel request reaches the workers through the job
(`request_stop`); the driver kills the job once it has its outcome.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmfinetune_agent.config import RunConfig
from llmfinetune_agent.run_store import RunStore
from llmfinetune_agent.settings import Settings

logger = logging.getLogger(__name__)

NAMESPACE = "finetune-agent"
HEAD_NODE = {"node:__internal_head__": 0.001}
"""Places a driver-side actor on the head node (Ray's own head-node resource), reserving no CPU."""
POLL_SECONDS = 0.5
STORAGE_SUBDIR = "ray"
"""Ray Train's storage (reported checkpoints) inside the training directory: shared storage,
as the run directory is."""
JOB_STARTED = "training_job_started"
JOB_ATTACHED = "training_job_attached"
WORKERS_STARTED = "training_workers_started"


class TrainingJob:
    """The actor of one training attempt (see the module docstring)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import ray

        self.spec = spec
        self.progress: list[dict[str, Any]] = []
        self.outcome: dict[str, Any] | None = None
        self.stop = False
        self.store = RunStore(spec["database_url"])
        node = ray.get_runtime_context().get_node_id()
        self._log(JOB_STARTED, {"attempt_id": spec["name"], "node_id": node, "pid": os.getpid()})
        self._thread = threading.Thread(target=self._train, name="training-job", daemon=True)
        self._thread.start()

    def poll(self, since: int) -> dict[str, Any]:
        """Progress reports from index `since` on, their count, and the outcome once known."""
        return {
            "progress": self.progress[since:],
            "count": len(self.progress),
            "outcome": self.outcome,
        }

    def request_stop(self) -> None:
        """Ask the workers to save a checkpoint and stop at their next step."""
        self.stop = True

    def stop_requested(self) -> bool:
        """The workers' `should_stop`."""
        return self.stop

    def add_progress(self, progress: dict[str, Any]) -> None:
        """A progress report of the first worker."""
        self.progress.append(progress)

    def workers_started(self, info: dict[str, Any]) -> None:
        """The workers (re)started, from which step: the run's log says so."""
        self._log(WORKERS_STARTED, {"attempt_id": self.spec["name"], **info})

    def _log(self, kind: str, payload: dict[str, Any]) -> None:
        try:
            self.store.append_event(run_id=self.spec["run_id"], kind=kind, payload=payload)
        except Exception:  # the log is for people; the training goes on without it
            logger.warning("Could not log %s for run %s", kind, self.spec["run_id"], exc_info=True)

    def _train(self) -> None:
        import ray

        from phases.training import TrainingInputError
        from phases.training.ray_train import train_on_ray

        me = ray.get_runtime_context().current_actor
        try:
            result = train_on_ray(
                **self.spec["request"],
                name=self.spec["name"],
                storage_path=Path(self.spec["storage_path"]),
                progress=lambda p: me.add_progress.remote(p.to_dict()),
                should_stop=lambda: ray.get(me.stop_requested.remote()),
                on_workers_started=lambda info: me.workers_started.remote(info),
            )
            self.outcome = {"result": result.to_dict()}
        except TrainingInputError as exc:
            self.outcome = {"input_error": str(exc)}
        except Exception as exc:  # Ray Train gave up (max_failures), or a bug: report it
            logger.error("Training job %s failed:\n%s", self.spec["name"], traceback.format_exc())
            self.outcome = {"error": f"{type(exc).__name__}: {exc}"}


class TrainingJobFailed(RuntimeError):
    """The training job ended with an error (Ray Train ran out of retries, say)."""


def connect(settings: Settings) -> None:
    """Join the settings' Ray cluster once per process (inside a Ray worker: already joined)."""
    import ray

    if ray.is_initialized():
        return
    address = settings.ray_address or "auto"
    try:
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)
    except ConnectionError as exc:
        raise ConnectionError(
            f"no Ray cluster at {address!r} (FINETUNE_AGENT_RAY_ADDRESS): start one with "
            f"`ray start --head --num-cpus=N` or point the variable at yours ({exc})"
        ) from None


class ClusterTraining:
    """The trainer node's way to train on the cluster (`RunContext.cluster_training`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(
        self,
        config: RunConfig,
        out: Path,
        data: dict[str, Any],
        *,
        attempt_id: str,
        stop_at_fraction: float | None = None,
        progress: Callable[[str, dict[str, Any]], None] | None = None,
        continue_from: Path | None = None,
        cache_dir: Path,
        should_stop: Callable[[], bool] | None = None,
        reward_modules: list[str] | None = None,
    ) -> dict[str, Any]:
        """Train one segment in the attempt's job (created, or attached to); its result."""
        connect(self.settings)
        request = {
            "config": config.training,
            "model": config.model,
            "train_path": Path(data["train_path"]),
            "eval_path": Path(data["eval_path"]) if data["eval_rows"] else None,
            "output_dir": Path(out),
            "max_length": config.data.max_length,
            "stop_at_fraction": stop_at_fraction,
            "cache_dir": cache_dir,
            "continue_from": continue_from,
            "reward_modules": reward_modules,
        }
        spec = {
            "request": request,
            "name": attempt_id,
            "run_id": attempt_id.rsplit("-", 1)[0],
            "storage_path": str(Path(out) / STORAGE_SUBDIR),
            "database_url": self.settings.database_url,
        }
        job, since = self._job(spec, progress)
        outcome = _wait(job, since, progress, should_stop)
        _kill(job)
        if "input_error" in outcome:
            from phases.training import TrainingInputError

            raise TrainingInputError(outcome["input_error"])
        if "error" in outcome:
            raise TrainingJobFailed(f"training job {attempt_id} failed: {outcome['error']}")
        return outcome["result"]

    def _job(self, spec: dict[str, Any], progress: Callable | None) -> tuple[Any, int]:
        """The attempt's job, alive already or created now; where its progress is to be read."""
        import ray

        name = spec["name"]
        try:
            job = ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:  # none: start it (`get_if_exists`: a racing driver gets the same one)
            remote = ray.remote(TrainingJob).options(
                name=name,
                namespace=NAMESPACE,
                lifetime="detached",
                get_if_exists=True,
                num_cpus=0,
                resources=HEAD_NODE,
                max_restarts=0,
            )
            return remote.remote(spec), 0
        count = ray.get(job.poll.remote(0))["count"]
        if progress is not None:
            progress(JOB_ATTACHED, {"attempt_id": name, "progress_reports": count})
        return job, max(0, count - 1)  # from its latest report on


def _wait(
    job: Any, since: int, progress: Callable | None, should_stop: Callable[[], bool] | None
) -> dict[str, Any]:
    """Forward the job's progress until it has an outcome; pass a cancel request on once."""
    import ray

    asked = False
    while True:
        state = ray.get(job.poll.remote(since))
        for report in state["progress"]:
            if progress is not None:
                progress("training_progress", report)
        since += len(state["progress"])
        if state["outcome"] is not None:
            return state["outcome"]
        if not asked and should_stop is not None and should_stop():
            job.request_stop.remote()
            asked = True
        time.sleep(POLL_SECONDS)


def _kill(job: Any) -> None:
    import ray

    try:
        ray.kill(job, no_restart=True)
    except Exception:  # already gone
        logger.debug("training job already gone", exc_info=True)


def kill_training_jobs(run_id: str) -> int:
    """Kill every training job of a run (it was cancelled or ended); how many there were."""
    import ray
    from ray.util import list_named_actors

    killed = 0
    for entry in list_named_actors(all_namespaces=True):
        name = entry["name"] if isinstance(entry, dict) else entry
        namespace = entry.get("namespace") if isinstance(entry, dict) else NAMESPACE
        if namespace == NAMESPACE and name.startswith(f"{run_id}-"):
            try:
                _kill(ray.get_actor(name, namespace=NAMESPACE))
                killed += 1
            except ValueError:
                continue
    return killed
