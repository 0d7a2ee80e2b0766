"""Merge kept synthetic examples into the seed training split, as a new file in the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from phases.data import data_hash

MERGED_FILE = "train_with_synthetic.jsonl"


def merge_training_data(
    train_path: Path, eval_path: Path, synthetic: list[dict[str, Any]], output: Path
) -> dict[str, Any]:
    """Write seed train rows then `synthetic` rows to `output` (the seed file is left as it is).

    Returns the new train path, its row count and the data hash of (merged train, eval), the
    same hash `phases.data.prepare_data` computes, so a changed training set gets a new hash.
    """
    seed_text = Path(train_path).read_text(encoding="utf-8")
    if seed_text and not seed_text.endswith("\n"):
        seed_text += "\n"
    merged = seed_text + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in synthetic)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(merged, encoding="utf-8")
    eval_text = Path(eval_path).read_text(encoding="utf-8") if Path(eval_path).is_file() else ""
    return {
        "train_path": str(output),
        "train_rows": sum(1 for line in merged.splitlines() if line.strip()),
        "data_hash": data_hash(merged, eval_text),
    }
