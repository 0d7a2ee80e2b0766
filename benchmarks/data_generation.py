"""Does synthetic data pay off? 10 seed rows of the quickstart task, `--num-examples` generated
from them by the quickstart's real model (SmolLM2-135M-Instruct), then two trainings with the
same step budget - on the 10 seeds alone and on the seeds plus the kept synthetic rows - each
evaluated on the quickstart's held-out eval split (30 sentences about people not in the seeds).

Everything else is the quickstart's config (configs/quickstart.json: LoRA SFT, learning rate,
batch size); the step budget is the quickstart's own (160 rows / batch 8 = 20 steps) unless
`--steps` says otherwise. The eval split is also the leakage check of generation, so no
generated example repeats or nears an eval sentence.

    python benchmarks/data_generation.py [--num-examples 200] [--steps 20] [--threads N]

Last line: `RESULT keep_rate=<kept/generated> seeds_only_em=<...> with_synthetic_em=<...>`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

for _quiet in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS", "TQDM_DISABLE"):
    os.environ.setdefault(_quiet, "1")
REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "configs" / "quickstart.json"
SEEDS = 10


def _config(train: Path, steps: int):
    """The quickstart's run config on `train`, trained for exactly `steps` steps."""
    from llmfinetune_agent.config import RunConfig, load_run_config

    raw = load_run_config(QUICKSTART).model_dump(mode="json")
    raw["data"].update(train=str(train), eval=str(REPO / raw["data"]["eval"]))
    raw["training"].update(max_steps=steps, save_steps=steps)
    return RunConfig.model_validate(raw)


def generate(root: Path, seeds: list[dict], num_examples: int, models: Path) -> tuple[list, dict]:
    """Kept synthetic rows and the generation report, from the quickstart's model."""
    from llmfinetune_agent.agents.data_agent import generator_function
    from llmfinetune_agent.chat_model import LocalChatModel
    from llmfinetune_agent.config import load_run_config
    from phases.data import read_jsonl
    from phases.synthesis import DataGenerationConfig, generate_examples, generator_stop

    quickstart = load_run_config(QUICKSTART)
    settings = DataGenerationConfig(enabled=True, num_examples=num_examples)
    chat = LocalChatModel(
        local_model=quickstart.model,
        cache_dir=str(models),
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        batch_size=settings.generation_batch_size(),
    )

    def progress(generated: int, kept: int, requested: int) -> None:
        print(f"generated {generated}, kept {kept} of {requested}", flush=True)

    kept, report = generate_examples(
        settings,
        task=quickstart.task,
        kind="chat",
        seeds=seeds,
        eval_records=read_jsonl(REPO / quickstart.data.eval),
        complete=generator_function(chat, generator_stop("chat")),
        generator_name="SmolLM2-135M-Instruct",
        output_dir=root / "synthesis",
        progress=progress,
    )
    return kept, report.to_dict()


def train_and_score(root: Path, rows: list[dict], steps: int, models: Path) -> float:
    """Exact match on the eval split after `steps` LoRA steps on `rows`."""
    from llmfinetune_agent.pipeline import prepare_direct, train_direct
    from phases.evaluation import evaluate_model

    root.mkdir(parents=True)
    train = root / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = _config(train, steps)
    data = prepare_direct(config, root, cache_dir=models)
    result = train_direct(config, root / "training", data, cache_dir=models)
    evaluation = evaluate_model(
        config.evaluation,
        model=result["model_path"],
        eval_path=Path(data["eval_path"]),
        output_dir=root / "evaluation",
        cache_dir=models,
    )
    return evaluation.metrics["exact_match"]


def main() -> None:
    """Generate, train twice, evaluate twice; print the figures and the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-examples", type=int, default=200, help="synthetic rows asked for")
    parser.add_argument("--steps", type=int, default=20, help="training steps of each side")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the work here")
    parser.add_argument("--models", type=Path, default=None, help="model cache (imported GGUF)")
    args = parser.parse_args()
    import torch

    from phases.data import read_jsonl

    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = read_jsonl(REPO / "configs" / "data" / "quickstart" / "train.jsonl")[:SEEDS]
    with tempfile.TemporaryDirectory(prefix="data-generation-") as tmp:
        root = args.keep or Path(tmp)
        models = args.models or root / "models"
        start = time.perf_counter()
        kept, report = generate(root, seeds, args.num_examples, models)
        print(json.dumps({k: report[k] for k in ("generated", "kept", "dropped")}), flush=True)
        print(f"generation took {time.perf_counter() - start:.0f} s", flush=True)
        seeds_only = train_and_score(root / "seeds_only", seeds, args.steps, models)
        print(f"seeds only: exact match {seeds_only:.3f}", flush=True)
        with_synthetic = train_and_score(root / "with_synthetic", seeds + kept, args.steps, models)
        print(f"seeds + {len(kept)} synthetic: exact match {with_synthetic:.3f}", flush=True)
        print(f"total {time.perf_counter() - start:.0f} s")
        print(
            f"RESULT keep_rate={report['keep_rate']:.3f} seeds_only_em={seeds_only:.3f} "
            f"with_synthetic_em={with_synthetic:.3f}"
        )


if __name__ == "__main__":
    main()
