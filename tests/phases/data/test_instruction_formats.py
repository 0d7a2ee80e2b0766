"""Instruction and tool-calling datasets from local files: each format is detected and
normalized by `finetune-agent data inspect`, from JSON, JSONL, CSV, Parquet or a
`datasets.save_to_disk` folder, with the same validation report as the other formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmfinetune_agent.cli import app
from phases.data import DataConfig, prepare_data

CALC = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate arithmetic.",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}},
    },
}


def _tool_row(a: int, b: int) -> dict[str, Any]:
    call = {
        "type": "function",
        "function": {"name": "calculator", "arguments": {"expression": f"{a} + {b}"}},
    }
    return {
        "messages": [
            {"role": "user", "content": f"What is {a} plus {b}?"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "name": "calculator", "content": str(a + b)},
            {"role": "assistant", "content": f"It is {a + b}."},
        ],
        "tools": [CALC],
    }


def _xlam_row(city: str) -> dict[str, Any]:
    tools = [
        {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {
                "city": {"type": "str", "description": "The city."},
                "units": {"type": "str, optional", "description": "C or F.", "default": "C"},
            },
        }
    ]
    answers = [{"name": "get_weather", "arguments": {"city": city}}]
    return {
        "id": city,
        "query": f"Weather in {city}?",
        "tools": json.dumps(tools),
        "answers": json.dumps(answers),
    }


def _oasst_rows() -> list[dict[str, Any]]:
    """Two trees: a prompt with two ranked answers, one answered by a follow-up prompt."""
    rows = []
    for t in range(2):
        rows += [
            {
                "message_id": f"q{t}",
                "parent_id": None,
                "role": "prompter",
                "text": f"Question {t}?",
                "rank": None,
            },
            {
                "message_id": f"a{t}",
                "parent_id": f"q{t}",
                "role": "assistant",
                "text": f"Best answer {t}.",
                "rank": 0,
            },
            {
                "message_id": f"b{t}",
                "parent_id": f"q{t}",
                "role": "assistant",
                "text": f"Other answer {t}.",
                "rank": 1,
            },
            {
                "message_id": f"f{t}",
                "parent_id": f"a{t}",
                "role": "prompter",
                "text": "And then?",
                "rank": None,
            },
            {
                "message_id": f"g{t}",
                "parent_id": f"f{t}",
                "role": "assistant",
                "text": f"Then {t}.",
                "rank": 0,
            },
        ]
    return rows


def _oasst_tree(t: int) -> dict[str, Any]:
    reply = {
        "role": "assistant",
        "text": f"Hello {t}!",
        "replies": [{"role": "prompter", "text": "Thanks.", "replies": []}],
    }
    return {
        "message_tree_id": f"tree{t}",
        "tree_state": "ready_for_export",
        "prompt": {"role": "prompter", "text": f"Hi {t}", "replies": [reply]},
    }


# format -> (rows, expected kind, expected first normalized record)
FORMATS: dict[str, tuple[list[dict[str, Any]], str, dict[str, Any]]] = {
    "alpaca": (
        [{"instruction": f"Double {i}.", "input": "", "output": str(2 * i)} for i in range(4)],
        "prompt_completion",
        {"prompt": "Double 0.", "completion": "0"},
    ),
    "dolly": (
        [
            {
                "instruction": f"Summarize note {i}.",
                "context": f"Note {i} says hi.",
                "response": f"Hi {i}.",
                "category": "summarization",
            }
            for i in range(4)
        ],
        "prompt_completion",
        {"prompt": "Summarize note 0.\n\nNote 0 says hi.", "completion": "Hi 0."},
    ),
    "sharegpt": (
        [
            {
                "conversations": [
                    {"from": "human", "value": f"Hey {i}"},
                    {"from": "gpt", "value": f"Yo {i}"},
                ]
            }
            for i in range(4)
        ],
        "chat",
        {
            "messages": [
                {"role": "user", "content": "Hey 0"},
                {"role": "assistant", "content": "Yo 0"},
            ]
        },
    ),
    "ultrachat": (
        [
            {"id": str(i), "data": [f"Q{i}", f"A{i}", f"Q{i} again", f"A{i} again", "unanswered"]}
            for i in range(4)
        ],
        "chat",
        {
            "messages": [
                {"role": "user", "content": "Q0"},
                {"role": "assistant", "content": "A0"},
                {"role": "user", "content": "Q0 again"},
                {"role": "assistant", "content": "A0 again"},
            ]
        },
    ),
    "oasst": (
        _oasst_rows(),
        "chat",
        {
            "messages": [
                {"role": "user", "content": "Question 0?"},
                {"role": "assistant", "content": "Best answer 0."},
                {"role": "user", "content": "And then?"},
                {"role": "assistant", "content": "Then 0."},
            ]
        },
    ),
    "oasst_trees": (
        [_oasst_tree(t) for t in range(3)],
        "chat",
        {
            "messages": [
                {"role": "user", "content": "Hi 0"},
                {"role": "assistant", "content": "Hello 0!"},
            ]
        },
    ),
    "tool_calling": ([_tool_row(a, 7) for a in range(4)], "tool_chat", _tool_row(0, 7)),
    "xlam": (
        [_xlam_row(c) for c in ("Oslo", "Lima", "Rome", "Kyiv")],
        "tool_chat",
        {
            "messages": [
                {"role": "user", "content": "Weather in Oslo?"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": {"city": "Oslo"}},
                        }
                    ],
                },
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "Current weather in a city.",
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "city": {"type": "string", "description": "The city."},
                                "units": {"type": "string", "description": "C or F."},
                            },
                            "required": ["city"],
                        },
                    },
                }
            ],
        },
    ),
}
CONTAINERS = ("jsonl", "json", "csv", "parquet", "saved")


def write_container(directory: Path, rows: list[dict[str, Any]], container: str) -> Path:
    """The rows as a file (or folder) of `container`; CSV cells hold lists and objects as JSON."""
    if container == "jsonl":
        path = directory / "data.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif container == "json":
        path = directory / "data.json"
        path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    elif container == "csv":
        import csv

        path = directory / "data.csv"
        columns = list(dict.fromkeys(k for r in rows for k in r))
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()}
                )
    elif container == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = directory / "data.parquet"
        pq.write_table(pa.Table.from_pylist(_arrow_safe(rows)), path)
    else:
        from datasets import Dataset

        path = directory / "saved"
        Dataset.from_list(_arrow_safe(rows)).save_to_disk(str(path))
    return path


def _arrow_safe(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nested objects whose keys differ between rows (tool arguments and schemas) are kept as
    JSON text in a column, as hub exports of these datasets do; Arrow would fill the missing
    keys with nulls otherwise."""
    nested = {"tools", "messages", "prompt"}
    return [
        {k: json.dumps(v) if k in nested and not isinstance(v, str) else v for k, v in r.items()}
        for r in rows
    ]


