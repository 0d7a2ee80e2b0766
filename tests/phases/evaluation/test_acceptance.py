"""The acceptance rule: with no thresholds a tuned model must not be worse than its base, and
a model worse on every metric never passes, thresholds or not."""

from phases.evaluation import EvaluationConfig, compute_text_metrics
from phases.evaluation.acceptance import planned_rule
from phases.evaluation.comparison import build_report
from phases.evaluation.report import render_markdown
from phases.evaluation.results import EvaluationResult, Prediction

PEOPLE = [("Yusuf", 79, "Tunis"), ("Ann", 31, "Oslo"), ("Bob", 45, "Lima"), ("Dee", 38, "Kyiv")]
REFERENCES = [f'{{"name": "{n}", "age": {a}, "city": "{c}"}}' for n, a, c in PEOPLE]
# The base writes JSON with one wrong key; the tuned model writes JSON that runs on.
BASE = [f'{{"person": "{n}", "age": {a}, "city": "{c}"}}' for n, a, c in PEOPLE]
RUN_ON = [
    f'{{"name": "{n}", "age": {a}, "city": "{c}, {n}"}},\nLiving in London, {n}'
    for n, a, c in PEOPLE
]
JSON_METRICS = ["rougeL", "exact_match", "json_valid", "json_field_accuracy"]


def _result(name: str, answers: list[str], config: EvaluationConfig) -> EvaluationResult:
    """A result scored by the real metrics (no model: the answers are the data)."""
    metrics = compute_text_metrics(config.metrics, answers, REFERENCES)
    rows = [
        Prediction(input=f"person {i}", expected=r, got=a, score=None)
        for i, (a, r) in enumerate(zip(answers, REFERENCES, strict=True))
    ]
    return EvaluationResult(
        model=name, metrics=metrics, predictions=rows, n_examples=len(rows), seconds=0.0
    )


def _report(base: list[str], tuned: list[str], **evaluation):
    config = EvaluationConfig(metrics=JSON_METRICS, **evaluation)
    return build_report(
        config, _result("base", base, config), _result("tuned", tuned, config), notes=[]
    )


def test_no_thresholds_and_worse_than_the_base_does_not_pass() -> None:
    report = _report(BASE, RUN_ON)
    assert report.base.metrics["exact_match"] == report.tuned.metrics["exact_match"] == 0.0
    assert not report.passed
    assert report.acceptance.startswith("default (no thresholds set)")
    assert [c.metric for c in report.checks] == JSON_METRICS  # primary first, then JSON
    failed = [c.metric for c in report.checks if not c.passed]
    assert failed == ["rougeL", "json_valid", "json_field_accuracy"]  # 0.0 -> 0.0 is not worse
    markdown = render_markdown(report, plot_written=False)
    assert "**Result: FAILED**" in markdown and "Acceptance rule: default" in markdown


def test_no_thresholds_and_at_least_as_good_as_the_base_passes() -> None:
    report = _report(BASE, REFERENCES)
    assert report.passed and all(c.rule == "above_base" and c.bound == 0 for c in report.checks)


def test_plain_text_answers_are_held_to_the_primary_metric_only() -> None:
    config = EvaluationConfig(metrics=["bleu", "rougeL"])
    tuned = _result("tuned", [f"{n} lives in {c}." for n, _, c in PEOPLE], config)
    base = _result("base", [f"{n} is {a} and lives in {c}." for n, a, c in PEOPLE], config)
    for row in [*tuned.predictions, *base.predictions]:
        row.expected = "prose"  # not JSON: the JSON metrics stay out of the rule
    report = build_report(config, base, tuned, notes=[])
    assert [c.metric for c in report.checks] == ["bleu"]


def test_thresholds_that_pass_do_not_hide_a_model_worse_on_every_metric() -> None:
    # A loose absolute bound the run meets while being worse than the base on everything.
    config = EvaluationConfig(metrics=["rougeL", "bleu"], thresholds={"rougeL": 0.05})
    worse = [f"{n} lives somewhere." for n, _, _ in PEOPLE]
    base = [f"{n} is {a} and lives in {c}." for n, a, c in PEOPLE]
    report = build_report(
        config, _result("base", base, config), _result("tuned", worse, config), notes=[]
    )
    assert report.checks[0].passed  # the configured threshold itself holds
    assert not report.passed and "worse on all of rougeL, bleu" in report.acceptance
    guard = report.checks[-1]
    assert (guard.metric, guard.rule, guard.passed) == ("rougeL", "above_base", False)


def test_without_a_base_there_is_nothing_to_compare_and_the_rule_says_so() -> None:
    config = EvaluationConfig(metrics=JSON_METRICS, compare_base=False)
    report = build_report(config, None, _result("tuned", RUN_ON, config), notes=[])
    assert report.passed and not report.checks
    assert report.acceptance.startswith("none: no thresholds are set")


def test_the_plan_names_the_rule_before_anything_runs() -> None:
    assert planned_rule(EvaluationConfig()).startswith(
        "default (no thresholds set): the tuned model must not be worse than the base on rougeL"
    )
    configured = EvaluationConfig(metrics=JSON_METRICS, thresholds={"exact_match": 0.5})
    assert planned_rule(configured) == "the configured thresholds (exact_match)"
