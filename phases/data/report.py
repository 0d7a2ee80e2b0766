"""The data report: what was read, kept, dropped and why, token lengths, and the split.

Invariant: rows_read == rows_kept + sum(dropped_by_reason.values()) + duplicates_removed
+ overlaps_eval, where rows_kept == train_rows + eval_rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from phases.data.formats import DroppedRow

# Reason key -> words for people. Duplicates and eval overlaps are counted on their own.
REASON_TEXT = {
    "empty_field": "empty required field",
    "invalid_value": "invalid value (not text, bad JSON, unknown role, ...)",
    "role_order": "wrong role order (e.g. chat not ending with an assistant reply)",
    "too_long": "longer than max_length tokens",
}
# The report lists this many dropped rows one by one; dropped_by_reason counts them all.
DROPPED_ROWS_LISTED = 200


@dataclass
class SourceSummary:
    """One input file: its role (train or eval), detected format and rows read."""

    path: str
    role: str
    format: str
    rows: int


@dataclass
class DataReport:
    """The validation report of one prepare_data call (written as data_report.json)."""

    kind: str
    format: str
    sources: list[SourceSummary]
    rows_read: int
    rows_kept: int
    train_rows: int
    eval_rows: int
    dropped_by_reason: dict[str, int]
    dropped: list[DroppedRow]
    duplicates_removed: int
    overlaps_eval: int
    max_length: int
    token_counter: str
    token_stats: dict[str, float]
    split: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    data_hash: str = ""

    @property
    def rows_dropped(self) -> int:
        """Every row not kept: dropped for a reason, duplicate, or also in the eval file."""
        return sum(self.dropped_by_reason.values()) + self.duplicates_removed + self.overlaps_eval

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the content of data_report.json)."""
        data = asdict(self)
        data["rows_dropped"] = self.rows_dropped
        data["dropped_rows_listed_at_most"] = DROPPED_ROWS_LISTED
        return data

    def summary_lines(self) -> list[str]:
        """A few lines for a person: counts, drop reasons, token lengths, split."""
        files = ", ".join(f"{s.path} ({s.role}, {s.format}, {s.rows} rows)" for s in self.sources)
        lines = [
            f"Read {self.rows_read} rows from {files}; dataset kind '{self.kind}'.",
            f"Kept {self.rows_kept}: {self.train_rows} train, {self.eval_rows} eval "
            f"({self._split_text()}).",
        ]
        if self.rows_dropped:
            parts = [f"{n} {REASON_TEXT.get(r, r)}" for r, n in self.dropped_by_reason.items() if n]
            if self.duplicates_removed:
                parts.append(f"{self.duplicates_removed} exact duplicates")
            if self.overlaps_eval:
                parts.append(f"{self.overlaps_eval} overlap the eval file")
            lines.append(f"Dropped {self.rows_dropped}: " + "; ".join(parts) + ".")
            lines += [f"  {d.origin}: {d.detail}" for d in self.dropped[:5]]
        if self.token_stats:
            s = self.token_stats
            lines.append(
                f"Tokens per example ({self.token_counter}): min {s['min']}, mean {s['mean']}, "
                f"p50 {s['p50']}, p95 {s['p95']}, max {s['max']} (max_length {self.max_length})."
            )
        lines += [f"Warning: {w}" for w in self.warnings]
        if self.data_hash:
            lines.append(f"Data hash: {self.data_hash[:16]}")
        return lines

    def _split_text(self) -> str:
        if self.split.get("method") == "eval_file":
            return f"eval from {self.split['eval_file']}"
        if self.split.get("method") == "fraction":
            return f"{self.split['eval_fraction']:.0%} held out with seed {self.split['seed']}"
        return "no eval split"
