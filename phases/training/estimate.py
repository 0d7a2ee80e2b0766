"""A rough, documented estimate of a training run for the plan-approval screen.

Steps are exact given the example count (the Trainer's own arithmetic). Time and memory are
order-of-magnitude guides, from the usual rules of thumb:
- compute: about 6 x parameters FLOPs per trained token (forward + backward); DPO adds a
  reference forward (2 x parameters) and, like reward modelling, processes two sequences
  (chosen and rejected) per example;
- RL (GRPO, RLOO): each step samples `num_generations` completions of up to
  `max_completion_length` tokens for batch_size / num_generations prompts; sampling costs
  about 2 x parameters FLOPs per generated token, the update 6 x per prompt + completion token;
- memory: full fine-tuning with AdamW keeps 16 bytes per parameter (weights, gradients, two
  optimizer moments in float32), a frozen copy (LoRA base, DPO reference) 4 bytes, the LoRA
  adapter itself is ignored; activations are not counted.
"""

import math

from phases.training import hardware
from phases.training.config import PromptTraining, TrainingSettings

# Sustained training throughput assumed when none is measured (FLOP/s): a few CPU cores, one GPU.
# CPU: the quickstart (SmolLM2-135M, LoRA, 10.8k tokens) trained in about 150 s on 2 cores, i.e.
# ~5e10 counted as 6 x parameters per token (2026-12-01); 2e10 had its plan say 7 min.
ASSUMED_FLOPS = {"cpu": 5e10, "cuda": 5e13}


def estimate_training(
    config: TrainingSettings,
    *,
    num_examples: int,
    mean_tokens: float,
    num_parameters: int | None = None,
    tokens_per_second: float | None = None,
    device: str = "cpu",
) -> dict:
    """Estimated steps, tokens, time (seconds) and memory (GB) of a run.

    `tokens_per_second`, when measured (e.g. from a previous run's result), replaces the
    FLOP-based time estimate. Time and memory are None without `num_parameters` (and no
    measured throughput, for time).
    """
    if config.method == "prompt":  # a search, counted in metric calls
        return estimate_prompt_search(
            config,
            num_examples=num_examples,
            mean_tokens=mean_tokens,
            num_parameters=num_parameters,
            flops=ASSUMED_FLOPS.get(device, ASSUMED_FLOPS["cpu"]),
        )
    # Each of the data-parallel processes takes its share of the examples per step.
    per_step = config.batch_size * config.num_processes
    steps_per_epoch = max(
        1, math.ceil(math.ceil(num_examples / per_step) / config.gradient_accumulation_steps)
    )
    generations = getattr(config, "num_generations", None)
    if generations:  # a step's sequences are groups of completions of fewer prompts
        prompts_per_step = per_step * config.gradient_accumulation_steps // generations
        steps_per_epoch = max(1, math.ceil(num_examples / prompts_per_step))
        mean_tokens += config.max_completion_length
    total_steps = config.max_steps or math.ceil(config.epochs * steps_per_epoch)
    sequences = 2 if "preference" in config.data_kinds else 1  # chosen and rejected
    examples_per_step = per_step * config.gradient_accumulation_steps
    tokens = total_steps * examples_per_step * mean_tokens * sequences
    if generations:  # sampling, token by token: count it as a third of a trained token
        tokens += total_steps * examples_per_step * config.max_completion_length / 3
    return {
        "total_steps": total_steps,
        "steps_per_epoch": steps_per_epoch,
        "tokens": int(tokens),
        "seconds": _seconds(config, tokens, num_parameters, tokens_per_second, device),
        "memory_gb": _memory_gb(config, num_parameters),
        "precision": _precision(config, device),
        "assumptions": __doc__.split("\n\n", 1)[1].strip(),
        "warnings": _warnings(config, device),
    }


def _precision(config: TrainingSettings, device: str) -> str:
    """What the run computes in, as the plan shows it (auto's choice on a GPU is made there)."""
    if device == "cpu":
        return hardware.cpu_precision(config.precision)
    return config.precision if config.precision != "auto" else "bfloat16 if the GPU supports it"


def _warnings(config: TrainingSettings, device: str) -> list[str]:
    """What in the settings will make this run far slower than it needs to be here."""
    if config.precision == "bfloat16" and device == "cpu" and not hardware.native_bf16():
        return [
            "training.precision is bfloat16 but this CPU has no bfloat16 instructions (AMX or "
            "AVX512-BF16): its matrix products run emulated, about 70x slower than float32 "
            '(measured 1.5 vs 110 GFLOP/s); use "auto" or "float32" here'
        ]
    return []


def _seconds(config, tokens, num_parameters, tokens_per_second, device) -> float | None:
    if tokens_per_second:
        return tokens / tokens_per_second
    if not num_parameters:
        return None
    flops_per_token = 6 * num_parameters + (2 * num_parameters if config.method == "dpo" else 0)
    return tokens * flops_per_token / ASSUMED_FLOPS.get(device, ASSUMED_FLOPS["cpu"])


def _memory_gb(config, num_parameters) -> float | None:
    if not num_parameters:
        return None
    bytes_per_param = 4 if config.lora is not None else 16
    if config.method == "dpo" and config.lora is None:
        bytes_per_param += 4  # the frozen reference copy
    return round(num_parameters * bytes_per_param / 1e9, 3)


def estimate_prompt_search(
    config: PromptTraining,
    *,
    num_examples: int,
    mean_tokens: float,
    num_parameters: int | None,
    flops: float,
) -> dict:
    """The plan of a prompt search: its budget in metric calls (as `total_steps`, the unit a
    plan counts in), held-out rows, and a rough time (each call reads the prompt with its
    exemplars and writes about as many tokens as an input has, at 2 x parameters FLOPs per
    token at `flops` per second); no weights are trained, so no optimizer memory."""
    calls = config.planned_metric_calls(num_examples)
    tokens = int(calls * mean_tokens * (2 + config.exemplars))
    seconds = tokens * 2 * num_parameters / flops if num_parameters else None
    held_out = config.held_out_count(num_examples)
    gepa = f"GEPA {config.max_metric_calls}" if config.optimizer == "gepa" else "base prompt"
    trials = config.exemplar_trials if config.exemplars else 0
    return {
        "total_steps": calls,
        "metric_calls": calls,
        "held_out_rows": held_out,
        "tokens": tokens,
        "seconds": seconds,
        "memory_gb": round(num_parameters * 4 / 1e9, 3) if num_parameters else None,
        "prompt_search": (
            f"{calls} metric calls: {gepa} + {trials} exemplar trial(s) x {held_out} held-out "
            f"row(s); {config.exemplars} exemplar(s); weights frozen"
        ),
        "assumptions": " ".join(estimate_prompt_search.__doc__.split()),
    }
