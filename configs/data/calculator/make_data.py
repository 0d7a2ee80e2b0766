"""Writes a tool-calling set: arithmetic questions answered through the `calculator` tool.

Each row is in TRL's tool-calling format (the data phase reads it as `tool_chat`): the user
asks, the assistant calls `calculator` with the expression, the tool answers, the assistant
says the result. Sums and differences of numbers from 1 to 98 whose result is 1 to 99.
`train.jsonl` and `eval.jsonl` use disjoint questions, so the eval split measures whether the
model copies the question's numbers into the call and the tool's result into its answer. The
tool schema is the chat's own `calculator`, so a model tuned on it calls that tool in
`finetune-agent chat MODEL --tools calculator`. Deterministic; `python
configs/data/calculator/make_data.py` rewrites both files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

# What `convert_to_openai_tool` gives for the chat's calculator (llmfinetune_agent/tools).
CALCULATOR_SCHEMA: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": (
            "Evaluate an arithmetic expression: numbers, + - * / // % ** and parentheses, "
            "sqrt, abs, round, min, max, floor, ceil, log, exp, sin, cos, tan, pi, e."
        ),
        "parameters": {
            "properties": {"expression": {"type": "string"}},
            "required": ["expression"],
            "type": "object",
        },
    },
}
OPERATIONS = (("plus", "+"), ("minus", "-"))
QUESTIONS = ("What is {a} {word} {b}?", "Compute {a} {word} {b}.")
Question = tuple[int, int, str]


def arithmetic_row(
    a: int,
    b: int,
    word: str,
    symbol: str,
    question: str,
    *,
    tools: list[dict[str, Any]] | None = None,
    system: str | None = None,
) -> dict[str, Any]:
    """One conversation: [system], question, calculator call, tool result, answer."""
    result = str(a + b if symbol == "+" else a - b)
    arguments = {"expression": f"{a} {symbol} {b}"}
    call = {"type": "function", "function": {"name": "calculator", "arguments": arguments}}
    messages = [
        {"role": "user", "content": question.format(a=a, word=word, b=b)},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "name": "calculator", "content": result},
        {"role": "assistant", "content": f"The answer is {result}."},
    ]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    return {"messages": messages, "tools": tools or [CALCULATOR_SCHEMA]}


def arithmetic_rows(
    count: int, *, seed: int, exclude: frozenset[Question] = frozenset(), **row_options: Any
) -> tuple[list[dict[str, Any]], set[Question]]:
    """`count` rows whose questions (a, b, symbol) are not in `exclude`: sums and differences
    of 1..98 with a result from 1 to 99. Returns the rows and their questions."""
    rng = random.Random(seed)
    rows, used = [], set()
    while len(rows) < count:
        a, b = rng.randint(1, 98), rng.randint(1, 98)
        word, symbol = rng.choice(OPERATIONS)
        result = a + b if symbol == "+" else a - b
        if not 1 <= result <= 99 or (a, b, symbol) in exclude or (a, b, symbol) in used:
            continue
        used.add((a, b, symbol))
        question = rng.choice(QUESTIONS)
        rows.append(arithmetic_row(a, b, word, symbol, question, **row_options))
    return rows, used


def write_split(rows: list[dict[str, Any]], path: Path) -> None:
    """One JSON object per line."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    here = Path(__file__).resolve().parent
    train, used = arithmetic_rows(600, seed=7)
    held_out, _ = arithmetic_rows(30, seed=8, exclude=frozenset(used))
    write_split(train, here / "train.jsonl")
    write_split(held_out, here / "eval.jsonl")


if __name__ == "__main__":
    main()
