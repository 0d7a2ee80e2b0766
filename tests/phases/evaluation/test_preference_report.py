"""A DPO run's evaluation report shows its margin and log-prob curves; other runs do not."""

import json
from pathlib import Path

from phases.evaluation.preference_curves import preference_curves, preference_section
from phases.evaluation.report import write_report
from phases.evaluation.results import EvaluationReport, EvaluationResult

HISTORY = [
    {
        "step": s,
        "loss": 0.7 / s,
        "rewards/margins": 0.5 * s,
        "logps/chosen": -20 + s,
        "logps/rejected": -40 - 3 * s,
    }
    for s in range(1, 21)
]


def _report() -> EvaluationReport:
    tuned = EvaluationResult(model="t", metrics={}, predictions=[], n_examples=0, seconds=0.0)
    return EvaluationReport(base=None, tuned=tuned, deltas={}, checks=[], passed=True)


def test_a_dpo_report_draws_and_tabulates_the_curves(tmp_path: Path) -> None:
    history = tmp_path / "log_history.json"
    history.write_text(json.dumps(HISTORY), encoding="utf-8")
    report = _report()
    write_report(report, tmp_path / "eval", history)
    assert Path(report.files["preference_plot"]).stat().st_size > 0
    markdown = Path(report.files["markdown"]).read_text(encoding="utf-8")
    assert "![margin and log-probabilities](preference.png)" in markdown
    assert "| 1 | 0.50 | -19.00 | -43.00 |" in markdown  # first logged step
    assert "| 20 | 10.00 | 0.00 | -100.00 |" in markdown  # last logged step
    rows = [
        line
        for line in preference_section(preference_curves(HISTORY), True)
        if line.startswith("| ") and line[2].isdigit()
    ]
    assert len(rows) == 8  # a few steps, evenly spread


def test_an_sft_report_has_no_preference_section(tmp_path: Path) -> None:
    history = tmp_path / "log_history.json"
    history.write_text(json.dumps([{"step": 1, "loss": 2.0}]), encoding="utf-8")
    report = _report()
    write_report(report, tmp_path / "eval", history)
    assert "preference_plot" not in report.files
    assert "Preference training" not in Path(report.files["markdown"]).read_text(encoding="utf-8")
