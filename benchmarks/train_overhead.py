"""Training overhead: our training phase vs a bare TRL script, same model, data and settings.

Each round trains one epoch both ways (alternating, in this one process, fresh output folders);
the figure is the ratio of tokens per second, ours over bare TRL.

    python benchmarks/train_overhead.py [--rounds 3]

Last line: `RESULT train_overhead_ratio=<ours tokens/s / bare TRL tokens/s>` (goal >= 0.98).
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

from bench_setup import bare_trl_sft, build_model, chat_data, count_tokens, ours  # noqa: E402

# The hyper-parameters both paths use; anything else is each path's own default behaviour
# with the differences that are not hyper-parameters held equal (no activation checkpointing,
# float32 on CPU, no intermediate checkpoints, loss on the assistant reply).
EPOCHS, BATCH, LR, MAX_LENGTH = 3, 8, 2e-4, 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir, data = build_model(root), chat_data(root)
        tokens = count_tokens(model_dir, data) * EPOCHS
        times: dict[str, list[float]] = {"ours": [], "bare_trl": []}
        # Untimed warm-up: the first training in a process pays one-off import and kernel costs.
        bare_trl_sft(
            model_dir,
            data,
            root / "warm-up",
            num_train_epochs=EPOCHS,
            bf16=False,
            save_strategy="no",
        )
        for r in range(args.rounds):
            times["bare_trl"].append(
                bare_trl_sft(
                    model_dir,
                    data,
                    root / f"bare{r}",
                    num_train_epochs=EPOCHS,
                    per_device_train_batch_size=BATCH,
                    learning_rate=LR,
                    max_length=MAX_LENGTH,
                    gradient_checkpointing=False,
                    bf16=False,
                    assistant_only_loss=True,
                    save_strategy="no",
                    logging_steps=5,
                )
            )
            times["ours"].append(
                ours(
                    model_dir,
                    data,
                    root / f"ours{r}",
                    epochs=EPOCHS,
                    batch_size=BATCH,
                    learning_rate=LR,
                    save_steps=10_000,
                )
            )
            print(
                f"round {r + 1}: bare TRL {times['bare_trl'][-1]:.1f} s, ours {times['ours'][-1]:.1f} s"
            )
    bare, mine = (statistics.median(times[k]) for k in ("bare_trl", "ours"))
    print(
        f"tokens per epoch {tokens}; bare TRL {tokens / bare:.0f} tok/s, ours {tokens / mine:.0f} tok/s"
    )
    print(f"RESULT train_overhead_ratio={bare / mine:.3f}")


if __name__ == "__main__":
    main()
