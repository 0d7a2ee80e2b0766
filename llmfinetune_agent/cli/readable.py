"""Values for people to read: rounded numbers, durations, sizes, one-line excerpts."""

from __future__ import annotations

import json
import math
import re
from typing import Any

TEXT_WIDTH = 90  # longest one-line excerpt of a sample, an output or a summary


def fmt_number(value: Any) -> str:
    """A number for reading: 3 significant digits, whole numbers from 100 up, '—' for none."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if not isinstance(value, float):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def fmt_change(value: Any) -> str:
    """A signed difference ('+0.352', '-2,245'); '—' for none."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "—"
    text = fmt_number(value)
    return text if text.startswith("-") or text == "0" else "+" + text


def fmt_duration(seconds: Any) -> str:
    """'< 1 s', '45 s', '1 min 20 s', '2 h 5 min'; 'unknown' for none."""
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "unknown"
    if seconds < 1:
        return "< 1 s"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def fmt_memory(gigabytes: Any) -> str:
    """'13 MB', '1.2 GB', '24 GB'; 'unknown' for none."""
    if not isinstance(gigabytes, (int, float)) or not math.isfinite(gigabytes):
        return "unknown"
    if gigabytes < 0.001:
        return "< 1 MB"
    if gigabytes < 1:
        return f"{gigabytes * 1000:.0f} MB"
    return f"{gigabytes:.1f} GB" if gigabytes < 10 else f"{gigabytes:.0f} GB"


def one_line(text: Any, width: int = TEXT_WIDTH) -> str:
    """`text` on one line (line breaks shown as ⏎), cut to `width` characters with '…'."""
    if text is None:
        return "—"
    flat = re.sub(r"\s*\n\s*", " ⏎ ", str(text).strip())  # a run of blank lines is one ⏎
    flat = re.sub(r"[ \t]+", " ", flat)
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


def compact_json(value: Any) -> str:
    """A small patch on one line: {"training": {"epochs": 3}}."""
    return one_line(json.dumps(value, default=str, separators=(", ", ": ")), 100)
