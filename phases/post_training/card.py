"""Model cards and exact configs beside every post-training output (as mergekit writes them).

The card follows Hugging Face's conventions: YAML front matter with `base_model`,
`base_model_relation` (`adapter`, `finetune`, `merge`, `quantized`) and a `model-index` holding
the evaluation results, then what was done, the gate's measurements and its verdict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONFIG_FILE = "post_training_config.json"
CARD_FILE = "README.md"


def card_folder(path: Path) -> Path:
    """Where a candidate's card and config go: its folder, or the folder of its GGUF file."""
    path = Path(path)
    return path.parent if path.is_file() else path


def write_card(
    row: dict[str, Any], *, base_model: str, dataset: str, config: dict[str, Any]
) -> Path:
    """Write the exact config and the model card of one candidate row; return the card's path."""
    folder = card_folder(Path(row["path"]))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=str))
    card = folder / CARD_FILE
    card.write_text(render_card(row, base_model=base_model, dataset=dataset))
    return card


def _yaml_value(value: Any) -> str:
    return json.dumps(value)  # JSON scalars and lists are valid YAML flow values


def front_matter(
    *,
    name: str,
    base_model: str,
    relation: str | None,
    library: str,
    dataset: str,
    metrics: dict[str, Any],
    tags: list[str],
) -> list[str]:
    """Hugging Face's card metadata: the base model, how this model relates to it (one of the
    Hub's relations, or None for an artifact none of them describes, e.g. a prompt: the line is
    left out), and the evaluation results as a `model-index`."""
    results = [
        f"      - {{type: {metric}, name: {metric}, value: {value}}}"
        for metric, value in metrics.items()
        if isinstance(value, (int, float))
    ]
    return [
        "---",
        f"base_model: {_yaml_value(base_model)}",
        *([f"base_model_relation: {relation}"] if relation else []),
        f"library_name: {library}",
        f"tags: {_yaml_value(['finetune-agent', *tags])}",
        "model-index:",
        f"- name: {_yaml_value(name)}",
        "  results:",
        "  - task: {type: text-generation}",
        f"    dataset: {{name: {_yaml_value(dataset)}, type: json}}",
        "    metrics:",
        *(results or ["      []"]),
        "---",
    ]


def render_card(row: dict[str, Any], *, base_model: str, dataset: str) -> str:
    """The card's Markdown: front matter (HF conventions) and the gate's table."""
    front = front_matter(
        name=row["name"],
        base_model=base_model,
        relation=row["relation"],
        library="gguf" if str(row["path"]).endswith(".gguf") else "transformers",
        dataset=dataset,
        metrics=row.get("metrics") or {},
        tags=[row["relation"], row["name"]],
    )
    return "\n".join([*front, "", *card_body(row), ""])


def card_body(row: dict[str, Any]) -> list[str]:
    """What was made, from what, and how it fared at its gate."""
    measured = {
        "size (bytes)": row.get("bytes"),
        "bits per weight": row.get("bits_per_weight"),
        "CPU tokens/s": row.get("tokens_per_second"),
        "KL divergence vs source": row.get("kl"),
        "top-1 agreement": row.get("top1"),
        "same greedy answers": row.get("same_answers"),
        "held-out score": row.get("held_out_score"),
    }
    lines = [
        f"# {row['name']}",
        "",
        f"- Operation: `{row['operation']}` with `{json.dumps(row.get('parameters') or {})}`",
        f"- Made from: `{row.get('parent_path') or row.get('parent')}`",
        f"- Gate verdict: **{row['verdict']}** — {row.get('reason', '')}",
        "",
        "| measure | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in measured.items() if v is not None),
        "",
        "| metric | value | retention |",
        "|---|---|---|",
        *(
            f"| {name} | {value} | {(row.get('retention') or {}).get(name, '—')} |"
            for name, value in (row.get("metrics") or {}).items()
        ),
    ]
    return lines
