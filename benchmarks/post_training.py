"""Post-training targets on the real quickstart model: size, CPU speed and task metrics of each
target (int8, GGUF q8_0 / q4_k_m / bf16) against the tuned SmolLM2-135M-Instruct it was made
from, through the same stage and gates a run uses.

The tuned model is the quickstart's (configs/quickstart.json: LoRA SFT, merged), trained here
first unless `--tuned DIR` names one. Tokens/s are measured alternating the target and the tuned
model in this one process (the machine is noisy), and only their ratio is reported. A GGUF file
is read back by transformers, which dequantizes it: its tokens/s are those of a float model in
PyTorch, not of llama.cpp's quantized kernels.

    python benchmarks/post_training.py [--tuned DIR] [--rounds 3]

Last lines: `RESULT <measure>_<target>=<value>` for size_ratio, speed_ratio and retention.
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
os.environ.setdefault("TQDM_DISABLE", "1")
REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "configs" / "quickstart.json"
TARGETS = ["int8", "gguf:q8_0", "gguf:q4_k_m", "gguf:bf16"]


def tuned_quickstart(root: Path) -> tuple[Path, Path]:
    """(merged tuned model folder, eval split) of the quickstart, trained with its config."""
    from llmfinetune_agent.config import load_run_config
    from llmfinetune_agent.pipeline import prepare_direct, train_direct
    from phases.post_training.merge import export_final_model

    config = load_run_config(QUICKSTART)
    data = prepare_direct(config, root, cache_dir=root / "models")
    result = train_direct(config, root / "training", data, cache_dir=root / "models")
    final = export_final_model(
        Path(result["model_path"]), root / "final", merge_lora=True, cache_dir=root / "models"
    )
    return final, Path(data["eval_path"])


def speed_ratio(target: Path, tuned: Path, examples: list, rounds: int, tokens: int) -> float:
    """Median of target tokens/s / tuned tokens/s, the two measured in alternation."""
    from phases.post_training.candidate_loading import load_for_generation
    from phases.post_training.quality import tokens_per_second

    a, a_tok = load_for_generation(target)
    b, b_tok = load_for_generation(tuned)
    ratios = []
    for _ in range(rounds):
        ours = tokens_per_second(a, a_tok, examples, tokens)
        theirs = tokens_per_second(b, b_tok, examples, tokens)
        ratios.append(ours / theirs)
    return statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tuned", type=Path, help="A tuned quickstart model folder (skip training)."
    )
    parser.add_argument("--eval", type=Path, default=REPO / "configs/data/quickstart/eval.jsonl")
    parser.add_argument(
        "--train",
        type=Path,
        default=REPO / "configs/data/quickstart/train.jsonl",
        help="Training data: q8_0's GPTQ rounding calibrates on it.",
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from llmfinetune_agent.config import load_run_config
    from phases.evaluation.model_evaluation import load_checked_examples
    from phases.post_training.config import PostTrainingConfig
    from phases.post_training.stage import run_post_training

    root = Path(tempfile.mkdtemp(prefix="bench-post-training-"))
    tuned, eval_path = (args.tuned, args.eval) if args.tuned else tuned_quickstart(root)
    evaluation = load_run_config(QUICKSTART).evaluation
    config = PostTrainingConfig(quantize=TARGETS)
    result = run_post_training(
        config,
        evaluation=evaluation,
        tuned_dir=tuned,
        eval_path=eval_path,
        train_path=args.train,
        output_dir=root / "post_training",
        base_model="builtin:smollm2-135m-instruct",
        cache_dir=root / "models",
        progress=print,
    )
    examples = load_checked_examples(evaluation, eval_path)
    rows = result["candidates"]
    print(
        f"{'target':14}{'size':>10}{'bits/w':>8}{'speed':>7}{'kept':>8}{'KL':>9}{'top-1':>7}"
        f"{'same':>6}  verdict"
    )
    lines = []
    for row in rows[1:]:
        speed = speed_ratio(Path(row["path"]), tuned, examples, args.rounds, config.speed_tokens)
        kept = min(row["retention"].values()) if row.get("retention") else float("nan")
        print(
            f"{row['name']:14}{row['size_ratio']:>10.3f}{row['bits_per_weight']:>8.2f}"
            f"{speed:>7.2f}{kept:>8.1%}{row['kl']:>9.4f}{row['top1']:>7.3f}"
            f"{row['same_answers']:>6.2f}  {row['verdict']}: {row['reason']}"
        )
        name = row["name"].replace("gguf:", "")
        lines += [
            f"RESULT size_ratio_{name}={row['size_ratio']:.3f}",
            f"RESULT speed_ratio_{name}={speed:.3f}",
            f"RESULT retention_{name}={kept:.4f}",
        ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
