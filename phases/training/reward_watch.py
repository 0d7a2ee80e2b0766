"""Watch what the rewards of a GRPO/RLOO run do, step by step, and stop a run they no longer teach.

`RewardRecorder` wraps the reward functions: TRL calls them once per generation batch (one
optimizer step), so after the last one it holds that step's prompts, completions and each
function's rewards. `RewardWatch` (a TrainerCallback) turns that into per-step numbers: the
weighted mean reward, each function's mean, the share of prompt groups whose rewards have no
spread (no gradient: TRL's `frac_reward_zero_std`) and the share of completions cut at the length
cap. Every `log_completions_steps` it writes sample completions with their rewards to
`completions.jsonl` and the progress report; its guards stop (or flag) the run when the spread
stays at zero or every completion is clipped for too many steps in a row.

With several data-parallel processes each one scores its share of the generation batch; the
watch gathers every share (in process order, which keeps TRL's prompt groups whole), so all
processes compute the same numbers and a guard stops them at the same step. Only the first
process writes the files.
"""

import json
import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from phases.training.callbacks import from_every_process
from phases.training.reward_config import RewardGuards

COMPLETIONS_FILE = "completions.jsonl"
GUARD_FILE = "reward_guard.json"  # a guard that fired, kept for the run's later segments
SAMPLES_PER_LOG = 4


class RewardRecorder:
    """The last generation batch's completions and per-function rewards."""

    def __init__(self, functions: list, weights: list[float], num_generations: int) -> None:
        self.names = [f.__name__ for f in functions]
        self.weights = weights
        self.num_generations = num_generations
        self.functions = [self._recording(f) for f in functions]
        self._pending: dict[str, list[float]] = {}
        self.batch: dict[str, Any] | None = None

    def _recording(self, function):
        name = function.__name__

        def reward(prompts: list, completions: list, **kwargs: Any) -> list[float]:
            scores = function(prompts=prompts, completions=completions, **kwargs)
            self._pending[name] = [math.nan if s is None else float(s) for s in scores]
            if len(self._pending) == len(self.names):
                self._close(prompts, completions, kwargs.get("completion_ids"))
            return scores

        reward.__name__ = name
        return reward

    def _close(self, prompts: list, completions: list, completion_ids: list | None) -> None:
        rewards, self._pending = self._pending, {}
        self.batch = {
            "prompts": list(prompts),
            "completions": list(completions),
            "lengths": [len(ids) for ids in completion_ids] if completion_ids else None,
            "rewards": rewards,
        }


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(f"{m.get('role')}: {m.get('content')}" for m in value)
    return str(value)


def batch_stats(
    batch: dict[str, Any], names: list[str], weights: list[float], groups_of: int, cap: int
) -> dict[str, Any]:
    """Mean reward (weighted sum), per-function means, zero-spread and clipped shares."""
    count = len(batch["completions"])
    totals = [
        sum(w * _finite(batch["rewards"][n][i]) for n, w in zip(names, weights, strict=True))
        for i in range(count)
    ]
    groups = [totals[i : i + groups_of] for i in range(0, count, groups_of)]
    flat = [g for g in groups if max(g) - min(g) < 1e-9]
    lengths = batch["lengths"] or []
    return {
        "reward": sum(totals) / max(count, 1),
        "functions": {
            n: sum(_finite(v) for v in batch["rewards"][n]) / max(count, 1) for n in names
        },
        "zero_spread": len(flat) / max(len(groups), 1),
        "clipped": sum(length >= cap for length in lengths) / len(lengths) if lengths else 0.0,
        "totals": totals,
    }


