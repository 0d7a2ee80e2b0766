"""Writes a tool-calling set: arithmetic questions answered through the `calculator` tool.

Each row is in TRL's tool-calling format (the data phase reads it as `tool_chat`): the user
asks, the assistant calls `calculator` with the expression, the tool answers, the assistant
says the result. `train.jsonl` and `eval.jsonl` use disjoint pairs of numbers, so the eval
split measures whether the model copies the question's numbers into the call and the tool's
result into its answer. Deterministic; `python configs/data/calculator/make_data.py` rewrites
both files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

CALCULATOR_SCHEMA: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression.",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "e.g. 12 * 7"}},
            "required": ["expression"],
        },
    },
}
OPERATIONS = (("plus", "+"), ("minus", "-"), ("times", "*"))
QUESTIONS = ("What is {a} {word} {b}?", "Compute {a} {word} {b}.", "How much is {a} {word} {b}?")


def arithmetic_row(a: int, b: int, word: str, symbol: str, question: str) -> dict[str, Any]:
    """One conversation: question, calculator call, tool result, answer."""
    expression = f"{a} {symbol} {b}"
    result = str(eval_expression(a, b, symbol))
    call = {
        "type": "function",
        "function": {"name": "calculator", "arguments": {"expression": expression}},
    }
    return {
        "messages": [
            {"role": "user", "content": question.format(a=a, word=word, b=b)},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "name": "calculator", "content": result},
            {"role": "assistant", "content": f"The answer is {result}."},
        ],
        "tools": [CALCULATOR_SCHEMA],
    }


def eval_expression(a: int, b: int, symbol: str) -> int:
    """The value of `a symbol b` for the three operations used here."""
    return {"+": a + b, "-": a - b, "*": a * b}[symbol]


def arithmetic_rows(count: int, *, seed: int, exclude: set[tuple[int, int]] = frozenset()):
    """`count` rows with numbers 1..99 whose (a, b) pair is not in `exclude`; returns the rows
    and the pairs used."""
    rng = random.Random(seed)
    rows, pairs = [], set()
    while len(rows) < count:
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        if (a, b) in exclude or (a, b) in pairs:
            continue
        pairs.add((a, b))
        word, symbol = rng.choice(OPERATIONS)
        rows.append(arithmetic_row(a, b, word, symbol, rng.choice(QUESTIONS)))
    return rows, pairs


def write_split(rows: list[dict[str, Any]], path: Path) -> None:
    """One JSON object per line."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    here = Path(__file__).resolve().parent
    train, used = arithmetic_rows(400, seed=7)
    held_out, _ = arithmetic_rows(30, seed=8, exclude=used)
    write_split(train, here / "train.jsonl")
    write_split(held_out, here / "eval.jsonl")


if __name__ == "__main__":
    main()
