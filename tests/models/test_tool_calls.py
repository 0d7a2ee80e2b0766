"""Tool calls read from a model's text in each template's format, and conversations with tools
rendered natively (the tiny Llama's template) or through the fallback (any other template)."""

from __future__ import annotations

import json

import pytest

from models.tool_calls import ToolCall, format_tool_call, parse_tool_calls, shown_length
from models.tool_chat import render_tool_chat, supports_tools, tokenize_tool_chat

CALL = ToolCall("calculator", {"expression": "12 * 7"})
CALC_TOOL = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate arithmetic.",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}},
    },
}
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 12 times 7?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "type": "function",
                "function": {"name": "calculator", "arguments": {"expression": "12 * 7"}},
            }
        ],
    },
    {"role": "tool", "name": "calculator", "content": "84"},
    {"role": "assistant", "content": "It is 84."},
]


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>{"name": "calculator", "arguments": {"expression": "12 * 7"}}</tool_call>',
        '<tool_call>\n{"name": "calculator", "arguments": "{\\"expression\\": \\"12 * 7\\"}"}\n</tool_call>',
        '[TOOL_CALLS] [{"name": "calculator", "arguments": {"expression": "12 * 7"}}]',
        '<|python_tag|>{"name": "calculator", "parameters": {"expression": "12 * 7"}}',
        '{"name": "calculator", "parameters": {"expression": "12 * 7"}}',
        '{"type": "function", "function": {"name": "calculator", "arguments": {"expression": "12 * 7"}}}',
    ],
    ids=["hermes", "arguments-as-json-text", "mistral", "llama-python-tag", "llama-bare", "openai"],
)
def test_each_native_format_gives_the_same_call(text: str) -> None:
    content, calls, problems = parse_tool_calls(text)
    assert (content, calls, problems) == ("", [CALL], [])


def test_text_around_calls_stays_and_several_calls_are_read() -> None:
    text = (
        "Let me compute.\n"
        + format_tool_call("calculator", {"expression": "1+1"})
        + format_tool_call("python", {"code": "print(2)"})
    )
    content, calls, problems = parse_tool_calls(text)
    assert content == "Let me compute."
    assert [c.name for c in calls] == ["calculator", "python"] and not problems


def test_a_broken_call_is_a_problem_and_plain_json_is_text() -> None:
    _, calls, problems = parse_tool_calls(
        '<tool_call>{"name": "calculator", "arguments": {</tool_call>'
    )
    assert calls == [] and problems[0].startswith("tool call 1: not valid JSON")
    _, calls, problems = parse_tool_calls('<tool_call>{"arguments": {}}</tool_call>')
    assert problems == ["tool call 1: no tool 'name'"]
    _, calls, problems = parse_tool_calls('<tool_call>{"name": "calculator"')
    assert problems == ["tool call 1 is not closed with </tool_call>"]
    assert parse_tool_calls('{"name": "Ann", "age": 31}')[1:] == ([], [])  # a JSON answer
    assert parse_tool_calls("The answer is 84.") == ("The answer is 84.", [], [])


def test_streaming_holds_back_what_may_become_a_call() -> None:
    assert shown_length("The answer") == len("The answer")
    assert shown_length("Sure. <tool_") == len("Sure. ")
    assert shown_length("Sure. <tool_call>{") == len("Sure. ")
    assert shown_length('{"name": "calc') == 0
    assert shown_length("a < b") == len("a < b")


def test_the_tiny_llama_renders_tools_natively(tiny_model_dir) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert supports_tools(tokenizer)
    text = render_tool_chat(tokenizer, CONVERSATION, [CALC_TOOL], add_generation_prompt=False)
    assert text.startswith("<|system|>\nBe brief.\n\nTools:\n" + json.dumps(CALC_TOOL["function"]))
    assert (
        "<|assistant|>\n" + format_tool_call("calculator", {"expression": "12 * 7"}) + "</s>"
        in text
    )
    assert "<|user|>\n<tool_response>84</tool_response></s>" in text
    plain = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    assert (
        tokenizer.apply_chat_template(plain, tokenize=False)
        == "<|user|>\nhi</s>\n<|assistant|>\nyo</s>\n"
    )


def test_a_template_without_tools_gets_the_fallback(tiny_model_dir) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = (
        "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}[assistant]{% endif %}"
    )
    assert not supports_tools(tokenizer)
    text = render_tool_chat(tokenizer, CONVERSATION, [CALC_TOOL], add_generation_prompt=True)
    system, rest = text.split("[user]", 1)
    assert (
        system.startswith("[system]Be brief.\n\nYou can call these tools")
        and json.dumps(CALC_TOOL) in system
    )
    assert rest == (
        "What is 12 times 7?[assistant]"
        + format_tool_call("calculator", {"expression": "12 * 7"})
        + "[user]<tool_response>84</tool_response>[assistant]It is 84.[assistant]"
    )


def test_every_assistant_turn_and_only_those_are_trained(tiny_model_dir) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    example = tokenize_tool_chat(tokenizer, CONVERSATION, [CALC_TOOL])
    ids, mask = example["input_ids"], example["completion_mask"]
    trained = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m])
    call = format_tool_call("calculator", {"expression": "12 * 7"})
    assert trained == f"{call}</s>\nIt is 84.</s>\n"
    assert tokenizer.decode(ids) == render_tool_chat(
        tokenizer, CONVERSATION, [CALC_TOOL], add_generation_prompt=False
    )
