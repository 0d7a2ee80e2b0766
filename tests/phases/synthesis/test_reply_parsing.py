"""Parsing chatty generator replies: prose around the example, code fences, trailing commentary,
several examples in one reply, JSON outputs spanning lines, for every kind; and the generation
report counting the replies that needed it. The replies are written in the style a small chat
model (SmolLM2-135M-Instruct) answers the synthesis prompt with.
"""

import json

from phases.synthesis import DataGenerationConfig, generate_examples
from phases.synthesis.prompts import parse_example, parse_examples, render_example

SENTENCE = "Hana is 43 years old and lives in Madrid."
HANA = '{"name": "Hana", "age": 43, "city": "Madrid"}'


def test_leading_prose_and_trailing_commentary_are_dropped() -> None:
    reply = (
        "Here's a new example:\n\n"
        f"Input: {SENTENCE}\n"
        f"Output: {HANA}\n\n"
        "This example shows how a sentence about a person becomes a JSON object."
    )
    assert parse_examples(reply, "chat") == ([[SENTENCE, HANA]], True)


def test_a_plain_reply_needs_no_extraction() -> None:
    assert parse_examples(f"Input: {SENTENCE}\nOutput: {HANA}\n", "chat") == (
        [[SENTENCE, HANA]],
        False,
    )


def test_json_output_spanning_lines_stays_intact_and_ends_where_the_json_ends() -> None:
    pretty = '{\n  "name": "Omar",\n  "age": 55,\n\n  "city": "Lima"\n}'
    reply = (
        "Sure! Here is another one.\n\n"
        "Input: Omar (55) is based in Lima.\n"
        f"Output:\n{pretty}\n"
        "I hope this helps! Let me know if you need more examples."
    )
    examples, extracted = parse_examples(reply, "prompt_completion")
    assert examples == [["Omar (55) is based in Lima.", pretty]] and extracted
    assert json.loads(examples[0][1]) == {"name": "Omar", "age": 55, "city": "Lima"}


def test_a_fenced_example_with_or_without_a_language_tag() -> None:
    for fence in ("```", "```text"):
        reply = (
            "Here's a new example:\n\n"
            f"{fence}\nInput: Kenji calls Berlin home at 70.\n"
            'Output: {"name": "Kenji", "age": 70, "city": "Berlin"}\n```\n\n'
            "In this example, the age comes before the city.\n\nExplanation: ..."
        )
        assert parse_examples(reply, "chat") == (
            [
                [
                    "Kenji calls Berlin home at 70.",
                    '{"name": "Kenji", "age": 70, "city": "Berlin"}',
                ]
            ],
            True,
        )


def test_a_closing_fence_without_its_opening_ends_the_example() -> None:
    reply = "Input: Who wrote Emma?\nOutput: Jane Austen.\n```\nHope this helps!"
    assert parse_examples(reply, "chat", multi_paragraph=True) == (
        [["Who wrote Emma?", "Jane Austen."]],
        True,
    )


def test_two_examples_in_one_reply_are_both_kept() -> None:
    reply = (
        "Here are two new examples:\n\n"
        "Example 1:\n"
        "Input: Lena, aged 31, works in Oslo.\n"
        'Output: {"name": "Lena", "age": 31, "city": "Oslo"}\n\n'
        "Example 2:\n"
        "**Input:** Priya is 28 and lives in Delhi.\n"
        '**Output:** {"name": "Priya", "age": 28, "city": "Delhi"}\n\n'
        "Example 3:\n"
        "Input: Tom is"
    )
    assert parse_examples(reply, "chat") == (
        [
            ["Lena, aged 31, works in Oslo.", '{"name": "Lena", "age": 31, "city": "Oslo"}'],
            ["Priya is 28 and lives in Delhi.", '{"name": "Priya", "age": 28, "city": "Delhi"}'],
        ],
        True,
    )


def test_prose_only_yields_nothing() -> None:
    reply = (
        "Sure! I can help you write new training examples. Each example should have an input "
        "sentence and an output in JSON format. Let me know what you need."
    )
    assert parse_examples(reply, "chat") == ([], False)
    assert parse_example(reply, "chat") == (None, "no 'Input:' field")


