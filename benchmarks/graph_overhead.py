"""Graph overhead: the tiny-model quickstart (configs/quickstart-tiny.json) through the LangGraph
orchestrator (every gate auto-approved) vs the same phases called directly, alternating in this
one process.

Both paths do the same work: prepare the data, train to the 50% checkpoint, train the rest,
evaluate base and tuned, export the final model. The graph adds routing, gates, checkpoints of
state in SQLite (durability="sync"), the run store and its event log.

    python benchmarks/graph_overhead.py [--rounds 2]

Last line: `RESULT graph_overhead=<graph seconds / direct seconds>` (goal <= 1.05).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "configs" / "quickstart-tiny.json"


def through_graph(home: Path) -> float:
    """Seconds for `finetune-agent run configs/quickstart-tiny.json --auto-approve`, in process."""
    from llmfinetune_agent.config import load_run_config
    from llmfinetune_agent.execution import open_service

    os.environ["FINETUNE_AGENT_HOME"] = str(home)
    start = time.perf_counter()
    with open_service() as service:
        record = service.start(service.create_run(load_run_config(QUICKSTART)).id)
        while record.status == "awaiting_approval":
            record = service.resume(record.id, decision={"decision": "approve"})
    assert record.status == "completed", record.error
    return time.perf_counter() - start


def direct(home: Path) -> float:
    """Seconds for the same phase calls made one after the other, with no orchestration."""
    from llmfinetune_agent.config import load_run_config
    from llmfinetune_agent.pipeline import evaluate_direct, prepare_direct, train_direct
    from llmfinetune_agent.settings import Settings
    from phases.post_training.merge import export_final_model

    os.environ["FINETUNE_AGENT_HOME"] = str(home)
    start = time.perf_counter()
    config, out = load_run_config(QUICKSTART), home / "direct"
    cache = Settings.from_env().models_cache_dir
    data = prepare_direct(config, out, cache_dir=cache)
    fraction = config.hitl.training_checkpoints[0]
    train_direct(config, out / "training", data, stop_at_fraction=fraction, cache_dir=cache)
    result = train_direct(config, out / "training", data, cache_dir=cache)
    evaluate_direct(config, out, data, tuned=result["model_path"], cache_dir=cache)
    export_final_model(Path(result["model_path"]), out / "final", merge_lora=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"graph": [], "direct": []}
    with tempfile.TemporaryDirectory() as tmp:
        direct(Path(tmp) / "warm-up")  # imports and first-use costs paid once, outside timing
        for r in range(args.rounds):
            times["direct"].append(direct(Path(tmp) / f"direct{r}"))
            times["graph"].append(through_graph(Path(tmp) / f"graph{r}"))
            print(
                f"round {r + 1}: direct {times['direct'][-1]:.1f} s, graph {times['graph'][-1]:.1f} s"
            )
    graph, plain = (statistics.median(times[k]) for k in ("graph", "direct"))
    print(f"median: direct {plain:.1f} s, graph {graph:.1f} s")
    print(f"RESULT graph_overhead={graph / plain:.3f}")


if __name__ == "__main__":
    main()
