"""Write small data files in each container (CSV, JSON, wrapped JSON, JSONL) for the data tests."""

import csv
import json
from pathlib import Path
from typing import Any

CONTAINERS = ("csv", "json", "json_wrapped", "jsonl")


def write_rows(directory: Path, name: str, rows: list[dict[str, Any]], container: str) -> Path:
    """Write `rows` as `<name>.<ext>`; in CSV, list values become JSON text (as exports do)."""
    if container == "csv":
        path = directory / f"{name}.csv"
        columns = list(dict.fromkeys(key for row in rows for key in row))
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()}
                )
        return path
    if container == "jsonl":
        path = directory / f"{name}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return path
    path = directory / f"{name}.json"
    document: Any = {"data": rows} if container == "json_wrapped" else rows
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path
