"""The prompt artifact file: written and read back, applied before chat messages and plain
text, refused with the file and field named when broken; an SFT run's data can take its
system prompt (`data.system_prompt_from`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.prompt_artifact import (
    Exemplar,
    PromptArtifact,
    PromptArtifactError,
    apply_to_messages,
    apply_to_text,
    read_prompt_artifact,
    write_prompt_artifact,
)
from phases.data import DataConfig, DataError, prepare_data

PROMPT = PromptArtifact(
    model="builtin:tiny-llama",
    system_prompt="Reply in JSON.",
    exemplars=[Exemplar(input="Ana, 30", output='{"name": "Ana"}')],
    base_prompt="Turn it into JSON.",
    metric="exact_match",
)


def test_a_prompt_round_trips_and_applies_before_the_input(tmp_path: Path) -> None:
    path = write_prompt_artifact(PROMPT, tmp_path / "prompt.json")
    assert read_prompt_artifact(path) == PROMPT
    assert read_prompt_artifact(tmp_path) == PROMPT  # the folder holding it
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Bo"}]
    assert apply_to_messages(read_prompt_artifact(path), conversation) == [
        {"role": "system", "content": "Reply in JSON.\n\nBe brief."},
        {"role": "user", "content": "Ana, 30"},
        {"role": "assistant", "content": '{"name": "Ana"}'},
        {"role": "user", "content": "Bo"},
    ]
    assert apply_to_text(PROMPT, "Bo, 41") == 'Reply in JSON.\n\nAna, 30{"name": "Ana"}\n\nBo, 41'
    assert apply_to_messages(None, conversation) == conversation


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("{oops", "cannot read it as JSON"),
        ('{"model": "m"}', "'system_prompt' must be a string"),
        ('{"model": "m", "system_prompt": "s", "exemplars": [{"input": 1}]}', "exemplars[0]"),
    ],
)
def test_a_broken_prompt_file_names_what_is_wrong(tmp_path: Path, content: str, said: str) -> None:
    path = tmp_path / "prompt.json"
    path.write_text(content)
    with pytest.raises(PromptArtifactError, match=r"prompt\.json") as error:
        read_prompt_artifact(path)
    assert said in str(error.value)


def _chat_rows(path: Path, count: int) -> Path:
    rows = [
        {
            "messages": [
                {"role": "system", "content": "old"},
                {"role": "user", "content": f"q{i}"},
                {"role": "assistant", "content": f"a{i}"},
            ]
        }
        for i in range(count)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_sft_data_takes_the_optimized_prompt_as_its_system_message(tmp_path: Path) -> None:
    prompt = write_prompt_artifact(PROMPT, tmp_path / "prompt.json")
    data = _chat_rows(tmp_path / "chat.jsonl", 10)
    prepared = prepare_data(
        DataConfig(train=str(data), eval_fraction=0.2, system_prompt_from=str(prompt))
    )
    for row in prepared.train + prepared.eval:
        assert row["messages"][0] == {"role": "system", "content": "Reply in JSON."}
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]


def test_system_prompt_from_needs_chat_data_and_a_readable_prompt(tmp_path: Path) -> None:
    text = tmp_path / "plain.jsonl"
    text.write_text("".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(4)))
    prompt = write_prompt_artifact(PROMPT, tmp_path / "prompt.json")
    with pytest.raises(DataError, match="sets the system message of chat rows"):
        prepare_data(DataConfig(train=str(text), system_prompt_from=str(prompt)))
    with pytest.raises(DataError, match="data.system_prompt_from: prompt artifact"):
        prepare_data(DataConfig(train=str(text), system_prompt_from=str(tmp_path / "missing.json")))
