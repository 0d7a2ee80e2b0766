"""Ray Train throughput: the same training on 2 CPU workers vs 1, on a local Ray cluster.

A local cluster (a head with no CPUs, one node with 2) trains the small Llama (4 x 256) on the
quickstart's chat data through `phases.training.ray_train.train_on_ray`, alternating one
worker (batch 8) and two workers (batch 4 each: the same examples per optimizer step), each
worker asking for 1 CPU. Throughput is the training's own tokens/s (every worker's tokens,
measured from its first step, so Ray's and the processes' start-up are not counted); wall time
with start-up is printed too. On a 2-core machine two workers share the cores that one worker
already used through its threads: expect about 1x. The figure shows the plumbing works (data
parallelism, gloo, checkpoints reported), not a speed-up.

    python benchmarks/ray_throughput.py [--rounds 2] [--steps 60]

Last line: `RESULT ray_2_vs_1_workers_throughput=<tokens/s with 2 workers / with 1>`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench_setup import build_model, chat_data  # noqa: E402


def train_once(workers: int, model_dir: Path, data: Path, out: Path, steps: int) -> tuple:
    """(tokens/s, wall seconds) of one training with `workers` Ray Train workers."""
    from phases.training import SFTTraining
    from phases.training.ray_train import train_on_ray

    config = SFTTraining(
        max_steps=steps, batch_size=8 // workers, num_processes=workers, save_steps=steps
    )
    started = time.monotonic()
    result = train_on_ray(
        config,
        model=str(model_dir),
        train_path=data,
        eval_path=None,
        output_dir=out,
        name=out.name,
        storage_path=out.parent / "ray-storage",
        max_length=128,
    )
    assert result.status == "completed" and result.global_step == steps
    return result.tokens_per_second, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    cluster.add_node(num_cpus=2)  # the shared machine keeps its other engineers' cores
    ray.init(address=cluster.address, log_to_driver=False)
    results: dict[int, list[tuple]] = {1: [], 2: []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            model_dir, data = build_model(root), chat_data(root)
            train_once(1, model_dir, data, root / "warm-up", 5)  # caches, first imports
            for r in range(args.rounds):
                for workers in (1, 2):
                    out = root / f"w{workers}-r{r}"
                    results[workers].append(train_once(workers, model_dir, data, out, args.steps))
                    tps, wall = results[workers][-1]
                    print(f"round {r + 1}: {workers} worker(s) {tps:.0f} tokens/s, {wall:.1f} s")
    finally:
        ray.shutdown()
        cluster.shutdown()
    one, two = (statistics.median(t for t, _ in results[w]) for w in (1, 2))
    wall_one, wall_two = (statistics.median(s for _, s in results[w]) for w in (1, 2))
    print(
        f"median: 1 worker {one:.0f} tokens/s ({wall_one:.1f} s with start-up), "
        f"2 workers {two:.0f} tokens/s ({wall_two:.1f} s)"
    )
    print(f"RESULT ray_2_vs_1_workers_throughput={two / one:.2f}")


if __name__ == "__main__":
    main()
