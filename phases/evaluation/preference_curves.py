"""The preference part of the evaluation report: how a DPO run's margin and log-probabilities
moved (`preference.png` and a table), from TRL's `rewards/margins`, `logps/chosen` and
`logps/rejected` logs. A margin that saturates early or a chosen log-prob that falls is what
the debugger diagnoses; the report lets a person see it."""

from pathlib import Path

CURVES = {
    "rewards/margins": "margin",
    "logps/chosen": "chosen log-prob",
    "logps/rejected": "rejected log-prob",
}
TABLE_ROWS = 8


def preference_curves(history: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """(step, value) per logged preference series ({} for a run that is not DPO)."""
    curves = {
        key: [(int(e["step"]), float(e[key])) for e in history if key in e and "step" in e]
        for key in CURVES
    }
    return curves if curves["rewards/margins"] else {}


def write_preference_plot(curves: dict[str, list[tuple[int, float]]], path: Path) -> bool:
    """Margin (left) and chosen/rejected log-probs (right) against step; False without data."""
    if not curves:
        return False
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4))
    FigureCanvasAgg(figure)
    margin_axes, logp_axes = figure.subplots(1, 2)
    margin_axes.plot(*zip(*curves["rewards/margins"], strict=True), "-", label="margin")
    for key in ("logps/chosen", "logps/rejected"):
        if curves.get(key):
            logp_axes.plot(*zip(*curves[key], strict=True), "-", label=CURVES[key])
    for axes, label in ((margin_axes, "rewards/margins"), (logp_axes, "summed log-prob")):
        axes.set_xlabel("step")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return True


def _spread(points: list[int], count: int) -> list[int]:
    """At most `count` of `points`, evenly spaced, first and last kept."""
    if len(points) <= count:
        return points
    return [points[round(i * (len(points) - 1) / (count - 1))] for i in range(count)]


def preference_section(curves: dict[str, list[tuple[int, float]]], plot_written: bool) -> list[str]:
    """Markdown lines: the plot and a table of the curves at a few steps ([] when not DPO)."""
    if not curves:
        return []
    by_key = {key: dict(points) for key, points in curves.items()}
    steps = _spread(sorted(by_key["rewards/margins"]), TABLE_ROWS)
    lines = [
        "## Preference training",
        "",
        "![margin and log-probabilities](preference.png)" if plot_written else "",
        "",
        "| step | " + " | ".join(CURVES.values()) + " |",
        "|---|" + "---|" * len(CURVES),
    ]
    for step in steps:
        cells = [by_key[key].get(step) for key in CURVES]
        lines.append(
            f"| {step} | " + " | ".join("—" if v is None else f"{v:.2f}" for v in cells) + " |"
        )
    return lines
