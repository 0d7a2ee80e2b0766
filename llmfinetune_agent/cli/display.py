"""Rich terminal output for runs: the current agent, a training progress bar, gates, results."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table


class RunDisplay:
    """Turns run events into terminal output (plain lines when not on a terminal)."""

    def __init__(self, *, gate_json: bool = False) -> None:
        self.console = Console(highlight=False, soft_wrap=True)
        self.gate_json = gate_json  # `--json`: a gate's full payload instead of its summary
        self.progress: Progress | None = None
        self.task: Any = None

    def say(self, text: str) -> None:
        self._stop_bar()
        self.console.print(text, markup=False)

    def error(self, text: str) -> None:
        self._stop_bar()
        self.console.print(f"error: {text}", style="red", markup=False)

    def on_event(self, kind: str, payload: dict[str, Any]) -> None:
        """Runner callback: one event at a time."""
        if kind == "training_progress":
            self._bar("training", payload["step"], payload["total_steps"], loss=payload.get("loss"))
        elif kind == "evaluation_progress":
            self._bar("evaluating", payload["done"], payload["total"])
        elif kind == "route":
            self.say(f"→ {payload['next']}: {payload['reason']}")
        elif kind == "decision":
            self.say(f"  [decision] {decision_line(payload)}")
        elif kind == "training_resumed" and "step" in payload:
            self.say(f"  [training] resumed from step {payload['step']}")
        elif kind in ("agent", "training_resumed", "failed"):
            text = payload.get("message") or json.dumps(payload, default=str)
            self.say(f"  [{kind}] {text}")
        elif kind == "data_report":
            for line in payload.get("summary", []):
                self.say(f"  {line}")

    def gate(self, pending: dict[str, Any], *, config: dict[str, Any] | None = None) -> None:
        """Show a pending gate: its summary screen, or with `--json` its whole payload."""
        self._stop_bar()
        if self.gate_json:
            self.console.print(json.dumps(pending, indent=2, default=str), markup=False)
            return
        from llmfinetune_agent.cli.gate_screens import gate_screen

        self.console.print(gate_screen(pending, config=config))

    def revised_plan(self, estimate: dict[str, Any], note: str, *, before: dict[str, Any]) -> None:
        """After an edit at the plan gate: the new estimate, next to the one it replaces."""
        from llmfinetune_agent.cli.gate_screens import estimate_line

        self.console.print(f"revised plan: {estimate_line(estimate)}", style="bold", markup=False)
        if before:
            self.console.print(f"  was:        {estimate_line(before)}", style="dim", markup=False)
        if note:
            self.console.print(f"  ({note})", style="dim", markup=False)

    def finished(self, record: Any) -> None:
        self._stop_bar()
        style = {"completed": "green", "failed": "red"}.get(record.status, "yellow")
        self.console.print(f"run {record.id}: {record.status}", style=style)
        if record.model_path:
            self.say(f"model: {record.model_path}")
        if record.error:
            self.say(f"reason: {record.error}")

    def _bar(self, label: str, done: int, total: int, loss: float | None = None) -> None:
        if self.progress is None:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task(label, total=total, info="")
        info = f"loss {loss:.4f}" if loss is not None else ""
        self.progress.update(self.task, description=label, completed=done, total=total, info=info)

    def _stop_bar(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def decision_line(decision: dict[str, Any]) -> str:
    """'approve_plan: edit {"training": {"epochs": 2}} — two epochs'."""
    from llmfinetune_agent.cli.readable import compact_json

    text = f"{decision.get('gate')}: {decision.get('decision')}"
    if decision.get("patch"):
        text += f" {compact_json(decision['patch'])}"
    if decision.get("route"):
        text += f" (route {decision['route']})"
    return text + (f" — {decision['comment']}" if decision.get("comment") else "")


LIVE_TRAINING = ("running", "interrupted")


def running_line(info: dict[str, Any]) -> str:
    """'running: trainer, step 120 of 1200, loss 2.3412, about 1m 05s left' (or 'interrupted
    in: trainer, step 120 of 1200, ...' when the executing process is gone)."""
    text = f"{'interrupted in' if info.get('interrupted') else 'running'}: {info['current_node']}"
    training = info.get("training") or {}
    if info["current_node"] != "trainer" or training.get("status") not in LIVE_TRAINING:
        return text
    if training.get("global_step") is None:
        return f"{text}, {training.get('message') or 'starting'}"
    text += f", step {training['global_step']} of {training['total_steps']}"
    if training.get("train_loss") is not None:
        text += f", loss {training['train_loss']:.4f}"
    eta = training.get("eta_seconds")
    if eta is not None:
        minutes, seconds = divmod(round(eta), 60)
        text += f", about {minutes}m {seconds:02d}s left" if minutes else f", about {seconds}s left"
    return text


def print_run(info: dict[str, Any]) -> None:
    """Human-readable `runs show`."""
    from llmfinetune_agent.cli.readable import fmt_number

    console = Console(highlight=False, soft_wrap=True)
    console.print(f"run {info['id']} ({info['name']}): {info['status']}", markup=False)
    if info.get("pending_interrupt"):
        p = info["pending_interrupt"]
        console.print(f"waiting at {p['kind']}: {p['message']}", markup=False)
    if info["status"] == "running" and info.get("current_node"):
        console.print(running_line(info), markup=False)
    metrics = info.get("metrics") or {}
    if metrics.get("tuned"):
        table = Table("metric", "base", "tuned")
        for name, value in metrics["tuned"].items():
            base = metrics.get("base", {}).get(name)
            table.add_row(name, fmt_number(base), fmt_number(value))
        console.print(table)
    for d in info.get("decisions", []):
        console.print(f"decision {decision_line(d)}", markup=False)
    for key in ("model_path", "error", "outcome_reason"):
        if info.get(key):
            console.print(f"{key}: {info[key]}", markup=False)
