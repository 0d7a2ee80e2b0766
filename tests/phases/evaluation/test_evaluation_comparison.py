"""compare_models: base vs tuned, threshold checks, the cached base result, report files."""

import json
from pathlib import Path

import pytest

from models.config import ModelConfig
from phases.evaluation import EvaluationConfig, compare_models
from phases.evaluation.comparison import base_cache_key

CONFIG = EvaluationConfig(
    metrics=["rougeL", "exact_match", "perplexity"],
    thresholds={"rougeL": 0.0, "perplexity": 1.0},  # perplexity is a maximum: 1.0 must fail
    max_new_tokens=8,
    batch_size=4,
)


@pytest.fixture(scope="module")
def tuned_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with perturbed MLP weights, standing in for a fine-tuned model."""
    import torch

    from models.loading import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(str(tiny_model_dir))
    torch.manual_seed(1)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.mlp.down_proj.weight.add_(torch.randn_like(layer.mlp.down_proj.weight) * 0.05)
    target = tmp_path_factory.mktemp("tuned")
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def _log_history(path: Path) -> Path:
    history = [{"step": s, "loss": 3.0 / s} for s in (1, 2, 3, 4)]
    history += [{"step": 2, "eval_loss": 2.0}, {"step": 4, "eval_loss": 1.5}]
    path.write_text(json.dumps({"log_history": history}), encoding="utf-8")
    return path


def test_compare_reports_and_reuses_cached_base(
    tiny_model_dir: Path, tuned_dir: Path, prompt_completion_eval: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first = compare_models(
        CONFIG,
        base=str(tiny_model_dir),
        tuned=tuned_dir,
        eval_path=prompt_completion_eval,
        output_dir=tmp_path / "first",
        cache_dir=cache,
        log_history_path=_log_history(tmp_path / "trainer_state.json"),
    )
    assert not first.base_from_cache
    (entry,) = (cache / "eval_cache").glob("*.json")
    stamp = entry.stat().st_mtime_ns
    assert first.base is not None and first.base.metrics != first.tuned.metrics
    for name, delta in first.deltas.items():
        assert delta == pytest.approx(first.tuned.metrics[name] - first.base.metrics[name])
    assert first.thresholds["rougeL"].passed and not first.thresholds["perplexity"].passed
    assert not first.passed

    second = compare_models(
        CONFIG.model_copy(update={"thresholds": {"rougeL": 0.0}}),  # thresholds: same cache entry
        base=ModelConfig(name_or_path=str(tiny_model_dir)),
        tuned=tuned_dir,
        eval_path=prompt_completion_eval,
        output_dir=tmp_path / "second",
        cache_dir=cache,
    )
    assert second.base_from_cache and second.passed
    assert second.base == first.base
    assert entry.stat().st_mtime_ns == stamp and len(list(cache.glob("eval_cache/*"))) == 1
    assert second.tuned.metrics == first.tuned.metrics

    _check_report_files(tmp_path / "first", with_plot=True)
    first_md = (tmp_path / "first" / "evaluation_report.md").read_text()
    assert "**Result: FAILED**: perplexity" in first_md  # the missed threshold is said first
    _check_report_files(tmp_path / "second", with_plot=False)


def _check_report_files(directory: Path, *, with_plot: bool) -> None:
    saved = json.loads((directory / "evaluation_report.json").read_text())
    assert set(saved) >= {"base", "tuned", "deltas", "checks", "passed", "examples"}
    examples = saved["examples"]
    assert [e["which"] for e in examples] == ["worst"] * 2 + ["best"] * 2 + ["random"] * 2
    for example in examples:  # each row carries both models' answers to the same input
        row = example["row"]
        assert example["base_output"] == saved["base"]["predictions"][row]["got"]
        assert example["tuned_output"] == saved["tuned"]["predictions"][row]["got"]
    markdown = (directory / "evaluation_report.md").read_text()
    for section in (
        "## Metrics",
        "| rougeL |",
        "## Thresholds",
        "## Examples",
        "Input:",
        "Reference:",
        "Base output:",
        "Tuned output:",
        "## Loss",
    ):
        assert section in markdown, section
    assert '{"name": "Alice", "age": 30}' in markdown
    plot = directory / "loss.png"
    assert plot.exists() == with_plot
    if with_plot:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "no loss plot" in markdown


def test_cache_key_follows_data_and_settings(tiny_model_dir: Path, jsonl_file) -> None:
    eval_path = jsonl_file([{"prompt": "a", "completion": "b"}])
    key = base_cache_key(str(tiny_model_dir), eval_path, CONFIG)
    assert key == base_cache_key(ModelConfig(name_or_path=str(tiny_model_dir)), eval_path, CONFIG)
    assert key != base_cache_key(
        str(tiny_model_dir), eval_path, CONFIG.model_copy(update={"max_new_tokens": 9})
    )
    eval_path.write_text('{"prompt": "a", "completion": "c"}\n')
    assert key != base_cache_key(str(tiny_model_dir), eval_path, CONFIG)
