"""`compare` refuses bad flags and data in one line naming the flag, with exit code 2."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from llmfinetune_agent.cli import app

REPO = Path(__file__).resolve().parents[2]
ROWS = REPO / "configs" / "data" / "quickstart" / "train.jsonl"


def compare(*args: object):
    result = CliRunner().invoke(app, ["compare", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def test_an_unknown_metric_is_one_line_without_pydantic_noise(tiny_model_dir: Path) -> None:
    result = compare(tiny_model_dir, tiny_model_dir, "--data", ROWS, "--metrics", "rougeZ")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("--metrics: unknown metric(s) ['rougeZ']")
    assert "did you mean 'rougeL'" in result.output
    assert "validation error" not in result.output and "pydantic" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_metrics_that_name_nothing_are_refused(tiny_model_dir: Path) -> None:
    result = compare(tiny_model_dir, tiny_model_dir, "--data", ROWS, "--metrics", " , ")
    assert result.exit_code == 2, result.output
    assert "--metrics ' , ' names no metric" in result.output


def test_plain_text_data_suggests_the_flag_as_it_is_typed(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    text = tmp_path / "text.jsonl"
    text.write_text('{"text": "hello world"}\n{"text": "another line"}\n')
    result = compare(tiny_model_dir, tiny_model_dir, "--data", text)
    assert result.exit_code == 2, result.output
    assert "pass --metrics perplexity," in result.output
    assert "[" not in result.output.split("pass --metrics")[1]
