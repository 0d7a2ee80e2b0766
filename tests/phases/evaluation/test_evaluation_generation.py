"""Generation and perplexity of the evaluation phase on the tiny Llama."""

import math
from pathlib import Path

import pytest

from phases.evaluation import EvaluationConfig, EvaluationResult, evaluate_model
from phases.evaluation.eval_data import load_eval_examples
from phases.evaluation.generation import (
    generate_answers,
    prompt_ids,
    reference_loss,
    teacher_forcing_ids,
)


def test_batched_generation_matches_one_at_a_time(tiny_for_generation, prompt_completion_eval):
    model, tokenizer = tiny_for_generation
    examples = load_eval_examples(prompt_completion_eval)
    lengths = {len(prompt_ids(tokenizer, e)) for e in examples}
    assert len(lengths) > 2  # prompts of different lengths, so batches really get left padding
    seen: list[tuple[int, int]] = []
    batched = generate_answers(
        model,
        tokenizer,
        examples,
        max_new_tokens=12,
        batch_size=4,
        progress=lambda done, total: seen.append((done, total)),
    )
    single = generate_answers(model, tokenizer, examples, max_new_tokens=12, batch_size=1)
    assert batched == single
    assert any(answer.strip() for answer in batched)
    assert seen == [(4, 6), (6, 6)]


def test_chat_prompt_uses_template_with_generation_prompt(tiny_for_generation, chat_eval):
    _, tokenizer = tiny_for_generation
    example = load_eval_examples(chat_eval)[0]
    text = tokenizer.decode(prompt_ids(tokenizer, example))
    assert text.startswith("<|system|>\nAnswer in JSON.</s>")
    assert text.endswith("<|assistant|>\n")
    assert example.reference == '{"name": "Alice", "age": 30}'
    full, first = teacher_forcing_ids(tokenizer, example)  # perplexity scores the reply turn
    assert tokenizer.decode(full[:first]) == text
    assert tokenizer.decode(full[first:]) == example.reference + "</s>\n"


def _hand_loss(model, ids: list[int], first: int) -> tuple[float, int]:
    """Sum and count of the loss on ids[first:] from the model's own mean loss."""
    import torch

    input_ids = torch.tensor([ids])
    labels = input_ids.clone()
    labels[0, :first] = -100
    with torch.no_grad():
        mean = float(model(input_ids=input_ids, labels=labels).loss)
    return mean * (len(ids) - first), len(ids) - first


def test_perplexity_is_exp_of_mean_reference_token_loss(
    tiny_for_generation, prompt_completion_eval, tiny_model_dir: Path, tmp_path: Path
):
    model, tokenizer = tiny_for_generation
    examples = load_eval_examples(prompt_completion_eval)
    total, count = 0.0, 0
    for example in examples:  # prompt, then completion + eos as TRL SFT tokenizes it
        prompt = tokenizer(example.prompt)["input_ids"]
        full = tokenizer(example.prompt + example.reference + tokenizer.eos_token)["input_ids"]
        assert full[: len(prompt)] == prompt
        loss, n = _hand_loss(model, full, len(prompt))
        total, count = total + loss, count + n
    assert reference_loss(model, tokenizer, examples, batch_size=4) == pytest.approx(
        (total, count), rel=1e-4
    )
    config = EvaluationConfig(metrics=["perplexity"], batch_size=4, max_new_tokens=4)
    result = evaluate_model(
        config, model=tiny_model_dir, eval_path=prompt_completion_eval, output_dir=tmp_path / "out"
    )
    assert math.isfinite(result.metrics["perplexity"])
    assert result.metrics["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-4)
    assert result.n_examples == len(examples)
    assert [p.expected for p in result.predictions] == [e.reference for e in examples]
    saved = EvaluationResult.model_validate_json(
        (tmp_path / "out/evaluation_result.json").read_text()
    )
    assert saved == result
