"""Format detection and normalization: every format in every container, mapping, overrides,
and the rows each format drops with their reason."""

from pathlib import Path

import pytest
from data_test_files import CONTAINERS, write_rows

from phases.data import DataError, dataset_kind, detect_format, load_records, normalize

CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
]
# format -> (raw rows, the normalized first row, kind)
SAMPLES = {
    "alpaca": (
        [
            {"instruction": "Add the numbers.", "input": "2 3", "output": "5"},
            {"instruction": "Say hi.", "input": "", "output": " hi "},
        ],
        [
            {"prompt": "Add the numbers.\n\n2 3", "completion": "5"},
            {"prompt": "Say hi.", "completion": "hi"},
        ],
        "prompt_completion",
    ),
    "prompt_completion": (
        [{"prompt": "Q: 2+2?", "completion": "4"}],
        [{"prompt": "Q: 2+2?", "completion": "4"}],
        "prompt_completion",
    ),
    "messages": ([{"messages": CHAT}], [{"messages": CHAT}], "chat"),
    "sharegpt": (
        [
            {
                "conversations": [
                    {"from": "system", "value": "Be brief."},
                    {"from": "human", "value": "Capital of France?"},
                    {"from": "gpt", "value": "Paris."},
                ]
            }
        ],
        [{"messages": CHAT}],
        "chat",
    ),
    "preference": (
        [{"prompt": "Pick a color", "chosen": "Blue.", "rejected": "I refuse."}],
        [{"prompt": "Pick a color", "chosen": "Blue.", "rejected": "I refuse."}],
        "preference",
    ),
    "text": ([{"text": "Once upon a time."}], [{"text": "Once upon a time."}], "text"),
}


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("fmt", list(SAMPLES))
def test_every_format_is_detected_and_normalized_in_every_container(
    tmp_path: Path, fmt: str, container: str
) -> None:
    rows, expected, kind = SAMPLES[fmt]
    path = write_rows(tmp_path, "train", rows, container)
    normalized = normalize(load_records(path))
    assert normalized.format == fmt
    assert normalized.kind == kind
    assert [e.record for e in normalized.examples] == expected
    assert normalized.dropped == []


@pytest.mark.parametrize("container", CONTAINERS)
def test_preference_with_chat_replies_takes_the_final_assistant_message(
    tmp_path: Path, container: str
) -> None:
    user = {"role": "user", "content": "Pick a color"}
    rows = [
        {
            "chosen": [user, {"role": "assistant", "content": "Blue."}],
            "rejected": [user, {"role": "assistant", "content": "No."}],
        }
    ]
    normalized = normalize(load_records(write_rows(tmp_path, "prefs", rows, container)))
    assert normalized.format == "preference"
    assert normalized.examples[0].record == {
        "prompt": "Pick a color",
        "chosen": "Blue.",
        "rejected": "No.",
    }


def test_detect_format_precedence_and_optional_columns() -> None:
    assert detect_format(["prompt", "chosen", "rejected"]) == "preference"
    assert detect_format(["prompt", "completion", "text"]) == "prompt_completion"
    assert detect_format(["messages", "text"]) == "messages"
    assert detect_format(["instruction", "output"]) == "alpaca"
    assert detect_format(["conversations", "id"]) == "sharegpt"
    assert detect_format(["text", "id"]) == "text"


def test_unrecognized_columns_list_what_was_found_and_what_is_expected(tmp_path: Path) -> None:
    path = write_rows(tmp_path, "odd", [{"question": "a", "answer": "b"}], "csv")
    with pytest.raises(DataError) as info:
        normalize(load_records(path))
    message = str(info.value)
    assert "odd.csv" in message
    assert "(answer, question)" in message
    assert "alpaca (instruction, output, optional input)" in message
    assert "prompt_completion (prompt, completion)" in message
    assert "data.columns" in message


def test_column_mapping_applies_before_detection(tmp_path: Path) -> None:
    path = write_rows(tmp_path, "qa", [{"question": "2+2?", "answer": "4", "id": "1"}], "jsonl")
    normalized = normalize(
        load_records(path), columns={"prompt": "question", "completion": "answer"}
    )
    assert normalized.format == "prompt_completion"
    assert normalized.examples[0].record == {"prompt": "2+2?", "completion": "4"}


def test_column_mapping_to_a_missing_column_names_file_and_columns(tmp_path: Path) -> None:
    path = write_rows(tmp_path, "qa", [{"question": "2+2?", "reply": "4"}], "jsonl")
    with pytest.raises(DataError) as info:
        normalize(load_records(path), columns={"prompt": "question", "completion": "answer"})
    message = str(info.value)
    assert "qa.jsonl" in message and "'answer'" in message and "question, reply" in message


def test_column_mapping_with_an_unknown_standard_name_is_refused(tmp_path: Path) -> None:
    path = write_rows(tmp_path, "qa", [{"prompt": "a", "completion": "b"}], "jsonl")
    with pytest.raises(DataError, match=r"unknown standard name\(s\) \['answer'\]"):
        normalize(load_records(path), columns={"answer": "completion"})