def _inspect(path: Path, *extra: str) -> str:
    result = CliRunner().invoke(app, ["data", "inspect", str(path), "--eval-fraction", "0", *extra])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("name", list(FORMATS))
def test_each_format_is_detected_and_normalized_by_data_inspect(
    tmp_path: Path, name: str, container: str
) -> None:
    rows, kind, first = FORMATS[name]
    path = write_container(tmp_path, rows, container)
    output = _inspect(path)
    assert output.splitlines()[0] == f"format: {name} (normalized as {kind})"
    prepared = prepare_data(DataConfig(train=str(path), eval_fraction=0))
    assert (prepared.format, prepared.kind) == (name, kind)
    assert prepared.train[0] == first
    report = prepared.report
    assert report.rows_read == report.rows_kept + report.rows_dropped


def test_openassistant_trees_become_one_conversation_per_path(tmp_path: Path) -> None:
    rows = _oasst_rows() + [
        {"message_id": "x", "parent_id": "gone", "role": "assistant", "text": "Orphan.", "rank": 0},
        {
            "message_id": "q9",
            "parent_id": None,
            "role": "prompter",
            "text": "Nobody answers?",
            "rank": None,
        },
        {
            "message_id": "d9",
            "parent_id": None,
            "role": "prompter",
            "text": "Deleted",
            "deleted": True,
        },
        {
            "message_id": "e9",
            "parent_id": "d9",
            "role": "assistant",
            "text": "Under it.",
            "rank": 0,
        },
    ]
    path = write_container(tmp_path, rows, "jsonl")
    prepared = prepare_data(DataConfig(train=str(path), eval_fraction=0))
    conversations = [[m["content"] for m in r["messages"]] for r in prepared.train]
    # each tree: the ranked-first path (q, a, f, g) and the second answer (q, b)
    assert conversations[:2] == [
        ["Question 0?", "Best answer 0.", "And then?", "Then 0."],
        ["Question 0?", "Other answer 0."],
    ]
    assert len(conversations) == 4
    reasons = {d.detail for d in prepared.report.dropped}
    assert reasons == {
        "parent_id 'gone' is not in the file",
        "the path has no assistant reply",
        "message d9 is marked deleted",
    }
    assert prepared.report.rows_read == 4 + 3


