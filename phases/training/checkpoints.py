"""Find the newest resumable Trainer checkpoint in a run's checkpoint directory.

The Trainer writes `trainer_state.json` last, after the weights, optimizer, scheduler and RNG
state; a `checkpoint-N` directory without a readable one was cut off mid-write (a crash or a
kill) and is removed so that neither resuming nor checkpoint rotation ever picks it.
Resuming hides the one warning that is expected there (tied embeddings reported as missing).
"""

import ast
import json
import logging
import re
import shutil
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TRAINER_STATE = "trainer_state.json"
logger = logging.getLogger(__name__)
_CHECKPOINT_DIR = re.compile(r"^checkpoint-(\d+)$")


def is_valid_checkpoint(directory: Path) -> bool:
    """True when `directory` holds a complete Trainer checkpoint for its step."""
    match = _CHECKPOINT_DIR.match(directory.name)
    state_file = directory / TRAINER_STATE
    if match is None or not state_file.is_file():
        return False
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return state.get("global_step") == int(match.group(1))


def damaged_files(directory: Path) -> list[str]:
    """Names of the checkpoint's weight and state files that cannot be read whole: a
    safetensors file shorter than its header says, or a torch file (optimizer, scheduler, RNG
    state) that is not a complete zip archive. Damage after the checkpoint was written (a
    truncated copy, a full disk) that `trainer_state.json` cannot show."""
    checks = {".safetensors": _whole_safetensors, ".pt": zipfile.is_zipfile}
    checks.update({".pth": zipfile.is_zipfile, ".bin": zipfile.is_zipfile})
    return [
        path.name
        for path in sorted(directory.iterdir())
        if path.suffix in checks and not checks[path.suffix](path)
    ]


def _whole_safetensors(path: Path) -> bool:
    """The 8-byte header length, the JSON header, and as many bytes as its tensors end at."""
    try:
        with path.open("rb") as file:
            size = int.from_bytes(file.read(8), "little")
            if size <= 0 or size > 100_000_000:
                return False
            header = json.loads(file.read(size))
        ends = [
            entry["data_offsets"][1]
            for name, entry in header.items()
            if name != "__metadata__" and isinstance(entry, dict)
        ]
        return path.stat().st_size >= 8 + size + max(ends, default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return False


def latest_checkpoint(checkpoints_dir: Path, *, remove_broken: bool = True) -> Path | None:
    """The valid `checkpoint-N` with the largest N, or None; half-written ones (no trainer
    state) are deleted. One whose files were damaged later is passed over, not deleted (the
    user may still want to look at it or restore it), and logged."""
    if not checkpoints_dir.is_dir():
        return None
    best: tuple[int, Path] | None = None
    for directory in checkpoints_dir.iterdir():
        match = _CHECKPOINT_DIR.match(directory.name)
        if match is None or not directory.is_dir():
            continue
        if not is_valid_checkpoint(directory):
            if remove_broken:
                shutil.rmtree(directory, ignore_errors=True)
            continue
        damaged = damaged_files(directory)
        if damaged:
            logger.warning("Passing over %s: damaged %s", directory, ", ".join(damaged))
            continue
        step = int(match.group(1))
        if best is None or step > best[0]:
            best = (step, directory)
    return None if best is None else best[1]


def checkpoint_state(checkpoint: Path | None) -> dict:
    """The Trainer state saved in a checkpoint ({} for none)."""
    if checkpoint is None:
        return {}
    return json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8"))


def checkpoint_step(checkpoint: Path | None) -> int:
    """The global step a checkpoint was saved at (0 for none)."""
    return int(checkpoint_state(checkpoint).get("global_step", 0))


_MISSING_KEYS = "There were missing keys in the checkpoint model loaded: "


def tied_parameter_names(model) -> set[str]:
    """Names of parameters that are another parameter under a second name (e.g. `lm_head.weight`
    tied to the input embeddings). A checkpoint stores such a tensor once, under its first name."""
    seen: set[int] = set()
    tied: set[str] = set()
    for name, parameter in model.named_parameters(remove_duplicate=False):
        if id(parameter) in seen:
            tied.add(name)
        seen.add(id(parameter))
    return tied


class _TiedKeysFilter(logging.Filter):
    """Drops the Trainer's "missing keys" warning when every missing key is a tied parameter."""

    def __init__(self, tied: set[str]) -> None:
        super().__init__()
        self.tied = tied

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith(_MISSING_KEYS):
            return True
        try:
            missing = ast.literal_eval(message[len(_MISSING_KEYS) :].rstrip("."))
        except (ValueError, SyntaxError):
            return True
        return not (missing and set(missing) <= self.tied)


@contextmanager
def expected_resume_warnings_hidden(model) -> Iterator[None]:
    """Resume without transformers' "missing keys ... ['lm_head.weight']" warning.

    With tied input and output embeddings the checkpoint holds the tensor once, so the tied name
    is always "missing" on load and the Trainer re-ties it: expected, nothing to act on. Any
    other missing key (a real mismatch) is still reported.
    """
    trainer_logger = logging.getLogger("transformers.trainer")
    hidden = _TiedKeysFilter(tied_parameter_names(model))
    trainer_logger.addFilter(hidden)
    try:
        yield
    finally:
        trainer_logger.removeFilter(hidden)
