"""Format checks that know which JSON fields are labels (issue 22): a field is a closed label set
only when the seeds' values are few and repeat; numbers are held to their type and a range
widened from the seeds'; mostly unique values (names, cities) to their type and non-empty. The
generation report says how each field was judged.
"""

import json

from phases.synthesis import DataGenerationConfig, generate_examples, infer_profile
from phases.synthesis.filters import format_problem

CITIES = ["Madrid", "Berlin", "Lima", "Oslo", "Seoul", "Cairo", "Quito", "Accra"]
TEMPLATES = [
    "{n} is {a} years old and lives in {c}.",
    "At {a}, {n} calls {c} home.",
    "{n} ({a}) is based in {c}.",
    "{n}, aged {a}, works in {c}.",
]


def chat(user: str, answer: dict) -> dict:
    return {
        "messages": [
            {"role": "user", "content": user},
            {"role": "assistant", "content": json.dumps(answer)},
        ]
    }


def person(name: str, age, city, template: str = TEMPLATES[0]) -> dict:
    return chat(template.format(n=name, a=age, c=city), {"name": name, "age": age, "city": city})


# The quickstart's shape: 24 people aged 18 to 78, every name new, 8 cities each seen 3 times.
PEOPLE = [
    person(f"Person{i}", 18 + round(i * 60 / 23), CITIES[i % 8], TEMPLATES[i % 4])
    for i in range(24)
]
REVIEWS = [
    chat(f"Review number {i}.", {"sentiment": s, "urgent": i % 2 == 0})
    for i, s in enumerate(["positive", "negative", "neutral"] * 10)
]


def test_a_categorical_field_refuses_a_new_label_and_keeps_the_seeds() -> None:
    profile = infer_profile(REVIEWS, "chat")
    rule = profile.field_rules_dict()["sentiment"]
    assert rule == {"rule": "label", "values": ["negative", "neutral", "positive"]}
    kept = chat("Review number 99.", {"sentiment": "neutral", "urgent": False})
    assert format_problem(kept, profile) is None
    new = chat("Review number 99.", {"sentiment": "mixed", "urgent": False})
    assert format_problem(new, profile) == (
        "sentiment 'mixed' is not one of the seeds' labels ['negative', 'neutral', 'positive']"
    )


def test_a_bool_is_a_label_and_a_number_is_not_a_bool() -> None:
    profile = infer_profile(REVIEWS, "chat")
    assert profile.field_rules_dict()["urgent"] == {"rule": "label", "values": [False, True]}
    # 1 == True in Python; the JSON type still differs, so it is refused.
    number = chat("Review number 99.", {"sentiment": "neutral", "urgent": 1})
    assert (
        format_problem(number, profile) == "urgent 1 is not one of the seeds' labels [False, True]"
    )


def test_a_numeric_field_takes_new_values_in_the_widened_range_only() -> None:
    profile = infer_profile(PEOPLE, "chat")
    # Seeds span 18..78 (span 60): widened to [-42, 138], and ages never go below zero.
    assert profile.field_rules_dict()["age"] == {"rule": "number", "type": "int", "range": [0, 138]}
    for age in (7, 18, 100, 138):
        assert format_problem(person("Alex", age, "Lima"), profile) is None, age
    assert format_problem(person("Alex", -5, "Lima"), profile) == (
        "age -5 is outside the plausible range [0, 138] (the seeds' 18..78 widened by their span)"
    )
    assert "age 1000000 is outside the plausible range" in format_problem(
        person("Alex", 10**6, "Lima"), profile
    )


def test_a_type_change_is_refused() -> None:
    profile = infer_profile(PEOPLE, "chat")
    assert format_problem(person("Alex", "seven", "Lima"), profile) == (
        "age 'seven' is a JSON string, not a number like the seeds'"
    )
    assert format_problem(person("Alex", 7.5, "Lima"), profile) == (
        "age 7.5 is not a whole number like the seeds'"
    )
    assert format_problem(person("Alex", 30, 12), profile) == (
        "city 12 is a JSON number, not string like the seeds'"
    )
    assert (
        format_problem(person("", 30, "Lima"), profile) == "name is empty; every seed has a value"
    )


def test_a_name_like_field_takes_new_names_and_cities() -> None:
    profile = infer_profile(PEOPLE, "chat")
    free = {"rule": "free text", "types": ["string"], "non_empty": True}
    # 8 cities over 24 seeds, each seen 3 times, is more than max(3, 24 // 5) distinct values.
    assert profile.field_rules_dict()["name"] == free
    assert profile.field_rules_dict()["city"] == free
    assert format_problem(person("Zanele", 30, "New York"), profile) is None
    # The rejected candidate: a new name, age 7 and a city not among the seeds.
    assert format_problem(person("Alex", 7, "UK"), profile) is None


def test_the_report_says_how_each_field_was_judged_and_keeps_new_entities() -> None:
    new = [
        person("Alex", 7, "UK", "Little {n} is only {a} and already loves {c}."),
        person("Zanele", 91, "New York", "Retired at {a}, {n} moved to {c} for good."),
    ]
    replies = [
        f"Input: {r['messages'][0]['content']}\nOutput: {r['messages'][1]['content']}" for r in new
    ]
    config = DataGenerationConfig(enabled=True, num_examples=2, batch_size=2, seed=1)
    kept, report = generate_examples(
        config,
        task="People to JSON.",
        kind="chat",
        seeds=PEOPLE,
        complete=lambda prompts, _t: replies[: len(prompts)],
        generator_name="replay",
    )
    assert kept == new and report.dropped == {}
    assert report.to_dict()["field_rules"] == {
        "age": {"rule": "number", "type": "int", "range": [0, 138]},
        "city": {"rule": "free text", "types": ["string"], "non_empty": True},
        "name": {"rule": "free text", "types": ["string"], "non_empty": True},
    }
