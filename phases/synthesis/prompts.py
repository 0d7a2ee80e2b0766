"""Generation prompts and the text format of an example: `Input: ...` / `Output: ...` lines.

Every dataset kind is shown to the generator as labelled fields (chat and prompt/completion as
Input/Output, preference as Input/Chosen/Rejected, text as Text) and parsed back from the same
labels, so one prompt shape serves every kind. Replies are parsed back leniently (`parse_examples`):
a small generator wraps its example in prose, a code fence or commentary, or writes several.
"""

from __future__ import annotations

import json
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
# Each demonstrated example after the first is asked for with ANOTHER, and so is the new one:
# the request the model sees last is one it has seen answered in the exact shape. It asks for
# someone or something different; naming "a new person, place or thing" made SmolLM2 copy those
# words into its inputs ("This is a new person, ...", measured).
ANOTHER = "Another one, about someone or something different, in the same format."
REQUEST = ANOTHER


def generator_stop(kind: str) -> list[str]:
    """Stop sequences for the generator: where a reply has gone past its example into the
    conversation's next request (a small model playing both sides writes "Another one, ..."
    or a new "Task:") or into page after page of blank lines. The chat template's end of turn
    stops it first when the model ends its turn as the demonstrations do."""
    del kind  # every kind is asked for the same way
    return ["\n\n\n", "\nTask:", f"\n{ANOTHER.split(',')[0]},"]


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


def shown_labels(kind: str, output_first: bool = False) -> tuple[str, ...]:
    """The labels in the order the generator sees and writes them: `LABELS[kind]`, or with
    `output_first` the output before the input (chat and prompt/completion only)."""
    labels = LABELS[kind]
    return labels[::-1] if output_first and len(labels) == 2 else labels


def render_example(record: dict[str, Any], kind: str, output_first: bool = False) -> str:
    """The example as labelled lines, the way the generator sees and writes it."""
    return _render_values(example_fields(record, kind), kind, output_first)


def generation_messages(
    task: str,
    exemplars: list[dict[str, Any]],
    kind: str,
    passage: str | None = None,
    output_first: bool = False,
) -> list[dict[str, str]]:
    """Chat messages asking for one new example like `exemplars` (grounded on `passage`).

    The exemplars are shown as earlier turns of the conversation, each asked for and answered
    in the exact labelled shape: a small chat model then replies in that shape far more often
    than when the examples sit in one prompt (measured with SmolLM2-135M-Instruct)."""
    labels = " then ".join(f"'{label}:'" for label in shown_labels(kind, output_first))
    intro = [TASK_LINE.format(task=task.strip())] if task.strip() else []
    ask = f"Write one example, using exactly the labels {labels}, and nothing else."
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for index, record in enumerate(exemplars):
        request = "\n\n".join([*intro, ask]) if index == 0 else ANOTHER
        messages.append({"role": "user", "content": request})
        messages.append(
            {"role": "assistant", "content": render_example(record, kind, output_first)}
        )
    final = [REQUEST]
    if passage:
        final.insert(0, PASSAGE_LINE.format(passage=passage.strip()))
    if not exemplars:
        final = [*intro, ask, *final]
    messages.append({"role": "user", "content": "\n\n".join(final)})
    return messages


def parse_examples(
    reply: str, kind: str, *, multi_paragraph: bool = False
) -> tuple[list[list[str]], bool]:
    """Every complete example in a generator reply, as field values in `LABELS[kind]` order.

    Small generators chat: prose before the example, a code fence around it, commentary after
    it, several examples in one reply. Text before the first label is ignored; fenced blocks
    holding labels are read instead of the text around them; each first label starts a new
    example; a JSON value ends where the JSON ends, and, unless `multi_paragraph` (the seeds'
    values span blank lines), any value ends at a blank line - the blank line that separates
    examples in the prompt. Incomplete examples are left out. The flag says whether the reply
    held more than its examples in the plain format (False when it held none). Values come
    back in `LABELS` order whichever order the reply wrote the labels in.
    """
    fields = _labelled_examples(reply, kind, multi_paragraph)
    examples = [values for values in (_complete(f, kind) for f in fields) if values]
    plain = {
        _squeezed("\n\n".join(_render_values(values, kind, order) for values in examples))
        for order in (False, True)
    }  # an example in either label order is plain
    return examples, bool(examples) and _squeezed(reply) not in plain


def why_unparseable(reply: str, kind: str, output_first: bool = False) -> str:
    """What the reply lacks, for the drop report: the first label its first example misses."""
    labels = shown_labels(kind, output_first)
    examples = _labelled_examples(reply, kind, multi_paragraph=True)
    if not examples:
        return f"no '{labels[0]}:' field"
    missing = next((label for label in labels if not examples[0].get(label)), labels[-1])
    return f"no '{missing}:' field"


