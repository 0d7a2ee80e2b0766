"""A prompt artifact: a system prompt and few-shot exemplars for one base model, as a file.

A prompt run (`training.method: "prompt"`) leaves the weights alone and writes this file; the
evaluator, `POST /models/{id}/generate`, the chat adapter and an SFT run that starts from it
all read it through `read_prompt_artifact` and apply it with `apply_to_messages` /
`apply_to_text`, so each sees the same input the optimizer scored.

    prompt = PromptArtifact(model="builtin:tiny-llama", system_prompt="Answer in JSON.",
                            exemplars=[Exemplar(input="Ana, 30, Rome", output='{"name": "Ana"}')])
    write_prompt_artifact(prompt, Path("prompt.json"))
    apply_to_messages(read_prompt_artifact(Path("prompt.json")), [{"role": "user", "content": "Hi"}])
    # [system, user (exemplar), assistant (exemplar), user]
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PROMPT_FORMAT = "finetune-agent-prompt"
PROMPT_FILE = "prompt.json"


class PromptArtifactError(ValueError):
    """A prompt artifact file that cannot be read; the message names the file and the field."""


@dataclass(frozen=True)
class Exemplar:
    """One few-shot example shown before the real input: what the user said, what was answered."""

    input: str
    output: str


@dataclass(frozen=True)
class PromptArtifact:
    """What a prompt run produced: the text and exemplars to put before every input."""

    model: str
    """The base model reference the prompt was optimized for (weights unchanged)."""
    system_prompt: str
    exemplars: list[Exemplar] = field(default_factory=list)
    base_prompt: str | None = None
    """The plain instruction the search started from (the evaluation's baseline)."""
    metric: str | None = None
    """The per-row metric the search maximized."""
    scores: dict[str, Any] = field(default_factory=dict)
    """Held-out scores: of the base prompt and of this one, with the metric calls spent."""

    def to_dict(self) -> dict[str, Any]:
        """The file's JSON object."""
        return {"format": PROMPT_FORMAT, **asdict(self)}


def write_prompt_artifact(prompt: PromptArtifact, path: Path) -> Path:
    """Write `prompt` as JSON to `path` (atomically) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(prompt.to_dict(), indent=2, ensure_ascii=False), "utf-8")
    temporary.replace(path)
    return path


def read_prompt_artifact(path: Path) -> PromptArtifact:
    """The prompt artifact in `path` (a file, or a folder holding `prompt.json`)."""
    path = Path(path)
    if path.is_dir():
        path = path / PROMPT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PromptArtifactError(
            f"prompt artifact {path}: cannot read it as JSON ({exc})"
        ) from None
    if not isinstance(data, dict):
        raise PromptArtifactError(f"prompt artifact {path}: expected a JSON object")
    for key in ("model", "system_prompt"):
        if not isinstance(data.get(key), str):
            raise PromptArtifactError(
                f"prompt artifact {path}: '{key}' must be a string (expected an object with a "
                "'model' reference and a 'system_prompt' text)"
            )
    return PromptArtifact(
        model=data["model"],
        system_prompt=data["system_prompt"],
        exemplars=_exemplars(data.get("exemplars") or [], path),
        base_prompt=data.get("base_prompt"),
        metric=data.get("metric"),
        scores=data.get("scores") or {},
    )


def is_prompt_artifact(path: str | Path) -> bool:
    """Whether `path` is a prompt artifact file (or a folder holding one)."""
    path = Path(path)
    candidate = path / PROMPT_FILE if path.is_dir() else path
    if candidate.suffix != ".json" or not candidate.is_file():
        return False
    try:
        data = json.loads(candidate.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and isinstance(data.get("system_prompt"), str)


def _exemplars(rows: Any, path: Path) -> list[Exemplar]:
    if not isinstance(rows, list):
        raise PromptArtifactError(f"prompt artifact {path}: 'exemplars' must be a list")
    out = []
    for i, row in enumerate(rows):
        if not (
            isinstance(row, dict)
            and isinstance(row.get("input"), str)
            and isinstance(row.get("output"), str)
        ):
            raise PromptArtifactError(
                f"prompt artifact {path}: exemplars[{i}] must have string 'input' and 'output'"
            )
        out.append(Exemplar(input=row["input"], output=row["output"]))
    return out


def apply_to_messages(
    prompt: PromptArtifact | None, messages: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`messages` with the prompt before them: its system prompt first (joined with the
    conversation's own system message, if any), then each exemplar as a user/assistant turn."""
    if prompt is None:
        return list(messages)
    own = [m for m in messages[:1] if m.get("role") == "system"]
    rest = messages[len(own) :]
    system = "\n\n".join(t for t in [prompt.system_prompt, *(m["content"] for m in own)] if t)
    shots = [
        turn
        for e in prompt.exemplars
        for turn in (
            {"role": "user", "content": e.input},
            {"role": "assistant", "content": e.output},
        )
    ]
    return [*([{"role": "system", "content": system}] if system else []), *shots, *rest]


def apply_to_text(prompt: PromptArtifact | None, text: str) -> str:
    """A plain-text prompt (no chat template) with the system prompt and exemplars before it,
    each exemplar as its input directly followed by its output, as training data is written."""
    if prompt is None:
        return text
    parts = [prompt.system_prompt, *(e.input + e.output for e in prompt.exemplars), text]
    return "\n\n".join(p for p in parts if p)