def _whole(shares: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The generation batch from every process's share of it (one share: that share)."""
    present = [share for share in shares if share is not None]
    if len(present) < 2:
        return present[0] if present else None
    lengths = [share["lengths"] for share in present]
    return {
        "prompts": [p for share in present for p in share["prompts"]],
        "completions": [c for share in present for c in share["completions"]],
        "lengths": None if None in lengths else [n for part in lengths for n in part],
        "rewards": {
            name: [r for share in present for r in share["rewards"][name]]
            for name in present[0]["rewards"]
        },
    }


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


class RewardWatch(TrainerCallback):
    """Per-step reward numbers, sample completions every N steps, and the collapse guards."""

    def __init__(
        self,
        recorder: RewardRecorder,
        *,
        guards: RewardGuards,
        max_completion_length: int,
        log_every: int,
        output_dir: Path | None,
    ) -> None:
        self.recorder = recorder
        self.guards = guards
        self.cap = max_completion_length
        self.log_every = log_every
        self.path = Path(output_dir) / COMPLETIONS_FILE if output_dir else None
        self.latest: dict[str, Any] | None = None
        self.fired: dict[str, Any] | None = None
        self._runs = {"zero_reward_spread": 0, "completions_clipped": 0}
        self.writes = True  # the first (or only) process writes the files

    def on_train_begin(self, args, state, control, **kwargs):
        if self.path is None:
            return
        self.writes = state.is_world_process_zero
        guard_file = self.path.parent / GUARD_FILE
        if state.global_step == 0:
            # A fresh start: what an earlier, failed attempt left here belongs to no segment.
            if self.writes:
                for stale in (guard_file, self.path):
                    stale.unlink(missing_ok=True)
        elif self.fired is None and guard_file.is_file():
            self.fired = json.loads(guard_file.read_text(encoding="utf-8"))

    def on_step_end(self, args, state, control, **kwargs):
        batch, self.recorder.batch = _whole(from_every_process(self.recorder.batch)), None
        if batch is None:
            return
        rec = self.recorder
        stats = batch_stats(batch, rec.names, rec.weights, rec.num_generations, self.cap)
        totals = stats.pop("totals")
        self.latest = {"step": state.global_step, **_rounded(stats)}
        if state.global_step % self.log_every == 0 or state.global_step == 1:
            self.latest["samples"] = self._samples(batch, totals, state.global_step)
        if self.fired is None:
            self._guard(stats, state.global_step, control)

    def progress_extra(self) -> dict[str, Any]:
        """What the progress report of this step adds: rewards, samples, a fired guard."""
        if self.latest is None:
            return {}
        extra = {"rewards": {k: v for k, v in self.latest.items() if k != "samples"}}
        if "samples" in self.latest:
            extra["samples"] = self.latest["samples"]
        if self.fired is not None:
            extra["reward_guard"] = self.fired
        return extra

    def _samples(self, batch: dict[str, Any], totals: list[float], step: int) -> list[dict]:
        rows = []
        for i in range(min(SAMPLES_PER_LOG, len(batch["completions"]))):
            rows.append(
                {
                    "step": step,
                    "prompt": _text(batch["prompts"][i]),
                    "completion": _text(batch["completions"][i]),
                    "reward": round(totals[i], 4),
                    "rewards": {n: _round(batch["rewards"][n][i]) for n in self.recorder.names},
                }
            )
        if self.path is not None and self.writes:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        return rows

    def _guard(self, stats: dict[str, Any], step: int, control) -> None:
        guards = self.guards
        hits = {
            "zero_reward_spread": stats["zero_spread"] >= guards.zero_spread_fraction,
            "completions_clipped": stats["clipped"] >= guards.clipped_fraction,
        }
        limits = {
            "zero_reward_spread": guards.zero_spread_steps,
            "completions_clipped": guards.clipped_steps,
        }
        for kind, hit in hits.items():
            self._runs[kind] = self._runs[kind] + 1 if hit else 0
            if self._runs[kind] >= limits[kind]:
                self.fired = _guard_report(kind, step, self._runs[kind], stats, guards.action)
                if self.path is not None and self.writes:
                    (self.path.parent / GUARD_FILE).write_text(json.dumps(self.fired))
                if guards.action == "stop":
                    control.should_training_stop = True
                    control.should_save = True
                return


def _guard_report(kind: str, step: int, steps: int, stats: dict, action: str) -> dict[str, Any]:
    what = {
        "zero_reward_spread": (
            f"the rewards had no spread within {stats['zero_spread']:.0%} of the prompt groups "
            f"for {steps} steps in a row: every completion of a prompt scored the same, so "
            "there was no gradient"
        ),
        "completions_clipped": (
            f"{stats['clipped']:.0%} of the completions were cut at the length cap for {steps} "
            "steps in a row: the rewards judged unfinished answers"
        ),
    }[kind]
    verb = "stopped" if action == "stop" else "flagged"
    return {
        "kind": kind,
        "step": step,
        "action": action,
        "message": f"Reward guard {verb} the run at step {step}: {what}.",
    }


def _round(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def _rounded(stats: dict[str, Any]) -> dict[str, Any]:
    return {
        "reward": _round(stats["reward"]),
        "functions": {k: _round(v) for k, v in stats["functions"].items()},
        "zero_spread": _round(stats["zero_spread"]),
        "clipped": _round(stats["clipped"]),
    }
