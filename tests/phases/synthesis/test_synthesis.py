"""Synthesis: parsing, every filter with its reason, early stop on a weak generator, prompt
variety, RAG context and merging. The generator here replays fixed replies so each filter's
verdict is known; real models are exercised in tests/llmfinetune_agent/test_generation_agents.py.
"""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from phases.synthesis import (
    DataGenerationConfig,
    GenerationError,
    generate_examples,
    infer_profile,
    merge_training_data,
    parse_example,
    quality_score,
)
from phases.synthesis.filters import LabelRule, format_problem


def chat(user: str, answer: str) -> dict:
    return {
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    }


def person(
    name: str, age: int, city: str, template: str = "{n} is {a} years old and lives in {c}."
) -> dict:
    sentence = template.format(n=name, a=age, c=city)
    return chat(sentence, json.dumps({"name": name, "age": age, "city": city}))


SEEDS = [
    person("Hana", 43, "Madrid"),
    person("Kenji", 70, "Berlin", "At {a}, {n} calls {c} home."),
    person("Omar", 55, "Lima", "{n} ({a}) is based in {c}."),
    person("Lena", 31, "Oslo", "{n}, aged {a}, works in {c}."),
]
EVAL = [person("Priya", 28, "Delhi")]


def reply(record: dict) -> str:
    return f"Input: {record['messages'][0]['content']}\nOutput: {record['messages'][1]['content']}"


class Replay:
    """A generator that answers with fixed replies in order, recording what it was asked."""

    def __init__(self, replies: list[str]):
        self.replies, self.prompts, self.temperatures = list(replies), [], []

    def __call__(self, prompts: list, temperature: float) -> list[str]:
        self.prompts += prompts
        self.temperatures.append(temperature)
        return [self.replies.pop(0) if self.replies else "nothing" for _ in prompts]


def test_parse_example_reads_labels_and_stops_at_a_second_example() -> None:
    record, why = parse_example(
        'Sure!\nInput: Bob is 3.\nOutput: {"a": 1}\nInput: next', "chat", "Be brief."
    )
    assert why == "" and record == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Bob is 3."},
            {"role": "assistant", "content": '{"a": 1}'},
        ]
    }
    assert parse_example("Input: only a question", "prompt_completion") == (
        None,
        "no 'Output:' field",
    )
    record, _ = parse_example("Input: q\nChosen: good\nRejected: bad", "preference")
    assert record == {"prompt": "q", "chosen": "good", "rejected": "bad"}


def test_profile_infers_json_keys_lengths_and_extraction() -> None:
    profile = infer_profile(SEEDS, "chat")
    assert profile.json_keys == ["age", "city", "name"] and profile.extractive
    assert profile.extractive_keys == ["age", "city", "name"]
    labels = [chat("Great battery.", '{"sentiment": "positive", "topic": "battery"}')] * 2
    assert infer_profile(labels, "chat").extractive_keys == ["topic"]
    reviews = [
        chat(f"Review {i}.", json.dumps({"sentiment": s, "stars": i}))
        for i, s in enumerate(["positive", "negative"] * 3)
    ]
    labelled = infer_profile(reviews, "chat")
    # Stars are a number, never a label set (issue 22): judged by type and a widened range.
    assert labelled.field_rules["sentiment"] == LabelRule(["negative", "positive"])
    assert labelled.field_rules["stars"].to_dict()["rule"] == "number"
    odd = chat("Review 9.", '{"sentiment": "sitive", "stars": 9}')
    assert "sentiment 'sitive' is not one of the seeds' labels" in format_problem(odd, labelled)
    score, parts = quality_score(person("Ana", 20, "Rome"), profile)
    assert score == 1.0 and parts["grounding"] == 1.0
    wrong = chat(
        "Ana is 20 years old and lives in Rome.", '{"name": "Bob", "age": 9, "city": "Oslo"}'
    )
    assert quality_score(wrong, profile)[0] == 0.0  # no output value comes from the input


