"""Training speed: one epoch with our defaults vs TRL's defaults, same short chat data and model.

TRL's defaults on this CPU (use_cpu=True, everything else as shipped): activation checkpointing
on, bf16 autocast, per-step entropy and token-accuracy diagnostics, and (since TRL 1.16, without
Triton) the LM head projected over every position, prompt and padding included. Ours:
TrainingConfig() defaults (no activation checkpointing on a small run, bf16 autocast only where
the CPU multiplies bf16 natively, no per-step diagnostics, the head over completion positions
only, plain padding rather than packing for short similar-length data, tokenized once and
cached). The supported TRL range is `trl>=1.16` (pyproject); the TRL version measured is printed.

    python benchmarks/train_speed.py [--rounds 3] [--precision bfloat16]

Last line: `RESULT train_speed_speedup=<TRL-defaults seconds / ours seconds>` (goal >= 1.2).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

from bench_setup import bare_trl_sft, build_model, chat_data, ours  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir, data = build_model(root), chat_data(root)
        times: dict[str, list[float]] = {"ours": [], "trl_defaults": []}
        # Untimed warm-up: the first training in a process pays one-off import and kernel costs.
        ours(model_dir, data, root / "warm-up", epochs=1, precision=args.precision)
        for r in range(args.rounds):
            times["trl_defaults"].append(
                bare_trl_sft(model_dir, data, root / f"trl{r}", num_train_epochs=1)
            )
            times["ours"].append(
                ours(model_dir, data, root / f"ours{r}", epochs=1, precision=args.precision)
            )
            print(
                f"round {r + 1}: TRL defaults {times['trl_defaults'][-1]:.1f} s, ours {times['ours'][-1]:.1f} s"
            )
    trl, mine = (statistics.median(times[k]) for k in ("trl_defaults", "ours"))
    import trl as trl_package

    print(
        f"median one epoch: TRL {trl_package.__version__} defaults {trl:.1f} s, ours {mine:.1f} s"
    )
    print(f"RESULT train_speed_speedup={trl / mine:.2f}")


if __name__ == "__main__":
    main()
