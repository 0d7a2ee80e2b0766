"""Cleaning steps on normalized examples: token counting, de-duplication, the length limit and
the deterministic train/eval split.

The split ranks the distinct examples by sha256(seed, example) and holds out the first ones, so
it is the same on every machine and Python version, identical rows always land on the same
side, and adding rows moves few existing ones between train and eval.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from typing import Any

from phases.data.formats import DroppedRow, Example

TokenCounter = Callable[[str], int]

_WORD_OR_MARK = re.compile(r"\w+|[^\w\s]")
APPROXIMATE_COUNTER = "approximate: one token per word or punctuation mark"


def approximate_token_count(text: str) -> int:
    """Count words and punctuation marks: a tokenizer-free estimate (subword tokenizers give
    somewhat more tokens on rare words, fewer on none)."""
    return len(_WORD_OR_MARK.findall(text))


def tokenizer_token_counter(tokenizer: Any) -> TokenCounter:
    """A counter using a Hugging Face tokenizer (no special tokens); its name goes in the report.

    With a chat template, the counter also gets `count_chat(messages)`: the length of the
    conversation as the trainer sees it, role markers and end tokens included, so that
    max_length drops exactly the rows training would otherwise truncate (cutting off a reply's
    end token teaches the model never to stop)."""

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    count.counter_name = f"tokenizer {name}"
    if getattr(tokenizer, "chat_template", None):

        def count_chat(messages: list[dict[str, str]]) -> int:
            rendered = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)
            return len(rendered["input_ids"])

        def count_tool_chat(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int:
            from models.generation import encode_prompt
            from models.tool_chat import render_tool_chat

            text = render_tool_chat(tokenizer, messages, tools, add_generation_prompt=False)
            return len(encode_prompt(tokenizer, text, templated=True))

        count.count_chat = count_chat
        count.count_tool_chat = count_tool_chat
        count.counter_name = f"tokenizer {name} (chat rows with its chat template)"
    return count


def counter_name(count_tokens: TokenCounter | None) -> str:
    """How tokens were counted, for the report."""
    if count_tokens is None or count_tokens is approximate_token_count:
        return APPROXIMATE_COUNTER
    name = getattr(count_tokens, "counter_name", None)
    return name or f"custom: {getattr(count_tokens, '__qualname__', repr(count_tokens))}"


def rendered_texts(record: dict[str, Any], kind: str) -> list[str]:
    """The full text(s) of an example that count against max_length (preference: one per reply;
    the longer one counts)."""
    if kind == "chat":
        return ["\n".join(m["content"] for m in record["messages"])]
    if kind == "tool_chat":  # the tool schemas and calls are in the prompt the model reads
        parts = [json.dumps(record["tools"], ensure_ascii=False)]
        for message in record["messages"]:
            parts.append(message["content"])
            parts += [json.dumps(c, ensure_ascii=False) for c in message.get("tool_calls", [])]
        return ["\n".join(parts)]
    if kind in ("prompt_completion", "kto"):
        return [f"{record['prompt']}\n{record['completion']}"]
    if kind == "prompt":
        return [record["prompt"]]
    if kind == "preference":
        return [
            f"{record['prompt']}\n{record['chosen']}",
            f"{record['prompt']}\n{record['rejected']}",
        ]
    return [record["text"]]


def count_example_tokens(examples: list[Example], kind: str, count: TokenCounter) -> None:
    """Set each example's `tokens` to the token count of its full rendering (for chat rows,
    through the chat template when the counter has one: see `tokenizer_token_counter`)."""
    count_chat = getattr(count, "count_chat", None) if kind == "chat" else None
    count_tool_chat = getattr(count, "count_tool_chat", None) if kind == "tool_chat" else None
    for example in examples:
        if count_chat is not None:
            example.tokens = count_chat(example.record["messages"])
        elif count_tool_chat is not None:
            example.tokens = count_tool_chat(example.record["messages"], example.record["tools"])
        else:
            example.tokens = max(count(text) for text in rendered_texts(example.record, kind))


def deduplicate(examples: list[Example]) -> tuple[list[Example], int]:
    """The examples without exact repeats (first kept), and how many were removed."""
    seen: set[str] = set()
    kept = []
    for example in examples:
        if example.key not in seen:
            seen.add(example.key)
            kept.append(example)
    return kept, len(examples) - len(kept)


def drop_too_long(
    examples: list[Example], max_length: int
) -> tuple[list[Example], list[DroppedRow]]:
    """Examples within `max_length` tokens, and the others as dropped rows (tokens must be set)."""
    kept, dropped = [], []
    for example in examples:
        if example.tokens <= max_length:
            kept.append(example)
        else:
            detail = f"{example.tokens} tokens, longer than max_length {max_length}"
            dropped.append(DroppedRow(example.origin, "too_long", detail))
    return kept, dropped


def remove_overlap(train: list[Example], held_out: list[Example]) -> tuple[list[Example], int]:
    """Train examples equal to none of the held-out ones (letter case and spacing ignored, as
    the debugger's leakage check compares them), and how many were removed."""
    held = {example.near_key for example in held_out}
    kept = [example for example in train if example.near_key not in held]
    return kept, len(train) - len(kept)


def split_train_eval(
    examples: list[Example], eval_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Hold out round(eval_fraction * distinct examples) examples (at least one when
    eval_fraction > 0 and there are two or more, never all); both parts keep input order.
    Rows equal but for letter case and spacing count as one example and land on the same side,
    so a variant in training cannot leak its eval twin."""
    # Each group is ranked by its first row's exact key: data without such variants splits
    # exactly as it did before groups existed.
    groups: dict[str, str] = {}
    for example in examples:
        groups.setdefault(example.near_key, example.key)
    keys = list(groups.values())
    if eval_fraction <= 0 or len(keys) < 2:
        return list(examples), []
    n_eval = min(len(keys) - 1, max(1, round(eval_fraction * len(keys))))

    def rank(key: str) -> str:
        return hashlib.sha256(f"{seed}\x00{key}".encode()).hexdigest()

    held = set(sorted(keys, key=rank)[:n_eval])
    held_groups = {near for near, key in groups.items() if key in held}
    train = [e for e in examples if e.near_key not in held_groups]
    return train, [e for e in examples if e.near_key in held_groups]


def token_stats(lengths: list[int]) -> dict[str, float]:
    """min, mean, p50, p95 and max of token lengths (linear interpolation between ranks)."""
    if not lengths:
        return {}
    ordered = sorted(lengths)
    return {
        "min": ordered[0],
        "mean": round(sum(ordered) / len(ordered), 2),
        "p50": _percentile(ordered, 0.50),
        "p95": _percentile(ordered, 0.95),
        "max": ordered[-1],
    }


def _percentile(ordered: list[int], q: float) -> float:
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return round(value, 2)
