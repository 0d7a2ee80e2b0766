"""prepare_data: cleaning, the length limit, the split, the eval file, the report and outputs."""

import json
from pathlib import Path

import pytest
from data_test_files import write_rows

from phases.data import (
    DataConfig,
    DataError,
    approximate_token_count,
    data_hash,
    dataset_kind,
    prepare_data,
    read_jsonl,
    tokenizer_token_counter,
)
from phases.diagnosis.data_checks import check_leakage


def _pc_rows(n: int, start: int = 0) -> list[dict[str, str]]:
    return [
        {"prompt": f"What is {i} plus {i}?", "completion": str(2 * i)}
        for i in range(start, start + n)
    ]


def _config(path: Path, **kwargs) -> DataConfig:
    return DataConfig(train=str(path), **kwargs)


def _assert_counts_add_up(report) -> None:
    dropped = sum(report.dropped_by_reason.values())
    assert (
        report.rows_read
        == report.rows_kept + dropped + report.duplicates_removed + report.overlaps_eval
    )
    assert report.rows_kept == report.train_rows + report.eval_rows


def test_duplicates_are_removed_after_normalization_and_counted(tmp_path: Path) -> None:
    rows = _pc_rows(5) + [{"prompt": "  What is 1 plus 1?\r\n", "completion": "2 "}, _pc_rows(1)[0]]
    prepared = prepare_data(_config(write_rows(tmp_path, "d", rows, "csv"), eval_fraction=0.0))
    assert prepared.train == [
        {"prompt": r["prompt"], "completion": r["completion"]} for r in _pc_rows(5)
    ]
    assert prepared.report.duplicates_removed == 2
    _assert_counts_add_up(prepared.report)


def test_without_deduplication_copies_stay_on_one_side_of_the_split(tmp_path: Path) -> None:
    rows = _pc_rows(10) * 3
    prepared = prepare_data(
        _config(write_rows(tmp_path, "d", rows, "jsonl"), deduplicate=False, eval_fraction=0.3)
    )
    assert prepared.report.duplicates_removed == 0
    assert (len(prepared.train), len(prepared.eval)) == (21, 9)
    assert not {json.dumps(r) for r in prepared.train} & {json.dumps(r) for r in prepared.eval}


def test_rows_over_max_length_are_dropped_and_counted(tmp_path: Path) -> None:
    rows = _pc_rows(4) + [{"prompt": "word " * 30, "completion": "long"}]
    prepared = prepare_data(
        _config(write_rows(tmp_path, "d", rows, "jsonl"), max_length=20, eval_fraction=0)
    )
    report = prepared.report
    assert len(prepared.train) == 4
    assert report.dropped_by_reason["too_long"] == 1
    [dropped] = report.dropped
    assert dropped.origin.endswith("d.jsonl line 5")
    assert dropped.detail == "31 tokens, longer than max_length 20"
    # "What is 0 plus 0?\n0" -> What, is, 0, plus, 0, ?, 0
    assert report.token_stats == {"min": 7, "mean": 7.0, "p50": 7.0, "p95": 7.0, "max": 7}
    assert report.token_counter.startswith("approximate")


def test_an_injected_token_counter_is_used_and_named(tmp_path: Path) -> None:
    def count_characters(text: str) -> int:
        return len(text)

    rows = [{"text": "a" * n} for n in (10, 20, 30, 40, 200)]
    prepared = prepare_data(
        _config(write_rows(tmp_path, "t", rows, "json"), max_length=100, eval_fraction=0),
        count_tokens=count_characters,
    )
    report = prepared.report
    assert (
        report.token_counter
        == "custom: test_an_injected_token_counter_is_used_and_named.<locals>.count_characters"
    )
    assert report.dropped_by_reason["too_long"] == 1
    assert report.token_stats == {"min": 10, "mean": 25.0, "p50": 25.0, "p95": 38.5, "max": 40}


def test_preference_length_counts_prompt_and_the_longer_reply(tmp_path: Path) -> None:
    rows = [{"prompt": "a b", "chosen": "c", "rejected": "d e f g"}]
    prepared = prepare_data(_config(write_rows(tmp_path, "p", rows, "jsonl"), eval_fraction=0))
    assert prepared.report.token_stats["max"] == 2 + 4
    assert approximate_token_count("Hello, world!") == 4


