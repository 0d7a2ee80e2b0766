"""One of the processes `train_in_processes` launches: `python -m phases.training.process_entry
REQUEST` (under `accelerate launch`, which sets RANK and WORLD_SIZE).

It runs `train()` with the request's arguments. The first process (rank 0) writes progress
lines and the result; any other process that fails writes its error, with the time it failed,
so the parent can tell the cause from the failures it sets off in the others. Every process
reads the `stop` file for `should_stop` (the callbacks make them agree on the step) and exits
soon after the process that launched them dies, so a killed run never leaves training behind it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

from phases.training.multiprocess import PROGRESS_FILE, RESULT_FILE, STOP_FILE, error_file
from phases.training.results import TrainingProgress

PARENT_CHECK_SECONDS = 0.5


def main(request_path: str) -> int:
    """Train as the request says; 0 on success, 2 for unusable input, 1 otherwise."""
    from phases.training.config import parse_training_config
    from phases.training.data import TrainingInputError
    from phases.training.run import train

    request = json.loads(Path(request_path).read_text(encoding="utf-8"))
    launch_dir = Path(request_path).parent
    rank = int(os.environ.get("RANK", "0"))
    first = rank == 0
    _exit_with(request["parent_pid"])
    stop_file = launch_dir / STOP_FILE
    try:
        result = train(
            parse_training_config(request["config"]),
            model=_model(request["model"]),
            train_path=Path(request["train_path"]),
            eval_path=Path(request["eval_path"]) if request["eval_path"] else None,
            output_dir=Path(request["output_dir"]),
            max_length=request["max_length"],
            stop_at_fraction=request["stop_at_fraction"],
            progress=_progress_writer(launch_dir / PROGRESS_FILE) if first else None,
            should_stop=stop_file.exists,
            cache_dir=Path(request["cache_dir"]) if request["cache_dir"] else None,
            continue_from=Path(request["continue_from"]) if request["continue_from"] else None,
            reward_modules=request.get("reward_modules"),
        )
    except TrainingInputError as exc:
        _write_outcome(launch_dir, rank, {"input_error": str(exc)})
        return 2
    except Exception as exc:
        traceback.print_exc()
        error = {"error": f"{type(exc).__name__}: {exc}", "failed_at": time.time()}
        _write_outcome(launch_dir, rank, error)
        return 1
    _write_outcome(launch_dir, rank, {"result": result.to_dict()})
    return 0


def _model(value):
    if isinstance(value, dict):
        from models.config import ModelConfig

        return ModelConfig.model_validate(value)
    return value


def _progress_writer(path: Path):
    def write(progress: TrainingProgress) -> None:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(progress.to_dict()) + "\n")

    return write


def _write_outcome(launch_dir: Path, rank: int, outcome: dict) -> None:
    """The first process's outcome, or another's failure; the others' results are the same."""
    if rank != 0 and "result" in outcome:
        return
    path = launch_dir / (RESULT_FILE if rank == 0 else error_file(rank))
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(outcome), encoding="utf-8")
    partial.replace(path)  # the parent never reads half a file


def _exit_with(parent_pid: int) -> None:
    """End this process once the process that launched the group is gone (a SIGKILL leaves
    nobody to end it otherwise)."""

    def watch() -> None:
        while True:
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            time.sleep(PARENT_CHECK_SECONDS)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
