"""GRPO on the real quickstart model: does a `json_valid` + `exact_match` reward teach
SmolLM2-135M-Instruct the quickstart task (sentence -> JSON with name, age, city)?

One run of configs/grpo-quickstart.json (LoRA, 4 completions per prompt, 32-token completions)
through the same phases a run uses: the data phase, `train()` with the run's rewards, then base
vs tuned on the held-out eval split. The reward curve comes from the Trainer's log (TRL's
`reward`: the weighted sum, per step).

    python benchmarks/rl.py [--steps 40] [--eval 30]

Last lines: `RESULT reward_first_fifth=<...> reward_last_fifth=<...> base_em=<...> tuned_em=<...>
steps=<...> seconds=<...>`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs" / "grpo-quickstart.json"


def fifths(values: list[float]) -> tuple[float, float]:
    """Mean of the first and of the last fifth of `values`."""
    n = max(1, len(values) // 5)
    return sum(values[:n]) / n, sum(values[-n:]) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="GRPO optimizer steps.")
    parser.add_argument("--eval", type=int, default=30, help="Held-out rows to evaluate.")
    args = parser.parse_args()

    from llmfinetune_agent.config import apply_patch, load_run_config
    from llmfinetune_agent.pipeline import prepare_direct, train_direct
    from llmfinetune_agent.settings import Settings
    from phases.evaluation import compare_models

    models = Settings.from_env().models_cache_dir  # SmolLM2 is imported from its GGUF once

    config = load_run_config(CONFIG)
    config = apply_patch(
        config,
        {
            "training": {"max_steps": args.steps, "save_steps": args.steps},
            "evaluation": {"max_examples": args.eval, "thresholds": {}},
        },
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = prepare_direct(config, root, cache_dir=models)
        started = time.perf_counter()
        result = train_direct(config, root / "training", data, cache_dir=models)
        seconds = time.perf_counter() - started
        history = json.loads(Path(result["log_history_path"]).read_text())
        rewards = [entry["reward"] for entry in history if "reward" in entry]
        first, last = fifths(rewards)
        report = compare_models(
            config.evaluation,
            base=config.model,
            tuned=result["model_path"],
            eval_path=Path(data["eval_path"]),
            output_dir=root / "evaluation",
            cache_dir=models,
        )
        summary = report.summary()
    print("reward per step:", " ".join(f"{r:.3f}" for r in rewards))
    flat = [e["frac_reward_zero_std"] for e in history if "frac_reward_zero_std" in e]
    print("frac_reward_zero_std per step:", " ".join(f"{f:.2f}" for f in flat))
    if result.get("reward_guard"):
        print("guard:", result["reward_guard"]["message"])
    print(
        f"RESULT reward_first_fifth={first:.3f} reward_last_fifth={last:.3f} "
        f"base_em={summary['base'].get('exact_match', float('nan')):.3f} "
        f"tuned_em={summary['tuned'].get('exact_match', float('nan')):.3f} "
        f"steps={result['global_step']} seconds={seconds:.0f}"
    )


if __name__ == "__main__":
    main()