def test_split_is_deterministic_and_disjoint(tmp_path: Path) -> None:
    path = write_rows(tmp_path, "d", _pc_rows(50), "jsonl")
    first = prepare_data(_config(path, eval_fraction=0.2, seed=7))
    again = prepare_data(_config(path, eval_fraction=0.2, seed=7))
    other = prepare_data(_config(path, eval_fraction=0.2, seed=8))
    assert (len(first.train), len(first.eval)) == (40, 10)
    assert (first.train, first.eval) == (again.train, again.eval)
    assert first.eval != other.eval
    assert not {r["prompt"] for r in first.train} & {r["prompt"] for r in first.eval}
    assert first.report.split == {"method": "fraction", "eval_fraction": 0.2, "seed": 7}


def test_a_small_fraction_still_holds_out_one_row_but_never_all(tmp_path: Path) -> None:
    prepared = prepare_data(
        _config(write_rows(tmp_path, "d", _pc_rows(2), "jsonl"), eval_fraction=0.01)
    )
    assert (len(prepared.train), len(prepared.eval)) == (1, 1)
    single = prepare_data(
        _config(write_rows(tmp_path, "s", _pc_rows(1), "jsonl"), eval_fraction=0.5)
    )
    assert (len(single.train), len(single.eval)) == (1, 0)
    assert "nothing is held out" in single.report.warnings[0]


def test_eval_file_rows_are_removed_from_train(tmp_path: Path) -> None:
    train = write_rows(tmp_path, "train", _pc_rows(10), "jsonl")
    held = write_rows(
        tmp_path, "eval", _pc_rows(3, start=8) + [{"prompt": "", "completion": "x"}], "csv"
    )
    prepared = prepare_data(DataConfig(train=str(train), eval=str(held), eval_fraction=0.5))
    report = prepared.report
    assert len(prepared.eval) == 3 and len(prepared.train) == 8
    assert report.overlaps_eval == 2
    assert not {r["prompt"] for r in prepared.train} & {r["prompt"] for r in prepared.eval}
    assert report.split == {"method": "eval_file", "eval_file": str(held)}
    assert report.dropped[0].origin == f"{held} line 5"
    assert [(s.role, s.rows) for s in report.sources] == [("train", 10), ("eval", 4)]
    _assert_counts_add_up(report)


def test_case_and_spacing_variants_of_eval_rows_count_as_leaks(tmp_path: Path) -> None:
    """The debugger's leakage check ignores case and spacing; the data check did not, so an
    upper-cased copy of an eval row trained on and was found only after training."""
    upper = [{k: v.upper() for k, v in r.items()} for r in _pc_rows(2)]
    spaced = [{"prompt": "What  is 2 plus 2? ", "completion": "4"}]
    train = write_rows(tmp_path, "train", _pc_rows(6) + upper + spaced, "jsonl")
    held = write_rows(tmp_path, "eval", _pc_rows(3), "jsonl")
    prepared = prepare_data(DataConfig(train=str(train), eval=str(held)))
    assert prepared.report.overlaps_eval == 3 + 2 + 1  # rows 0-2, upper-cased twins, spacing
    assert check_leakage(prepared.train, prepared.eval, None) is None

    variants = _pc_rows(20) + [{k: v.upper() for k, v in r.items()} for r in _pc_rows(20)]
    split = prepare_data(
        _config(write_rows(tmp_path, "d", variants, "jsonl"), eval_fraction=0.25, seed=3)
    )
    assert (len(split.train), len(split.eval)) == (30, 10)  # 5 of 20 pairs, both rows of each
    assert check_leakage(split.train, split.eval, None) is None


def test_eval_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    train = write_rows(tmp_path, "train", _pc_rows(3), "jsonl")
    held = write_rows(tmp_path, "eval", [{"text": "t"}], "jsonl")
    with pytest.raises(DataError, match="eval.jsonl holds 'text' data"):
        prepare_data(DataConfig(train=str(train), eval=str(held)))


def test_zero_usable_rows_says_why(tmp_path: Path) -> None:
    rows = [{"instruction": "", "output": "a"}, {"instruction": "b", "output": "  "}]
    path = write_rows(tmp_path, "empty", rows, "csv")
    with pytest.raises(DataError) as info:
        prepare_data(_config(path))
    message = str(info.value)
    assert (
        f"{path}: no usable rows: 2 rows read and all were dropped (2 empty required field)"
        in message
    )
    assert f"{path} line 2: 'instruction' is empty" in message
    long_rows = write_rows(tmp_path, "long", [{"text": "x " * 50}], "jsonl")
    with pytest.raises(DataError, match="longer than max_length.*Raise data.max_length"):
        prepare_data(_config(long_rows, max_length=10))