def test_the_word_output_inside_a_value_does_not_start_a_field() -> None:
    log = '{\n  "step": "build",\n  "message": "Output: 3 files written"\n}'
    reply = (
        "Input: Summarize the build log as JSON.\n"
        f"Output: {log}\n\n"
        "Note that the message keeps the tool's own Output: prefix."
    )
    assert parse_examples(reply, "chat") == (
        [["Summarize the build log as JSON.", log]],
        True,
    )
    inline = 'Input: What does `echo "Output: 1"` print?\nOutput: It prints Output: 1.'
    assert parse_examples(inline, "prompt_completion") == (
        [['What does `echo "Output: 1"` print?', "It prints Output: 1."]],
        False,
    )


def test_preference_and_text_kinds_parse_back_what_was_rendered() -> None:
    pair = {"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "I refuse."}
    reply = f"Here's a new example:\n\n```\n{render_example(pair, 'preference')}\n```\nDone!"
    assert parse_examples(reply, "preference") == (
        [["Name a colour.", "Blue.", "I refuse."]],
        True,
    )
    doc = {"text": "Otters hold hands while sleeping.\n\nThey float in groups called rafts."}
    rendered = render_example(doc, "text")
    assert parse_examples(rendered, "text", multi_paragraph=True) == ([[doc["text"]]], False)
    # Seeds of single paragraphs: a blank line ends the value, so commentary after it goes.
    assert parse_examples(rendered, "text") == ([["Otters hold hands while sleeping."]], True)


def test_the_report_counts_replies_that_needed_extraction_or_held_several() -> None:
    seeds = [
        {"prompt": f"{n} is {a} years old and lives in {c}.", "completion": json.dumps(d)}
        for n, a, c in [("Hana", 43, "Madrid"), ("Kenji", 70, "Berlin"), ("Omar", 55, "Lima")]
        for d in [{"name": n, "age": a, "city": c}]
    ]
    replies = [
        "I cannot think of another example.",
        "Here's a new example:\n\nInput: Ana is 20 years old and lives in Rome.\n"
        'Output: {"name": "Ana", "age": 20, "city": "Rome"}\n\nThis shows a young person.',
        "Input: Yuki is 64 years old and lives in Seoul.\n"
        'Output: {"name": "Yuki", "age": 64, "city": "Seoul"}\n\n'
        "Input: Ravi is 38 years old and lives in Pune.\n"
        'Output: {"name": "Ravi", "age": 38, "city": "Pune"}',
    ]

    def complete(prompts: list, temperature: float) -> list[str]:
        return [replies.pop(0) for _ in prompts]

    # Room for exactly these 4 candidates: one batch of the 3 replies above.
    config = DataGenerationConfig(
        enabled=True, num_examples=4, batch_size=3, max_attempts_factor=1.0
    )
    _, report = generate_examples(
        config,
        task="People to JSON.",
        kind="prompt_completion",
        seeds=seeds,
        complete=complete,
        generator_name="chatty",
    )
    counts = (report.replies, report.replies_extracted, report.replies_with_several_examples)
    assert counts == (3, 1, 1)
    assert report.generated == 4 and report.dropped.get("unparseable") == 1
    saved = report.to_dict()
    assert saved["replies_extracted"] == 1 and saved["replies_with_several_examples"] == 1
    assert "Of 3 replies, 1 had their example inside other text" in report.message


def test_output_first_replies_parse_into_the_same_record_as_input_first_ones() -> None:
    # data_generation.output_first asks for the output before the input; a model that keeps
    # the seeds' order anyway is read just the same, and several examples split either way.
    output_first = f"Output: {HANA}\nInput: {SENTENCE}"
    assert parse_examples(output_first, "chat") == ([[SENTENCE, HANA]], False)
    omar = '{"name": "Omar", "age": 55, "city": "Lima"}'
    two = f"{output_first}\n\nOutput: {omar}\nInput: Omar (55) is based in Lima."
    examples, _ = parse_examples(two, "chat")
    assert examples == [[SENTENCE, HANA], ["Omar (55) is based in Lima.", omar]]
    # A label repeated after a complete example starts an incomplete one, which is left out.
    assert parse_examples(f"{output_first}\nOutput: {omar}", "chat")[0] == [[SENTENCE, HANA]]
    assert (
        render_example(
            {
                "messages": [
                    {"role": "user", "content": SENTENCE},
                    {"role": "assistant", "content": HANA},
                ]
            },
            "chat",
            output_first=True,
        )
        == output_first
    )
