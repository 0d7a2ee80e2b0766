"""The generation report's quality figures (issue 22): keep rate, near-duplicate rate, and per
field the distinct values of the kept examples and how many no seed has; the data gate shows
them with the sample.
"""

import json

from llmfinetune_agent.agents.gates import _generation_summary
from llmfinetune_agent.cli.gate_screens import _generation_rows
from phases.synthesis import DataGenerationConfig, generate_examples, infer_profile
from phases.synthesis.stats import field_stats


def person(name: str, age: int, city: str) -> dict:
    answer = json.dumps({"name": name, "age": age, "city": city})
    return {
        "messages": [
            {"role": "user", "content": f"{name} is {age} years old and lives in {city}."},
            {"role": "assistant", "content": answer},
        ]
    }


SEEDS = [person("Hana", 43, "Madrid"), person("Kenji", 70, "Berlin"), person("Omar", 55, "Lima")]


def reply(record: dict) -> str:
    return f"Input: {record['messages'][0]['content']}\nOutput: {record['messages'][1]['content']}"


def test_field_stats_count_distinct_and_new_values_case_insensitively() -> None:
    kept = [person("Ana", 43, "Madrid"), person("Ravi", 38, "lima"), person("Ana", 20, "Pune")]
    stats = field_stats(kept, SEEDS, infer_profile(SEEDS, "chat"))
    assert stats == {
        "age": {"distinct": 3, "new": 2, "new_examples": [38, 20]},
        "city": {"distinct": 3, "new": 1, "new_examples": ["Pune"]},
        "name": {"distinct": 2, "new": 2, "new_examples": ["Ana", "Ravi"]},
    }


def test_field_stats_without_json_outputs_use_the_labelled_fields() -> None:
    seeds = [
        {"prompt": "Say hi.", "completion": "Hi!"},
        {"prompt": "Say bye.", "completion": "Bye!"},
    ]
    kept = [{"prompt": "Say hello.", "completion": "Hi!"}]
    stats = field_stats(kept, seeds, infer_profile(seeds, "prompt_completion"))
    assert stats["Input"]["new"] == 1 and stats["Output"] == {
        "distinct": 1,
        "new": 0,
        "new_examples": [],
    }


def test_report_gives_keep_rate_near_duplicates_and_new_values_to_the_gate() -> None:
    replies = [
        reply(person("Ana", 20, "Rome")),
        reply(person("ana", 20, "rome")),  # near duplicate of the first
        reply(SEEDS[0]),  # exact duplicate of a seed
        "Sorry, I cannot.",
        reply(person("Yuki", 64, "Seoul")),
    ]
    config = DataGenerationConfig(enabled=True, num_examples=2, batch_size=5, seed=1)
    kept, report = generate_examples(
        config,
        task="People to JSON.",
        kind="chat",
        seeds=SEEDS,
        complete=lambda prompts, _t: replies[: len(prompts)],
        generator_name="replay",
    )
    assert report.generated == 5 and report.kept == 2
    saved = report.to_dict()
    assert saved["keep_rate"] == 0.4 and saved["near_duplicate_rate"] == 0.4
    assert saved["field_stats"]["city"] == {
        "distinct": 2,
        "new": 2,
        "new_examples": ["Rome", "Seoul"],
    }
    assert "keep rate 40%, near duplicates 40%" in report.message
    assert "name 2 distinct (2 new)" in report.message

    summary = _generation_summary(saved)
    assert summary["keep_rate"] == 0.4 and summary["near_duplicate_rate"] == 0.4
    assert summary["new_values"] == {"age": 2, "city": 2, "name": 2}
    rows = dict(_generation_rows(saved))
    assert rows["generated"] == "2 kept of 5 · keep rate 0.4 · near duplicates 0.4"
    assert rows["  city"] == "free text · 2 distinct, 2 not in the seeds (Rome, Seoul)"
    assert rows["  age"].startswith("number · 2 distinct, 2 not in the seeds")


def test_a_failed_generation_shows_its_message_at_the_gate() -> None:
    failed = {"status": "failed", "generated": 0, "kept": 0, "message": "Generation failed: x."}
    assert _generation_rows(failed) == [("generated", "Generation failed: x.")]
    assert _generation_rows({}) == []
