"""Read the normalized eval split (`eval.jsonl`) into prompts and references for evaluation.

Each kind maps to what the model is asked and what it should answer:
chat -> messages[:-1] / last assistant content; prompt_completion -> prompt / completion;
preference -> prompt / chosen; kto -> prompt / completion of the desirable rows; prompt ->
prompt / its optional reference; text -> no prompt and no reference (perplexity only);
tool_chat -> one example per assistant turn: the conversation before it (with the tools) /
that turn, its calls written as `<tool_call>` blocks (see tool_metrics.reference_text).
"""

import json
from dataclasses import dataclass
from pathlib import Path

from phases.evaluation.errors import EvaluationInputError
from phases.evaluation.tool_metrics import reference_text

KINDS = ("chat", "tool_chat", "prompt_completion", "preference", "kto", "prompt", "text")
GENERATION_FREE_METRICS = ("perplexity",)


@dataclass(frozen=True)
class EvalExample:
    """One eval record, reduced to what generation and scoring need."""

    kind: str
    prompt: str | list[dict]  # text for prompt_completion/preference, messages[:-1] for chat
    reference: str | None  # None only for kind "text"
    text: str | None = None  # the whole document, kind "text" only
    tools: list[dict] | None = None  # kind "tool_chat": the tool schemas offered
    reply: dict | None = None  # kind "tool_chat": the reference assistant message itself

    @property
    def display_input(self) -> str:
        """The prompt as a person reads it in a report."""
        if isinstance(self.prompt, list):
            return "\n".join(f"{m['role']}: {m['content']}" for m in self.prompt)
        return self.prompt if self.kind != "text" else (self.text or "")


def record_kind(record: dict) -> str | None:
    """The normalized kind of a record, from an explicit "kind" field or from its keys."""
    if isinstance(record.get("kind"), str):
        return record["kind"]
    if "messages" in record and "tools" in record:
        return "tool_chat"
    if "messages" in record:
        return "chat"
    if "chosen" in record or "rejected" in record:
        return "preference"
    if "label" in record and "completion" in record:
        return "kto"
    if "prompt" in record and "completion" not in record:
        return "prompt"
    if "prompt" in record:
        return "prompt_completion"
    if "text" in record:
        return "text"
    return None


def _require_str(record: dict, field: str, where: str) -> str:
    value = record.get(field)
    if not isinstance(value, str):
        raise EvaluationInputError(f"{where}: field '{field}' must be a string, got {value!r}.")
    if field != "prompt" and not value.strip():
        raise EvaluationInputError(f"{where}: field '{field}' is empty, so there is no reference.")
    return value


def _chat_example(record: dict, where: str) -> EvalExample:
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise EvaluationInputError(f"{where}: 'messages' must be a non-empty list of messages.")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise EvaluationInputError(
                f"{where}: messages[{i}] must be an object with a string 'content'."
            )
    last = messages[-1]
    if last.get("role") != "assistant" or not last["content"].strip():
        raise EvaluationInputError(
            f"{where}: the last message must be a non-empty assistant reply (the reference); "
            f"got role {last.get('role')!r}."
        )
    if len(messages) < 2:
        raise EvaluationInputError(f"{where}: a chat needs at least one message before the reply.")
    return EvalExample("chat", [dict(m) for m in messages[:-1]], last["content"])


def tool_chat_examples(record: dict, where: str) -> list[EvalExample]:
    """One example per assistant turn of a tool-calling conversation."""
    messages, tools = record.get("messages"), record.get("tools")
    if not isinstance(messages, list) or not isinstance(tools, list):
        raise EvaluationInputError(
            f"{where}: a tool_chat record needs 'messages' and 'tools' lists."
        )
    examples = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content", ""), str):
            raise EvaluationInputError(f"{where}: messages[{index}] must be an object with text.")
        if message.get("role") == "assistant" and index > 0:
            reference = reference_text(message)
            if reference.strip():
                prompt = [dict(m) for m in messages[:index]]
                examples.append(
                    EvalExample("tool_chat", prompt, reference, tools=tools, reply=message)
                )
    if not examples:
        raise EvaluationInputError(f"{where}: the conversation has no assistant turn to evaluate.")
    return examples


def parse_record(record: dict, where: str) -> EvalExample:
    """One normalized record as an EvalExample; `where` ("file:line") prefixes any error."""
    kind = record_kind(record)
    if kind == "chat":
        return _chat_example(record, where)
    if kind == "prompt_completion":
        if "completion" not in record:
            raise EvaluationInputError(
                f"{where}: no reference: a prompt_completion record needs a 'completion' field."
            )
        return EvalExample(
            kind, _require_str(record, "prompt", where), _require_str(record, "completion", where)
        )
    if kind == "preference":
        return EvalExample(
            kind, _require_str(record, "prompt", where), _require_str(record, "chosen", where)
        )
    if kind == "kto":  # only desirable replies reach here (see load_eval_examples)
        return EvalExample(
            kind, _require_str(record, "prompt", where), _require_str(record, "completion", where)
        )
    if kind == "prompt":  # RL prompts: scored against their reference when they have one
        reference = _require_str(record, "reference", where) if "reference" in record else None
        return EvalExample(kind, _require_str(record, "prompt", where), reference)
    if kind == "text":
        return EvalExample(kind, "", None, _require_str(record, "text", where))
    raise EvaluationInputError(
        f"{where}: unrecognized record (kind {kind!r}, keys {sorted(record)}); expected one of "
        f"{', '.join(KINDS)} as written by the data phase."
    )


def load_eval_examples(path: Path, max_examples: int | None = None) -> list[EvalExample]:
    """Parse `path` (JSON lines), checking every record; raise EvaluationInputError on bad input."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationInputError(f"Eval data file not found: {path}")
    examples: list[EvalExample] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise EvaluationInputError(f"{where}: not valid JSON ({err.msg}).") from None
            if not isinstance(record, dict):
                raise EvaluationInputError(f"{where}: each line must be a JSON object.")
            if record_kind(record) == "kto" and record.get("label") is not True:
                continue  # an undesirable reply is no reference to score against
            if record_kind(record) == "tool_chat":
                parsed = tool_chat_examples(record, where)
            else:
                parsed = [parse_record(record, where)]
            if examples and parsed[0].kind != examples[0].kind:
                raise EvaluationInputError(
                    f"{where}: record of kind '{parsed[0].kind}' in a file of kind "
                    f"'{examples[0].kind}'; an eval split holds one kind."
                )
            examples += parsed
    if not examples:
        raise EvaluationInputError(f"{path}: the eval set is empty; there is nothing to evaluate.")
    return examples[:max_examples] if max_examples else examples


def check_references(examples: list[EvalExample], metrics: list[str], path: Path) -> None:
    """Refuse metrics that compare against references when the eval set has none."""
    needs_reference = [m for m in metrics if m not in GENERATION_FREE_METRICS]
    if needs_reference and all(e.reference is None for e in examples):
        raise EvaluationInputError(
            f"{path}: the eval set has no references (plain 'text' records), so "
            f"{', '.join(needs_reference)} cannot be computed. Only 'perplexity' works on plain "
            'text: set evaluation.metrics to ["perplexity"], or give prompt/completion or chat '
            "eval data."
        )
