"""The post-training speed measurement on a model with a short context: learned position
embeddings end at `n_positions`, and forcing `speed_tokens` past them failed the whole run with
an IndexError after training."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

from phases.evaluation.eval_data import EvalExample
from phases.post_training.quality import tokens_per_second


def test_speed_is_measured_within_the_models_context(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=24, n_embd=16, n_layer=1, n_head=2)
    model = GPT2LMHeadModel(config).eval()
    examples = [
        EvalExample(kind="prompt_completion", prompt="Ana lives in Oslo.", reference="Oslo"),
        EvalExample(kind="prompt_completion", prompt="word " * 40, reference="x"),  # too long
    ]
    assert tokens_per_second(model, tokenizer, examples, tokens=100) > 0