def parse_example(
    text: str, kind: str, system_prompt: str | None = None
) -> tuple[dict[str, Any] | None, str]:
    """The reply's first example as a normalized record of `kind`, or (None, why not)."""
    examples, _ = parse_examples(text, kind)
    if not examples:
        return None, why_unparseable(text, kind)
    return build_record(examples[0], kind, system_prompt), ""


def values_span_paragraphs(records: list[dict[str, Any]], kind: str) -> bool:
    """Whether any record's field value holds a blank line (then a blank line ends no value)."""
    return any(_BLANK_LINE.search(v) for r in records for v in example_fields(r, kind))


_BLANK_LINE = re.compile(r"\n[ \t]*\n")
# A fenced block (``` with or without a language tag) and its content.
_FENCE = re.compile(r"^[ \t]*```[\w+.-]*[ \t]*\n(.*?)^[ \t]*```[ \t]*$", re.DOTALL | re.MULTILINE)
_BARE_FENCE = re.compile(r"^[ \t]*```[ \t]*$", re.MULTILINE)
_JSON = json.JSONDecoder()


def _label_pattern(kind: str) -> re.Pattern[str]:
    """A label at the start of a line, also as markdown (`**Input:**`, `- Input:`, `## Input:`)."""
    names = "|".join(LABELS[kind])
    return re.compile(
        rf"^[ \t]*(?:[-*#>]+[ \t]*)?(?:\*\*|__)?({names})(?:\*\*|__)?[ \t]*:(?:\*\*|__)?[ \t]*",
        flags=re.MULTILINE | re.IGNORECASE,
    )


def _labelled_examples(reply: str, kind: str, multi_paragraph: bool) -> list[dict[str, str]]:
    """The reply's examples as label -> cleaned value (complete or not), in order.

    A label the current example already has starts the next one, so replies parse in either
    label order; a label repeated after a complete example (the model rambling on) starts an
    incomplete one, which is left out."""
    examples: list[dict[str, str]] = []
    for label, value in _labelled_fields(_unfenced(reply, kind), kind):
        if not examples or label in examples[-1]:
            examples.append({})
        examples[-1][label] = _clean_value(value, multi_paragraph)
    return examples


def _unfenced(reply: str, kind: str) -> str:
    """The content of the fenced blocks that hold labels, or the whole reply when none does."""
    pattern = _label_pattern(kind)
    blocks = [m.group(1) for m in _FENCE.finditer(reply) if pattern.search(m.group(1))]
    return "\n\n".join(blocks) if blocks else reply


def _labelled_fields(text: str, kind: str) -> list[tuple[str, str]]:
    """(label, raw value) pairs; a label-like line inside a JSON value does not start a field."""
    pattern, canonical = _label_pattern(kind), {label.lower(): label for label in LABELS[kind]}
    fields: list[tuple[str, str]] = []
    mark = pattern.search(text)
    while mark:
        following = pattern.search(text, _json_end(text, mark.end()) or mark.end())
        end = following.start() if following else len(text)
        fields.append((canonical[mark.group(1).lower()], text[mark.end() : end]))
        mark = following
    return fields


def _json_end(text: str, start: int) -> int | None:
    """Where a JSON object or array starting at `start` (after blanks) ends, if one does."""
    index = len(text) - len(text[start:].lstrip())
    if text[index : index + 1] not in ("{", "["):
        return None
    try:
        return _JSON.raw_decode(text, index)[1]
    except (ValueError, RecursionError):  # a generator's reply can nest past the parser's depth
        return None


def _clean_value(value: str, multi_paragraph: bool) -> str:
    """The value without what follows it: commentary after its JSON or blank line, a stray fence."""
    value = value.strip()
    end = _json_end(value, 0)
    if end is not None and (not value[end:].strip() or value[end:].lstrip(" \t").startswith("\n")):
        return value[:end]
    if not multi_paragraph:
        value = _BLANK_LINE.split(value, maxsplit=1)[0]
    if value.count("```") % 2:  # a closing fence whose opening was before the label
        stray = list(_BARE_FENCE.finditer(value))
        value = value[: stray[-1].start()] if stray else value
    return value.strip()


def _complete(fields: dict[str, str], kind: str) -> list[str] | None:
    """The example's values in label order, or None when a label is missing or empty."""
    values = [fields.get(label, "") for label in LABELS[kind]]
    return values if all(values) else None


def _render_values(values: list[str], kind: str, output_first: bool = False) -> str:
    """Values in `LABELS[kind]` order as labelled lines, in the order the generator sees them."""
    by_label = dict(zip(LABELS[kind], values, strict=True))
    return "\n".join(f"{label}: {by_label[label]}" for label in shown_labels(kind, output_first))


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text).casefold()


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
