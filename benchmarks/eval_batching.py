"""Evaluation batching: our batched generation vs one-example-at-a-time `generate`.

Both paths generate greedy answers for the same 64 quickstart prompts with the same model, in
alternating rounds within this one process (the machine is noisy; the ratio is what counts).

    python benchmarks/eval_batching.py [--rounds 3] [--batch-size 16]

Last line: `RESULT eval_batching_speedup=<one-at-a-time seconds / batched seconds>` (goal >= 4).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_setup import one_at_a_time, quickstart_examples  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()

    import torch

    from models import build_tiny_llama, load_model_and_tokenizer
    from phases.evaluation.generation import generate_answers, prompt_ids

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory() as tmp:
        # A small real-sized model (4 layers, 256 wide) so generation cost is not all overhead.
        model_dir = build_tiny_llama(Path(tmp) / "model", hidden_size=256, num_layers=4)
        model, tokenizer = load_model_and_tokenizer(str(model_dir), for_generation=True)
    examples = quickstart_examples(args.examples)
    prompts = [prompt_ids(tokenizer, example) for example in examples]

    def batched() -> None:
        generate_answers(
            model,
            tokenizer,
            examples,
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
        )

    def baseline() -> None:  # a plain loop over model.generate
        one_at_a_time(model, tokenizer, prompts, max_new_tokens=args.max_new_tokens)

    timings: dict[str, list[float]] = {"batched": [], "one_at_a_time": []}
    batched()  # warm-up
    for _ in range(args.rounds):
        for name, fn in (("one_at_a_time", baseline), ("batched", batched)):
            start = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - start)
            print(f"{name:14} {timings[name][-1]:7.2f} s")
    single, batch = (statistics.median(timings[k]) for k in ("one_at_a_time", "batched"))
    print(f"median: one at a time {single:.2f} s, batched (batch {args.batch_size}) {batch:.2f} s")
    print(f"RESULT eval_batching_speedup={single / batch:.2f}")


if __name__ == "__main__":
    main()
