"""The evaluation report files: `evaluation_report.json`, `evaluation_report.md`, `loss.png`,
and for a DPO run `preference.png` (margin and log-prob curves)."""

import json
from pathlib import Path

from phases.evaluation.preference_curves import (
    preference_curves,
    preference_section,
    write_preference_plot,
)
from phases.evaluation.results import EvaluationReport, ExampleRow

RULE_SIGNS = {"min": "≥", "max": "≤", "above_base": "≥ base +", "below_base": "≤ base -"}


def read_log_history(path: Path) -> list[dict]:
    """Trainer log history from a JSON list or a trainer_state.json ({"log_history": [...]})."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    history = data.get("log_history", []) if isinstance(data, dict) else data
    return [entry for entry in history if isinstance(entry, dict)]


def _history_or_note(path: Path | None, notes: list[str]) -> list[dict]:
    """The log history, or [] with a note saying why there is none (the report still gets written)."""
    if path is None:
        notes.append("No training log history was given, so there is no loss plot.")
        return []
    try:
        return read_log_history(path)
    except (OSError, ValueError) as err:
        notes.append(f"Could not read the training log history {path} ({err}); no loss plot.")
        return []


def write_loss_plot(history: list[dict], path: Path) -> bool:
    """Plot train and eval loss against step; False (nothing written) if there is no loss."""
    train = [(e["step"], e["loss"]) for e in history if "loss" in e and "step" in e]
    evals = [(e["step"], e["eval_loss"]) for e in history if "eval_loss" in e and "step" in e]
    if not train and not evals:
        return False
    # Figure + Agg canvas directly: no pyplot, so no global backend switch in the process.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for points, label, style in ((train, "train loss", "-"), (evals, "eval loss", "o-")):
        if points:
            axes.plot(*zip(*points, strict=True), style, label=label)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return True


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _metrics_table(report: EvaluationReport) -> list[str]:
    base = report.base.metrics if report.base else {}
    lines = ["| metric | base | tuned | delta |", "|---|---|---|---|"]
    for name, value in report.tuned.metrics.items():
        delta = report.deltas.get(name)
        shown = "—" if delta is None else f"{delta:+.4f}"
        lines.append(f"| {name} | {_number(base.get(name))} | {_number(value)} | {shown} |")
    return lines


def _thresholds_table(report: EvaluationReport) -> list[str]:
    rule = [f"Acceptance rule: {report.acceptance}.", ""] if report.acceptance else []
    if not report.checks:
        return rule or ["No thresholds were set."]
    lines = [
        *rule,
        "| metric | rule | required | base | tuned | result |",
        "|---|---|---|---|---|---|",
    ]
    for check in report.checks:
        rule = f"{RULE_SIGNS[check.rule]} {check.bound:g}"
        verdict = "pass" if check.passed else "**FAIL**"
        lines.append(
            f"| {check.metric} | {rule} | {_number(check.required)} | {_number(check.base)} "
            f"| {_number(check.tuned)} | {verdict} |"
        )
    return lines


def _fenced(text: str | None) -> str:
    if not (text or "").strip():
        return "(empty)"
    return "```text\n" + text.replace("```", "'''") + "\n```"


def _examples(examples: list[ExampleRow], row_metric: str | None) -> list[str]:
    lines: list[str] = []
    for number, example in enumerate(examples, start=1):
        lines += [
            f"### {number}. {example.which} (row {example.row}, {row_metric} "
            f"{_number(example.score)})",
            "",
            "Input:",
            _fenced(example.input),
            "",
            "Reference:",
            _fenced(example.reference),
            "",
            "Base output:",
            _fenced(example.base_output) if example.base_output is not None else "(not compared)",
            "",
            "Tuned output:",
            _fenced(example.tuned_output),
            "",
        ]
    return lines


def _verdict(report: EvaluationReport) -> list[str]:
    failed = [check.summary for check in report.checks if not check.passed]
    if not failed:
        return ["**Result: PASSED**"]
    return ["**Result: FAILED**: " + "; ".join(failed)]


def render_markdown(
    report: EvaluationReport, plot_written: bool, preference: list[str] | None = None
) -> str:
    """The human-readable report; `preference` is the DPO section (see preference_curves)."""
    base_name = report.base.model if report.base else "not evaluated"
    lines = [
        "# Evaluation report",
        "",
        *_verdict(report),
        "",
        f"- Tuned model: `{report.tuned.model}`",
        f"- Base model: `{base_name}`" + (" (cached result)" if report.base_from_cache else ""),
        f"- Eval examples: {report.tuned.n_examples}",
        "",
        "## Metrics",
        "",
        *_metrics_table(report),
        "",
        "## Thresholds",
        "",
        *_thresholds_table(report),
        "",
        f"## Examples (tuned model's worst, best and random rows by {report.tuned.row_metric})",
        "",
        *(_examples(report.examples, report.tuned.row_metric) or ["No scored examples."]),
        "",
        "## Loss",
        "",
        "![train and eval loss](loss.png)" if plot_written else "No loss plot (see notes).",
    ]
    if preference:
        lines += ["", *preference]
    if report.notes:
        lines += ["", "## Notes", "", *[f"- {note}" for note in report.notes]]
    return "\n".join(lines) + "\n"


def write_report(report: EvaluationReport, output_dir: Path, log_history_path: Path | None) -> None:
    """Write the three report files into `output_dir` and record them in `report.files`."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    plot_path = output_dir / "loss.png"
    history = _history_or_note(log_history_path, report.notes)
    plot_written = write_loss_plot(history, plot_path)
    if plot_written:
        report.files["loss_plot"] = str(plot_path)
    elif history:
        report.notes.append("The training log history holds no train/eval loss; no loss plot.")
    curves = preference_curves(history)
    preference_plot = output_dir / "preference.png"
    preference_written = write_preference_plot(curves, preference_plot)
    if preference_written:
        report.files["preference_plot"] = str(preference_plot)
    markdown_path = output_dir / "evaluation_report.md"
    json_path = output_dir / "evaluation_report.json"
    report.files.update(json=str(json_path), markdown=str(markdown_path))
    preference = preference_section(curves, preference_written)
    markdown_path.write_text(render_markdown(report, plot_written, preference), encoding="utf-8")
    json_path.write_text(json.dumps(report.model_dump(), indent=2), encoding="utf-8")