def test_every_filter_drops_with_its_reason(tmp_path: Path) -> None:
    good = [
        person("Ana", 20, "Rome"),
        person("Yuki", 64, "Seoul", "Since turning {a}, {n} has lived in {c}."),
    ]
    replies = [
        reply(good[0]),
        reply(SEEDS[0]),  # duplicate of a seed
        reply(good[0]),  # duplicate of a kept example
        reply(EVAL[0]),  # the eval example itself
        reply(chat(EVAL[0]["messages"][0]["content"], '{"name": "P", "age": 1, "city": "D"}')),
        reply(person("ana", 20, "rome")),  # near duplicate of good[0]
        "Input: Tom is 40 years old and lives in Oslo.\nOutput: Tom, 40, Oslo",  # not JSON
        reply(chat("Tom is 40 and lives in Oslo.", '{"name": "Tom", "years": 40, "city": "Oslo"}')),
        reply(
            chat(
                "Tom is 40 years old and lives in Oslo." * 10,
                '{"name": "Tom", "age": 40, "city": "Oslo"}',
            )
        ),
        reply(chat("Li", '{"name": "Li", "age": 5, "city": "Rome"}')),  # input too short
        "I cannot help with that.",
        reply(
            chat(
                "Sam is 30 years old and lives in Cairo.",
                '{"name": "Bob", "age": 7, "city": "Lima"}',
            )
        ),
        reply(good[1]),
    ]
    generator = Replay(replies)
    config = DataGenerationConfig(
        enabled=True, num_examples=2, batch_size=13, max_attempts_factor=7, seed=3
    )
    kept, report = generate_examples(
        config,
        task="People to JSON.",
        kind="chat",
        seeds=SEEDS,
        eval_records=EVAL,
        complete=generator,
        generator_name="replay",
        output_dir=tmp_path,
    )
    assert kept == good
    assert report.generated == 13 and report.kept == 2
    assert report.dropped == {
        "duplicate": 2,
        "eval_overlap": 2,
        "near_duplicate": 1,
        "format": 2,
        "too_long": 1,
        "too_short": 1,
        "unparseable": 1,
        "low_quality": 1,
    }
    assert "kept 2" in report.message and "eval_overlap: 2" in report.message
    written = [json.loads(line) for line in (tmp_path / "synthetic.jsonl").read_text().splitlines()]
    assert written == good
    saved = json.loads((tmp_path / "generation_report.json").read_text())
    assert (
        saved["kept"] == 2
        and saved["usable"]
        and "JSON" in saved["dropped_examples"]["format"][0]["detail"]
    )


def test_weak_generator_stops_early_and_says_no_usable_examples(tmp_path: Path) -> None:
    generator = Replay([])
    config = DataGenerationConfig(enabled=True, num_examples=50, batch_size=4, give_up_after=8)
    kept, report = generate_examples(
        config,
        task="",
        kind="chat",
        seeds=SEEDS,
        complete=generator,
        generator_name="tiny",
        output_dir=tmp_path,
    )
    assert kept == [] and report.generated == 8 and report.stopped_early
    assert report.dropped == {"unparseable": 8}
    assert report.message.startswith("Generation yielded no usable examples")
    assert (tmp_path / "synthetic.jsonl").read_text() == ""


def test_prompts_vary_exemplars_temperature_and_carry_passages() -> None:
    generator = Replay([])
    config = DataGenerationConfig(
        enabled=True, num_examples=4, batch_size=4, give_up_after=12, exemplars_per_prompt=2
    )
    passages = ["Refunds are paid within five days.", "Express delivery arrives next day."]
    generate_examples(
        config,
        task="Answer questions.",
        kind="chat",
        seeds=SEEDS,
        complete=generator,
        generator_name="replay",
        passages=passages,
    )
    # Exemplars are earlier turns (asked, then answered in the labelled shape); the last
    # request carries the grounding passage.
    conversations = [json.dumps(p) for p in generator.prompts]
    assert len(conversations) == 12 and len(set(conversations)) > 3  # other exemplars, passages
    assert all(p[1]["content"].startswith("Task: Answer questions.") for p in generator.prompts)
    # The seeds' outputs copy their inputs' values, so the output is asked for first and the
    # input written to state it (data_generation.output_first's default).
    assert all(
        p[2]["role"] == "assistant"
        and p[2]["content"].startswith("Output: {")
        and "\nInput: " in p[2]["content"]
        for p in generator.prompts
    )
    assert all(any(passage in p[-1]["content"] for passage in passages) for p in generator.prompts)
    assert len(set(generator.temperatures)) == 3 and min(generator.temperatures) < 0.6 < max(
        generator.temperatures
    )


def test_rag_context_prefixes_the_grounding_passage() -> None:
    new = person("Ana", 20, "Rome")
    kept, _ = generate_examples(
        DataGenerationConfig(enabled=True, num_examples=1, batch_size=1),
        task="",
        kind="chat",
        seeds=SEEDS,
        complete=Replay([reply(new)]),
        generator_name="replay",
        passages=["Ana moved to Rome in 2020."],
        passage_context=True,
    )
    assert kept[0]["messages"][0]["content"].startswith("Context: Ana moved to Rome in 2020.\n\n")


