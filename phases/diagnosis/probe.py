"""A generation probe for the never_stops check: a few greedy generations with the tuned
model, counting new tokens and whether the end token came, plus a look at the chat template.

Heavy libraries load inside the functions; the probe costs a few generations, not an eval."""

from pathlib import Path
from typing import Any

from models.config import ModelConfig

PROBE_EXAMPLES = 6
_MARK = "\u2063PROBE_REPLY\u2063"


def closes_turn(tokenizer) -> bool | None:
    """Whether the chat template writes the end token after an assistant reply (None: no
    chat template, or one that cannot render a user/assistant exchange)."""
    if not getattr(tokenizer, "chat_template", None) or not tokenizer.eos_token:
        return None
    messages = [{"role": "user", "content": "ping"}, {"role": "assistant", "content": _MARK}]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception:  # a template with its own rules (e.g. system turn required)
        return None
    if _MARK not in text:
        return None
    return tokenizer.eos_token in text.split(_MARK, 1)[1]


def probe_generation(
    model: ModelConfig | str,
    eval_path: Path,
    *,
    max_new_tokens: int,
    base_model: ModelConfig | str | None = None,
    limit: int = PROBE_EXAMPLES,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Generate greedily for up to `limit` eval prompts; report per sample `new_tokens`,
    `hit_limit` (ran to max_new_tokens without an end token) and `text`, and the `template`
    check for the tokenizer in use and (with `base_model`) the base model's own template."""
    from models import load_model_and_tokenizer, load_tokenizer
    from models.generation import generate_completions
    from phases.evaluation.eval_data import load_eval_examples
    from phases.evaluation.generation import prompt_ids

    lm, tokenizer = load_model_and_tokenizer(model, cache_dir=cache_dir, for_generation=True)
    examples = [e for e in load_eval_examples(Path(eval_path), limit) if e.kind != "text"]
    completions = generate_completions(
        lm,
        tokenizer,
        [prompt_ids(tokenizer, example) for example in examples],
        max_new_tokens=max_new_tokens,
    )
    samples = [
        {
            "new_tokens": len(c.ids),
            "hit_limit": not c.ended and len(c.ids) >= max_new_tokens,
            "text": c.text,
        }
        for c in completions
    ]
    own = None
    if base_model is not None:
        plain = (
            base_model
            if isinstance(base_model, ModelConfig)
            else ModelConfig(name_or_path=str(base_model))
        )
        own = closes_turn(
            load_tokenizer(plain.model_copy(update={"chat_template": None}), cache_dir=cache_dir)
        )
    return {
        "max_new_tokens": max_new_tokens,
        "samples": samples,
        "template": {
            "eos_token": tokenizer.eos_token,
            "in_use_closes_turn": closes_turn(tokenizer),
            "own_closes_turn": own,
        },
    }
