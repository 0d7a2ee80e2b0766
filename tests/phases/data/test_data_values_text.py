"""Values stay text: a prompt or completion that looks like a date, a number, a boolean or null
is read, normalized and written exactly as the file spells it."""

import json
from pathlib import Path

from phases.data import DataConfig, load_records, normalize, prepare_data

LOOKALIKES = ["2024-01-05", "007", "true", "null", "1e3", "3.10", "False", "2024-01-05 10:00"]


def _csv(path: Path, completions: list[str]) -> Path:
    lines = ["prompt,completion"] + [f"0{i}1,{c}" for i, c in enumerate(completions)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_cells_are_the_strings_as_written(tmp_path: Path) -> None:
    path = _csv(tmp_path / "t.csv", LOOKALIKES)
    examples = normalize(load_records(path)).examples
    assert [e.record["completion"] for e in examples] == LOOKALIKES
    assert [e.record["prompt"] for e in examples][:2] == ["001", "011"]


def test_json_numbers_and_booleans_in_text_fields_become_their_written_text(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"prompt": 7, "completion": 1.50}\n'
        '{"prompt": "b", "completion": 1e3}\n'
        '{"prompt": "c", "completion": -0}\n'
        '{"prompt": "d", "completion": true}\n'
        '{"prompt": "e", "completion": false}\n'
        '{"prompt": "f", "completion": "null"}\n'
        '{"prompt": "g", "completion": null}\n',
        encoding="utf-8",
    )
    normalized = normalize(load_records(path))
    assert [e.record for e in normalized.examples] == [
        {"prompt": "7", "completion": "1.50"},
        {"prompt": "b", "completion": "1e3"},
        {"prompt": "c", "completion": "-0"},
        {"prompt": "d", "completion": "true"},
        {"prompt": "e", "completion": "false"},
        {"prompt": "f", "completion": "null"},
    ]
    [dropped] = normalized.dropped  # JSON null is a missing value, not the text "null"
    assert (dropped.origin, dropped.reason) == (f"{path} line 7", "empty_field")


def test_a_number_inside_a_chat_keeps_its_text(tmp_path: Path) -> None:
    turns = (
        '[{"role": "user", "content": "Pi to two places?"}, {"role": "assistant", "content": 3.10}]'
    )
    path = tmp_path / "chat.json"
    path.write_text(f'[{{"messages": {turns}}}]', encoding="utf-8")
    [example] = normalize(load_records(path)).examples
    assert example.record["messages"][-1] == {"role": "assistant", "content": "3.10"}


def test_prepared_files_hold_the_exact_text(tmp_path: Path) -> None:
    path = _csv(tmp_path / "t.csv", LOOKALIKES * 2)
    prepared = prepare_data(
        DataConfig(train=str(path), eval_fraction=0.25, deduplicate=False),
        output_dir=tmp_path / "out",
    )
    written = [
        json.loads(line)
        for name in ("train.jsonl", "eval.jsonl")
        for line in (tmp_path / "out" / name).read_text(encoding="utf-8").splitlines()
    ]
    assert sorted(r["completion"] for r in written) == sorted(LOOKALIKES * 2)
    assert all(type(r["completion"]) is str for r in written)
    assert prepared.train + prepared.eval == written
