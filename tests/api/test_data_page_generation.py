"""The dashboard's data page shows generation's keep rate, near-duplicate rate and, per field
of the kept rows, how it was judged and how many values no seed has (issue 22); a report
written before those figures existed still renders."""

import re

from api.ui.rendering import TEMPLATES

GENERATION = {
    "requested": 2,
    "generated": 4,
    "kept": 2,
    "keep_rate": 0.5,
    "near_duplicate_rate": 0.25,
    "dropped": {"format": 2},
    "field_rules": {"city": {"rule": "free text"}, "age": {"rule": "number"}},
    "field_stats": {"city": {"distinct": 2, "new": 1}, "age": {"distinct": 2, "new": 2}},
}


def _generated_section(generation: dict) -> str:
    template = TEMPLATES.env.get_template("data.html")
    context = {"run": {"id": "r1", "name": "quickstart"}, "report": None, "generated": []}
    html = "".join(
        template.blocks["main"](template.new_context({**context, **{"generation": generation}}))
    )
    return re.sub(r"\s+", " ", html)


def test_the_data_page_shows_rates_and_new_values_per_field() -> None:
    html = _generated_section(GENERATION)
    assert "<dt>keep rate</dt><dd>0.5</dd>" in html
    assert "<dt>near duplicate rate</dt><dd>0.25</dd>" in html
    assert "<tr><td>city</td><td>free text</td><td>2</td><td>1</td></tr>" in html
    assert "<tr><td>age</td><td>number</td><td>2</td><td>2</td></tr>" in html


def test_an_older_report_without_the_figures_still_renders() -> None:
    older = {k: GENERATION[k] for k in ("requested", "generated", "kept", "dropped")}
    html = _generated_section(older)
    assert "<dt>kept</dt><dd>2</dd>" in html and "keep rate" not in html