def test_explicit_format_overrides_detection(tmp_path: Path) -> None:
    rows = [{"prompt": "p", "completion": "c", "text": "rendered p c"}]
    path = write_rows(tmp_path, "both", rows, "json")
    assert normalize(load_records(path)).format == "prompt_completion"
    forced = normalize(load_records(path), format="text")
    assert (forced.format, forced.kind) == ("text", "text")
    assert forced.examples[0].record == {"text": "rendered p c"}


def test_forced_format_without_its_columns_says_which_are_missing(tmp_path: Path) -> None:
    path = write_rows(tmp_path, "pc", [{"prompt": "p", "completion": "c"}], "csv")
    with pytest.raises(DataError) as info:
        normalize(load_records(path), format="alpaca")
    message = str(info.value)
    assert "pc.csv" in message and "missing instruction, output" in message
    assert "completion, prompt" in message


BAD_CHATS = {
    "ends_with_user": ([{"role": "user", "content": "hi"}], "role_order", "must end with"),
    "assistant_first": (
        [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}],
        "role_order",
        "messages[0] is a 'assistant' message where 'user' was expected",
    ),
    "two_users": (
        [
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"},
        ],
        "role_order",
        "messages[1]",
    ),
    "late_system": (
        [
            {"role": "user", "content": "a"},
            {"role": "system", "content": "s"},
            {"role": "assistant", "content": "c"},
        ],
        "role_order",
        "messages[1] is a 'system'",
    ),
    "non_string": (
        [{"role": "user", "content": {"text": "a"}}, {"role": "assistant", "content": "c"}],
        "invalid_value",
        "messages[0].content' is dict",
    ),
    "unknown_role": (
        [{"role": "tool", "content": "x"}, {"role": "assistant", "content": "c"}],
        "invalid_value",
        "messages[0].role is 'tool'",
    ),
    "empty_reply": (
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "  "}],
        "empty_field",
        "messages[1] (assistant) has empty content",
    ),
    "bad_json": ("[{'role': 'user'}]", "invalid_value", "not valid JSON"),
}


@pytest.mark.parametrize("case", list(BAD_CHATS))
def test_bad_chat_rows_are_dropped_with_their_reason(tmp_path: Path, case: str) -> None:
    messages, reason, detail = BAD_CHATS[case]
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    path = write_rows(tmp_path, "chat", [good, {"messages": messages}], "jsonl")
    normalized = normalize(load_records(path))
    assert len(normalized.examples) == 1
    [dropped] = normalized.dropped
    assert dropped.origin == f"{path} line 2"
    assert dropped.reason == reason
    assert detail in dropped.detail


def test_sharegpt_drops_an_empty_leading_system_turn_and_maps_roles(tmp_path: Path) -> None:
    turns = [
        {"from": "system", "value": ""},
        {"from": "human", "value": "q"},
        {"from": "gpt", "value": "a"},
    ]
    path = write_rows(tmp_path, "sg", [{"conversations": turns}], "json")
    [example] = normalize(load_records(path)).examples
    assert example.record["messages"] == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a"},
    ]


def test_row_level_problems_in_other_formats(tmp_path: Path) -> None:
    rows = [
        {"instruction": "ok", "output": "fine"},
        {"instruction": "", "output": "x"},
        {"instruction": "object", "output": {"n": 42}},
        {"instruction": "bad", "output": "broken \ufffd text"},
    ]
    path = write_rows(tmp_path, "alp", rows, "json")
    normalized = normalize(load_records(path))
    assert [e.record for e in normalized.examples] == [{"prompt": "ok", "completion": "fine"}]
    assert [(d.reason, d.detail) for d in normalized.dropped][:2] == [
        ("empty_field", "'instruction' is empty"),
        ("invalid_value", "'output' is dict, expected text"),
    ]
    assert normalized.dropped[2].reason == "invalid_value"
    assert [d.origin.rsplit(" ", 1)[1] for d in normalized.dropped] == [
        "6",
        "10",
        "16",
    ]  # "[" then 4 lines per object, 6 for the one holding an object


def test_identical_chosen_and_rejected_are_dropped(tmp_path: Path) -> None:
    path = write_rows(
        tmp_path, "p", [{"prompt": "p", "chosen": "same", "rejected": "same"}], "jsonl"
    )
    [dropped] = normalize(load_records(path)).dropped
    assert dropped.detail == "'chosen' and 'rejected' are identical"


def test_files_of_different_kinds_in_one_directory_are_refused(tmp_path: Path) -> None:
    write_rows(tmp_path, "a", [{"prompt": "p", "completion": "c"}], "jsonl")
    write_rows(tmp_path, "b", [{"text": "t"}], "jsonl")
    with pytest.raises(DataError) as info:
        normalize(load_records(tmp_path))
    assert "a.jsonl: prompt_completion" in str(info.value) and "b.jsonl: text -> text" in str(
        info.value
    )


def test_dataset_kind_of_normalized_records() -> None:
    assert dataset_kind([{"messages": CHAT}]) == "chat"
    assert dataset_kind([{"prompt": "p", "completion": "c"}]) == "prompt_completion"
    assert dataset_kind([{"prompt": "p", "chosen": "a", "rejected": "b"}]) == "preference"
    assert dataset_kind([{"text": "t"}]) == "text"
    with pytest.raises(DataError, match="record 2 has keys"):
        dataset_kind([{"text": "t"}, {"prompt": "p", "completion": "c"}])
    with pytest.raises(DataError, match="empty"):
        dataset_kind([])
