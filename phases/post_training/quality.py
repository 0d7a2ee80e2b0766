"""The quality gate's measurements of a candidate against the model it was made from.

On the run's own eval examples: the task metrics (greedy answers, as the evaluation phase
computes them) and their retention, the share of answers identical to the source's, the mean
KL divergence KL(source ‖ candidate) and top-1 agreement of the next-token distributions over
the reference answers' tokens (teacher-forced, as llama.cpp's perplexity tool compares a
quantized model with its source), CPU tokens/s, and whether a GGUF file's own tokenizer and
chat template encode the prompts exactly as the source's do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from phases.evaluation.config import EvaluationConfig
from phases.evaluation.eval_data import EvalExample
from phases.evaluation.generation import prompt_ids, teacher_forcing_ids
from phases.evaluation.model_evaluation import evaluate_loaded

LOWER_IS_BETTER = ("perplexity",)
SPEED_PROMPTS = 2


@dataclass
class Measured:
    """One model on the eval set: metrics, greedy answers, CPU tokens/s."""

    metrics: dict[str, float]
    answers: list[str | None]
    tokens_per_second: float
    extra: dict[str, Any] = field(default_factory=dict)


def measure(
    model: Any,
    tokenizer: Any,
    examples: list[EvalExample],
    config: EvaluationConfig,
    speed_tokens: int,
) -> Measured:
    """Greedy answers and metrics on `examples`, then CPU tokens/s on the first prompts."""
    greedy = config.model_copy(update={"do_sample": False})
    metrics, predictions = evaluate_loaded(model, tokenizer, examples, greedy)
    return Measured(
        metrics=metrics,
        answers=[p.got for p in predictions],
        tokens_per_second=tokens_per_second(model, tokenizer, examples, speed_tokens),
    )


def tokens_per_second(
    model: Any, tokenizer: Any, examples: list[EvalExample], tokens: int
) -> float:
    """Generated tokens per second, one prompt at a time, every run forced to `tokens` tokens
    (fewer where the prompt and `tokens` would not fit the model's context: past it the
    position embeddings end and generation failed with an IndexError)."""
    import torch

    context = _context_length(model)
    prompts = [prompt_ids(tokenizer, e) for e in examples[:SPEED_PROMPTS]]
    generated, started = 0, time.perf_counter()
    with torch.no_grad():
        for ids in prompts:
            forced = min(tokens, context - len(ids)) if context else tokens
            if forced < 1:
                continue
            output = model.generate(
                input_ids=torch.tensor([ids], device=model.device),
                attention_mask=torch.ones((1, len(ids)), dtype=torch.long, device=model.device),
                max_new_tokens=forced,
                min_new_tokens=forced,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
            generated += output.shape[1] - len(ids)
    return round(generated / max(time.perf_counter() - started, 1e-9), 2)


def _context_length(model: Any) -> int | None:
    """The most positions the model takes, from its config (None when it does not say)."""
    config = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def next_token_agreement(
    source: Any, candidate: Any, tokenizer: Any, examples: list[EvalExample], batch_size: int = 8
) -> dict[str, float]:
    """Mean KL(source ‖ candidate) and top-1 agreement of the next-token distributions at every
    position that predicts a reference token (the source's tokenization for both)."""
    import torch

    kl_sum, agree, count = 0.0, 0, 0
    for start in range(0, len(examples), batch_size):
        pairs = [teacher_forcing_ids(tokenizer, e) for e in examples[start : start + batch_size]]
        width = max(len(ids) for ids, _ in pairs)
        input_ids = torch.full((len(pairs), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(pairs), width), dtype=torch.long)
        scored = torch.zeros((len(pairs), width), dtype=torch.bool)
        for row, (ids, first) in enumerate(pairs):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
            scored[row, first - 1 : len(ids) - 1] = True  # position t predicts token t + 1
        with torch.no_grad():
            p = source(input_ids=input_ids, attention_mask=mask).logits.float().log_softmax(-1)
            q = candidate(input_ids=input_ids, attention_mask=mask).logits.float().log_softmax(-1)
        p, q = p[scored], q[scored]
        kl_sum += float((p.exp() * (p - q)).sum(-1).clamp(min=0).sum())
        agree += int((p.argmax(-1) == q.argmax(-1)).sum())
        count += int(scored.sum())
    if not count:
        return {"kl": 0.0, "top1": 1.0, "positions": 0}
    return {"kl": round(kl_sum / count, 6), "top1": round(agree / count, 4), "positions": count}


def tokenizer_problems(source: Any, candidate: Any, examples: list[EvalExample]) -> list[str]:
    """Ways the candidate's own tokenizer differs from the source's on these prompts: other
    token ids (a wrong vocabulary, merges or chat template), another end-of-sequence token."""
    problems = []
    if source.eos_token_id != candidate.eos_token_id:
        problems.append(
            f"end-of-sequence token differs ({candidate.eos_token!r} instead of {source.eos_token!r})"
        )
    differing = [
        i for i, e in enumerate(examples) if prompt_ids(source, e) != prompt_ids(candidate, e)
    ]
    if differing:
        problems.append(
            f"{len(differing)} of {len(examples)} prompts encode to other token ids "
            f"(first: example {differing[0]}); the vocabulary, merges or chat template differ"
        )
    return problems


def retention(
    candidate: dict[str, float], source: dict[str, float], metrics: list[str]
) -> dict[str, float]:
    """Per metric, the share of the source's value the candidate keeps (1.0 = all of it; for
    perplexity, source / candidate). A source at 0 is kept when the candidate is not worse."""
    kept = {}
    for name in metrics:
        new, old = candidate.get(name), source.get(name)
        if new is None or old is None:
            continue
        if name in LOWER_IS_BETTER:
            new, old = (1 / new if new else float("inf")), (1 / old if old else float("inf"))
        kept[name] = round(new / old, 4) if old else (1.0 if new >= old else 0.0)
    return kept


def same_answers(candidate: list[str | None], source: list[str | None]) -> float | None:
    """Share of greedy answers identical to the source's (None with nothing generated)."""
    pairs = [(a, b) for a, b in zip(candidate, source, strict=True) if b is not None]
    return round(sum(a == b for a, b in pairs) / len(pairs), 4) if pairs else None


def gated_metrics(config: EvaluationConfig) -> list[str]:
    """The metrics retention is held to: those with thresholds, else every configured one."""
    with_thresholds = [m for m in config.metrics if m in config.thresholds]
    return with_thresholds or list(config.metrics)
