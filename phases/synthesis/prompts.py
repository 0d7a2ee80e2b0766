"""Generation prompts and the text format of an example: `Input: ...` / `Output: ...` lines.

Every dataset kind is shown to the generator as labelled fields (chat and prompt/completion as
Input/Output, preference as Input/Chosen/Rejected, text as Text) and parsed back from the same
labels, so one prompt shape serves every kind.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

LABELS = {
    "chat": ("Input", "Output"),
    "prompt_completion": ("Input", "Output"),
    "preference": ("Input", "Chosen", "Rejected"),
    "text": ("Text",),
}

SYSTEM_PROMPT = (
    "You write new training examples for a dataset. Each example uses exactly the labels "
    "shown, one after another, and nothing else."
)
TASK_LINE = "Task: {task}"
PASSAGE_LINE = "Base the new example on this passage:\n{passage}"
REQUEST = "Write one new example, different from these, in the same format."


def example_fields(record: dict[str, Any], kind: str) -> list[str]:
    """The record's field values in `LABELS[kind]` order (chat: last user turn, last reply)."""
    if kind == "chat":
        messages = record["messages"]
        users = [m["content"] for m in messages if m["role"] == "user"]
        return [users[-1] if users else "", messages[-1]["content"]]
    if kind == "prompt_completion":
        return [record["prompt"], record["completion"]]
    if kind == "preference":
        return [record["prompt"], record["chosen"], record["rejected"]]
    return [record["text"]]


def render_example(record: dict[str, Any], kind: str) -> str:
    """The example as labelled lines, the way the generator sees and writes it."""
    values = example_fields(record, kind)
    return "\n".join(f"{label}: {value}" for label, value in zip(LABELS[kind], values, strict=True))


def generation_messages(
    task: str, exemplars: list[dict[str, Any]], kind: str, passage: str | None = None
) -> list[dict[str, str]]:
    """Chat messages asking for one new example like `exemplars` (grounded on `passage`)."""
    parts = [TASK_LINE.format(task=task.strip())] if task.strip() else []
    parts.append("Examples:\n\n" + "\n\n".join(render_example(r, kind) for r in exemplars))
    if passage:
        parts.append(PASSAGE_LINE.format(passage=passage.strip()))
    parts.append(REQUEST)
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


def parse_example(
    text: str, kind: str, system_prompt: str | None = None
) -> tuple[dict[str, Any] | None, str]:
    """Parse a generator reply into a normalized record of `kind`, or (None, why not).

    Text before the first label is ignored; a repeated first label (the model starting a second
    example) ends the example.
    """
    labels = LABELS[kind]
    pattern = r"^\s*(" + "|".join(labels) + r")\s*:[ \t]*"
    marks = list(re.finditer(pattern, text, flags=re.MULTILINE | re.IGNORECASE))
    values: dict[str, str] = {}
    for i, mark in enumerate(marks):
        label = next(lab for lab in labels if lab.lower() == mark.group(1).lower())
        if label in values:
            break
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        values[label] = text[mark.end() : end].strip()
    missing = [label for label in labels if not values.get(label)]
    if missing:
        return None, f"no '{missing[0]}:' field"
    return build_record([values[label] for label in labels], kind, system_prompt), ""


def build_record(values: list[str], kind: str, system_prompt: str | None = None) -> dict[str, Any]:
    """A normalized record of `kind` from field values in `LABELS[kind]` order."""
    if kind == "chat":
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        messages += [
            {"role": "user", "content": values[0]},
            {"role": "assistant", "content": values[1]},
        ]
        return {"messages": messages}
    if kind == "prompt_completion":
        return {"prompt": values[0], "completion": values[1]}
    if kind == "preference":
        return {"prompt": values[0], "chosen": values[1], "rejected": values[2]}
    return {"text": values[0]}


def common_system_prompt(records: list[dict[str, Any]]) -> str | None:
    """The system prompt most chat seeds share (None when they have none)."""
    prompts = Counter(
        m["content"] for r in records for m in r.get("messages", [])[:1] if m["role"] == "system"
    )
    if not prompts:
        return None
    prompt, count = prompts.most_common(1)[0]
    return prompt if count * 2 >= len(records) else None