def test_bad_tool_rows_are_dropped_with_their_reason(tmp_path: Path) -> None:
    good = _tool_row(1, 2)
    unknown_tool = _tool_row(3, 4)
    unknown_tool["messages"][1]["tool_calls"][0]["function"]["name"] = "weather"
    no_result = _tool_row(5, 6)
    del no_result["messages"][2]
    bad_arguments = _tool_row(7, 8)
    bad_arguments["messages"][1]["tool_calls"][0]["function"]["arguments"] = "{not json"
    path = write_container(tmp_path, [good, unknown_tool, no_result, bad_arguments], "jsonl")
    prepared = prepare_data(DataConfig(train=str(path), eval_fraction=0))
    assert len(prepared.train) == 1
    details = [d.detail for d in prepared.report.dropped]
    assert details == [
        "messages[1] calls tool 'weather', which is not in the row's tools (calculator)",
        "messages[2] follows a tool call, which needs its result first",
        "'messages[1].tool_calls[0].arguments' is not valid JSON (column 2: Expecting property name enclosed in double quotes)",
    ]
    assert [d.origin.rsplit(" ", 1)[1] for d in prepared.report.dropped] == ["2", "3", "4"]


def test_a_parquet_number_in_a_text_field_is_its_text(tmp_path: Path) -> None:
    rows = [
        {"instruction": "Seven.", "output": 7, "score": 0.5},
        {"instruction": "Twelve.", "output": 12, "score": 1.5},
    ]
    path = write_container(tmp_path, rows, "parquet")
    prepared = prepare_data(DataConfig(train=str(path), eval_fraction=0))
    assert [r["completion"] for r in prepared.train] == ["7", "12"]
    assert prepared.report.sources[0].rows == 2


def test_a_saved_dataset_dict_is_read_from_its_train_split(tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    rows = FORMATS["dolly"][0]
    DatasetDict(
        {"train": Dataset.from_list(rows), "test": Dataset.from_list(rows[:1])}
    ).save_to_disk(str(tmp_path / "dolly"))
    assert "Kept 4: 4 train" in _inspect(tmp_path / "dolly")
    DatasetDict({"a": Dataset.from_list(rows), "b": Dataset.from_list(rows)}).save_to_disk(
        str(tmp_path / "two")
    )
    result = CliRunner().invoke(app, ["data", "inspect", str(tmp_path / "two")])
    assert result.exit_code == 2
    assert "the saved dataset has splits ['a', 'b'] and none is 'train'" in result.output


def test_a_file_that_is_not_parquet_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_text("instruction,output\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["data", "inspect", str(path)])
    assert result.exit_code == 2
    assert f"{path}: cannot read it as Parquet" in result.output