def test_file_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("prompt,completion\n", encoding="utf-8")
    with pytest.raises(DataError, match="header.csv: no rows found"):
        prepare_data(_config(path))


def test_directory_of_mixed_formats_of_one_kind(tmp_path: Path) -> None:
    write_rows(tmp_path, "a", [{"instruction": "i", "output": "o"}], "csv")
    write_rows(tmp_path, "b", _pc_rows(2), "json")
    prepared = prepare_data(_config(tmp_path, eval_fraction=0))
    assert (prepared.kind, prepared.format) == ("prompt_completion", "alpaca+prompt_completion")
    assert [Path(s.path).name for s in prepared.report.sources] == ["a.csv", "b.json"]


def test_outputs_report_and_hash(tmp_path: Path) -> None:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"q{i}"},
                {"role": "assistant", "content": f"a{i}"},
            ]
        }
        for i in range(10)
    ]
    path = write_rows(tmp_path, "chat", rows + [{"messages": rows[0]["messages"][:1]}], "jsonl")
    out = tmp_path / "out"
    prepared = prepare_data(_config(path, eval_fraction=0.2), output_dir=out)
    report = prepared.report
    assert read_jsonl(out / "train.jsonl") == prepared.train
    assert read_jsonl(out / "eval.jsonl") == prepared.eval
    assert dataset_kind(prepared.train) == "chat"
    saved = json.loads((out / "data_report.json").read_text(encoding="utf-8"))
    assert saved["outputs"] == {
        k: str(out / f)
        for k, f in [
            ("train", "train.jsonl"),
            ("eval", "eval.jsonl"),
            ("report", "data_report.json"),
        ]
    }
    train_text = (out / "train.jsonl").read_text(encoding="utf-8")
    eval_text = (out / "eval.jsonl").read_text(encoding="utf-8")
    assert saved["data_hash"] == report.data_hash == data_hash(train_text, eval_text)
    assert saved["rows_dropped"] == 1 and saved["dropped_by_reason"]["role_order"] == 1
    assert prepare_data(_config(path, eval_fraction=0.2)).report.data_hash == report.data_hash
    assert prepare_data(_config(path, eval_fraction=0.3)).report.data_hash != report.data_hash
    summary = "\n".join(report.summary_lines())
    assert "Read 11 rows" in summary and "Kept 10: 8 train, 2 eval" in summary
    assert "1 wrong role order" in summary and f"{path} line 11" in summary


def test_tokenizer_counter_counts_real_tokens(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    word_level = Tokenizer(models.WordLevel({"[UNK]": 0, "Paris": 1}, unk_token="[UNK]"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=word_level, name_or_path="word-level")
    count = tokenizer_token_counter(tokenizer)
    text = "Alice is 30 and lives in Paris."
    assert count(text) == 8
    rows = [{"text": text}, {"text": text + " " + text}]
    path = write_rows(tmp_path, "t", rows, "jsonl")
    prepared = prepare_data(_config(path, max_length=10, eval_fraction=0), count_tokens=count)
    assert prepared.report.token_counter == "tokenizer word-level"
    assert prepared.train == [{"text": text}]
    assert prepared.report.dropped[0].detail == "16 tokens, longer than max_length 10"


def test_chat_rows_are_counted_through_the_chat_template(tmp_path: Path, tiny_model_dir) -> None:
    """max_length applies to what the trainer sees: role markers and end tokens count, so a
    row whose text fits but whose rendering does not is dropped, not silently truncated."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    count = tokenizer_token_counter(tokenizer)
    short = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    long = [
        {"role": "user", "content": "Anna is 31 and lives in Oslo."},
        {"role": "assistant", "content": '{"name": "Anna", "age": 31, "city": "Oslo"}'},
    ]
    text_tokens = count("\n".join(m["content"] for m in long))
    rendered = tokenizer.apply_chat_template(long, tokenize=True, return_dict=True)
    template_tokens = len(rendered["input_ids"])
    assert count.count_chat(long) == template_tokens > text_tokens
    path = write_rows(tmp_path, "c", [{"messages": short}, {"messages": long}], "jsonl")
    config = _config(path, max_length=template_tokens - 1, eval_fraction=0)
    prepared = prepare_data(config, count_tokens=count)
    assert "chat template" in prepared.report.token_counter
    assert prepared.train == [{"messages": short}]
    (dropped,) = prepared.report.dropped
    assert (
        dropped.detail == f"{template_tokens} tokens, longer than max_length {template_tokens - 1}"
    )
