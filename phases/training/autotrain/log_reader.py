"""Reading AutoTrain's output as it streams: progress, losses, and the text of a crash.

AutoTrain (0.8.36) prints loguru records (`INFO | time | module:function:line - message`),
the Trainer's tqdm bar (`  33%|███▎  | 1/3 [00:00<00:00, ...]`, redrawn with carriage returns),
and, through its `LossLoggingCallback`, every Trainer log as a Python dict
(`on_log:367 - {'loss': 7.68, 'grad_norm': 2.9, 'learning_rate': 0.001, 'epoch': 1.0}`).
A crash inside training is caught by its `@monitor` decorator, which logs
`train has failed due to an exception: Traceback ...` and lets the process exit 0
(autotrain-advanced#877): the text, not the exit code, says what happened.
"""

from __future__ import annotations

import ast
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

TRAINING_STARTED = "Starting to train..."
MONITOR_FAILURE = "has failed due to an exception"
_RECORD = re.compile(r"^(DEBUG|INFO|SUCCESS|WARNING|ERROR|CRITICAL)\s*\| ")
_TRAINER_LOG = re.compile(r":on_log:\d+ - (\{.*\})\s*$")
_BAR = re.compile(r"\d+%\|[^|]*\|\s*(\d+)/(\d+) \[")
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)): ?(.*)$")
TAIL_LINES = 40


@dataclass
class Progress:
    """Where training stands after a line: step of total, the newest loss, an ETA."""

    step: int
    total_steps: int
    loss: float | None
    learning_rate: float | None
    epoch: float | None
    eta_seconds: float | None


@dataclass
class AutoTrainLog:
    """What the output said so far; `feed` it each line (split at newlines and carriage returns)."""

    logging_steps: int = 1
    started: bool = False
    step: int = 0
    total_steps: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    failed: bool = False
    traceback: list[str] = field(default_factory=list)
    tail: deque = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    _in_traceback: bool = False
    _started_at: float | None = None

    def feed(self, line: str) -> Progress | None:
        """Take one line; return the progress it reports (a new step or loss), if any."""
        text = line.rstrip()
        if not text.strip():
            return None
        self.tail.append(text)
        self._follow_traceback(text)
        if TRAINING_STARTED in text:
            self.started, self._started_at = True, time.monotonic()
            return None
        logged = _TRAINER_LOG.search(text)
        if logged:
            return self._trainer_log(logged.group(1))
        bar = _BAR.search(text)
        if bar and self.started and self.summary is None:
            step, total = int(bar.group(1)), int(bar.group(2))
            if (step, total) != (self.step, self.total_steps):
                self.step, self.total_steps = step, total
                return self.progress() if step else None
        return None

    def progress(self) -> Progress:
        """The current step, total and newest loss."""
        last = next((h for h in reversed(self.history) if "loss" in h), {})
        return Progress(
            step=self.step,
            total_steps=self.total_steps,
            loss=last.get("loss"),
            learning_rate=last.get("learning_rate"),
            epoch=last.get("epoch"),
            eta_seconds=self._eta(),
        )

    def error_text(self) -> str | None:
        """AutoTrain's own words for what went wrong: the exception a traceback ends with (and
        the one that started a chain of them), or None when the output shows no error."""
        lines = self.traceback or list(self.tail)
        raised = [line.strip() for line in lines if _EXCEPTION.match(line.strip())]
        if raised:
            last, first = raised[-1], raised[0]
            return last if first == last else f"{last} (caused by {first})"
        if self.failed:
            return next((line for line in reversed(self.tail) if "ERROR" in line), None)
        return None

    def _trainer_log(self, text: str) -> Progress | None:
        try:
            entry = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return None
        if not isinstance(entry, dict):
            return None
        if "train_runtime" in entry:
            self.summary = {**entry, "step": self.total_steps or self.step}
            return None
        logs = sum(1 for h in self.history if "loss" in h) + ("loss" in entry)
        # The Trainer logs when global_step % logging_steps == 0: the n-th loss is at step n*k.
        step = logs * self.logging_steps if "loss" in entry else self.step
        if self.total_steps:
            step = min(step, self.total_steps)
        self.history.append({**entry, "step": step})
        self.step = max(self.step, step)
        return self.progress() if "loss" in entry else None

    def _follow_traceback(self, text: str) -> None:
        # A chained exception prints further "Traceback" headers inside the same traceback.
        starts = text.startswith("Traceback (most recent call last)") and not self._in_traceback
        if MONITOR_FAILURE in text or starts:
            self.failed = self.failed or MONITOR_FAILURE in text
            self._in_traceback, self.traceback = True, [text]
        elif self._in_traceback:
            if _RECORD.match(text):
                self._in_traceback = False
            else:
                self.traceback.append(text)

    def _eta(self) -> float | None:
        if not self._started_at or not self.step or not self.total_steps:
            return None
        elapsed = time.monotonic() - self._started_at
        return round(elapsed / self.step * (self.total_steps - self.step), 1)