def test_generator_failure_is_reported_by_name() -> None:
    def broken(prompts: list, temperature: float) -> list[str]:
        raise ConnectionError("endpoint refused the connection")

    with pytest.raises(GenerationError, match="the generator remote failed: ConnectionError"):
        generate_examples(
            DataGenerationConfig(enabled=True, num_examples=1),
            task="",
            kind="chat",
            seeds=SEEDS,
            complete=broken,
            generator_name="remote",
        )


def test_merge_writes_a_new_train_file_with_a_new_hash(tmp_path: Path) -> None:
    train, eval_ = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in SEEDS))
    eval_.write_text(json.dumps(EVAL[0]) + "\n")
    merged = merge_training_data(train, eval_, [person("Ana", 20, "Rome")], tmp_path / "m.jsonl")
    lines = Path(merged["train_path"]).read_text().splitlines()
    assert merged["train_rows"] == len(lines) == 5 and json.loads(lines[-1])["messages"][0][
        "content"
    ].startswith("Ana")
    assert train.read_text().count("\n") == 4  # the seed split is untouched
    again = merge_training_data(train, eval_, [person("Ana", 21, "Rome")], tmp_path / "n.jsonl")
    assert again["data_hash"] != merged["data_hash"]


def test_config_names_one_generator() -> None:
    with pytest.raises(ValidationError, match="keep one of them"):
        DataGenerationConfig(
            generator="builtin:tiny-llama", chat_model="langchain_openai:ChatOpenAI"
        )
    with pytest.raises(ValidationError, match="module:Class"):
        DataGenerationConfig(chat_model="ChatOpenAI")


def _first_demonstration(seeds: list[dict], **settings) -> tuple[bool, str]:
    """(report.output_first, the first demonstrated reply the generator was shown)."""
    generator = Replay([])
    config = DataGenerationConfig(
        enabled=True, num_examples=1, batch_size=1, give_up_after=1, **settings
    )
    _, report = generate_examples(
        config, task="", kind="chat", seeds=seeds, complete=generator, generator_name="replay"
    )
    return report.output_first, generator.prompts[0][2]["content"]


def test_the_output_comes_first_only_when_the_seeds_copy_their_inputs_values() -> None:
    # Measured with SmolLM2-135M-Instruct on 10 quickstart seeds (README): asked input first,
    # most drops were inputs that never state the name or city the output then makes up.
    first, shown = _first_demonstration(SEEDS)
    assert first and shown.startswith("Output: {") and "\nInput: " in shown
    answers = [chat(f"question {i}", f"a reply of its own number {i * 7}") for i in range(4)]
    first, shown = _first_demonstration(answers)
    assert not first and shown.startswith("Input: ")
    first, shown = _first_demonstration(SEEDS, output_first=False)
    assert not first and shown.startswith("Input: ")


def test_the_generation_batch_is_sized_to_the_machine_unless_set() -> None:
    import torch

    from phases.synthesis.config import CPU_BATCH, GPU_BATCH

    machine = GPU_BATCH if torch.cuda.is_available() else CPU_BATCH
    assert DataGenerationConfig().generation_batch_size() == machine
    assert DataGenerationConfig(batch_size=3).generation_batch_size() == 3


def test_a_reply_nested_past_the_json_parsers_depth_is_judged_not_a_crash() -> None:
    # json's decoder raises RecursionError (not ValueError) past ~1000 levels: it ended the run.
    deep = "[" * 1400 + "]" * 1400
    text = " ".join(f"word{i}" for i in range(150))  # outputs copy their inputs: extractive
    copying = [chat(f"{text} {i}", f"{text} {i}".replace("word0 ", "")) for i in range(4)]
    for seeds, bad in (
        (SEEDS, f"Input: Ana is 20 years old and lives in Rome.\nOutput: {deep * 50}"),
        (copying, f"Input: {text.replace('word', 'term')}\nOutput: {deep}"),  # its grounding
    ):
        _, report = generate_examples(
            DataGenerationConfig(enabled=True, num_examples=1, batch_size=1, give_up_after=1),
            task="",
            kind="chat",
            seeds=seeds,
            complete=Replay([bad]),
            generator_name="replay",
        )
        assert report.replies == report.generated == 1
