"""Conversations with tools, rendered the same way for training, evaluation and chat.

Messages are plain dicts in the OpenAI / TRL shape:

    {"role": "user", "content": "What is 12 times 7?"}
    {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "calculator", "arguments": {"expression": "12*7"}}}]}
    {"role": "tool", "name": "calculator", "content": "84"}
    {"role": "assistant", "content": "12 times 7 is 84."}

and tools are JSON schemas (`{"type": "function", "function": {"name", "description",
"parameters"}}`). A chat template that renders `tools=` and tool calls itself (Qwen 2.5, Llama
3.x, Hermes, the built-in tiny Llama) gets them natively. Any other template gets the fallback:
the tools listed in the system message, each call written as `<tool_call>{json}</tool_call>` in
the assistant's text, and each result as a user turn `<tool_response>...</tool_response>` (so
templates that insist on alternating user/assistant turns accept it).

    text = render_tool_chat(tokenizer, messages[:-1], tools)            # a prompt
    example = tokenize_tool_chat(tokenizer, messages, tools)            # input_ids + loss mask
"""

from __future__ import annotations

import json
from typing import Any

from models.generation import encode_prompt, render_chat
from models.tool_calls import format_tool_call

FALLBACK_TOOLS_TEXT = (
    "You can call these tools; each line is one tool's JSON schema:\n<tools>\n{tools}\n</tools>\n"
    'To call a tool, reply with <tool_call>{{"name": "<tool name>", "arguments": {{...}}}}'
    "</tool_call> and nothing else. Its result comes back as <tool_response>...</tool_response>;"
    " then answer the user."
)
_PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "probe_tool_q7",
        "description": "probe-description-q7",
        "parameters": {"type": "object", "properties": {"probe_arg": {"type": "string"}}},
    },
}
_PROBE_MESSAGES = [
    {"role": "user", "content": "probe-question"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "type": "function",
                "id": "call_probe",
                "function": {"name": "probe_tool_q7", "arguments": {"probe_arg": "probe-value"}},
            }
        ],
    },
    {"role": "tool", "name": "probe_tool_q7", "tool_call_id": "call_probe", "content": "probe-out"},
    {"role": "assistant", "content": "probe-answer"},
]
_native_by_template: dict[str, bool] = {}


def tool_schema_name(tool: dict[str, Any]) -> str:
    """The name in a tool schema (OpenAI's nested `function` shape or a flat one)."""
    return str((tool.get("function") or tool).get("name", ""))


def call_parts(call: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(name, arguments) of a tool call in the OpenAI shape or a flat `{name, arguments}`."""
    function = call.get("function") or call
    arguments = function.get("arguments") or {}
    if isinstance(arguments, str):
        arguments = json.loads(arguments) if arguments.strip() else {}
    return str(function.get("name", "")), arguments


def supports_tools(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template renders tool schemas, tool calls and tool results
    itself (judged once per template from a probe conversation)."""
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return False
    if template not in _native_by_template:
        try:
            text = tokenizer.apply_chat_template(
                _PROBE_MESSAGES, tools=[_PROBE_TOOL], tokenize=False
            )
        except Exception:  # a template that refuses tool roles or tool calls: not native
            text = ""
        wanted = ("probe-description-q7", "probe_tool_q7", "probe-value", "probe-out")
        _native_by_template[template] = all(piece in text for piece in wanted)
    return _native_by_template[template]


def fallback_messages(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
) -> list[dict[str, str]]:
    """The conversation as plain system/user/assistant turns: tools in the system message,
    calls as `<tool_call>` blocks, results as `<tool_response>` user turns."""
    plain: list[dict[str, str]] = []
    for message in messages:
        role, content = message["role"], message.get("content") or ""
        if role == "assistant" and message.get("tool_calls"):
            blocks = [format_tool_call(*call_parts(c)) for c in message["tool_calls"]]
            content = "\n".join(([content] if content else []) + blocks)
        if role == "tool":
            response = f"<tool_response>{content}</tool_response>"
            if plain and plain[-1]["role"] == "user" and plain[-1].get("tool_results"):
                plain[-1]["content"] += "\n" + response
                continue
            plain.append({"role": "user", "content": response, "tool_results": "1"})
            continue
        plain.append({"role": role, "content": content})
    plain = [{"role": m["role"], "content": m["content"]} for m in plain]
    if tools:
        listing = FALLBACK_TOOLS_TEXT.format(
            tools="\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
        )
        if plain and plain[0]["role"] == "system":
            plain[0] = {"role": "system", "content": f"{plain[0]['content']}\n\n{listing}"}
        else:
            plain.insert(0, {"role": "system", "content": listing})
    return plain


def native_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as templates expect them: string content, arguments as JSON objects."""
    out = []
    for message in messages:
        turn = {**message, "content": message.get("content") or ""}
        if message.get("tool_calls"):
            turn["tool_calls"] = [_native_call(c, i) for i, c in enumerate(message["tool_calls"])]
        out.append(turn)
    return out


def _native_call(call: dict[str, Any], index: int) -> dict[str, Any]:
    name, arguments = call_parts(call)
    return {
        "type": "function",
        "id": call.get("id") or f"call_{index}",
        "function": {"name": name, "arguments": arguments},
    }


def render_tool_chat(
    tokenizer: Any,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    *,
    add_generation_prompt: bool = True,
) -> str:
    """The conversation rendered with the chat template (natively with `tools=`, or through
    the fallback), by default ending where the assistant's next reply starts."""
    tools = tools or None  # some templates render tool boilerplate for tools=[]
    if supports_tools(tokenizer):
        return tokenizer.apply_chat_template(
            native_messages(messages),
            tools=tools,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
        )
    plain = fallback_messages(messages, tools)
    return render_chat(tokenizer, plain, add_generation_prompt=add_generation_prompt)


def tokenize_tool_chat(
    tokenizer: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
) -> dict[str, list[int]]:
    """`input_ids` of the whole conversation and a `completion_mask` that is 1 on every
    assistant turn (tool calls and answers alike), 0 on the rest: what SFT trains on.

    Each assistant turn spans from where the conversation before it (with the generation
    prompt) stops matching the whole, to where the conversation through it does, so it works
    with any template that renders a conversation's start the same as the whole's start.
    """
    full = _ids(
        tokenizer, render_tool_chat(tokenizer, messages, tools, add_generation_prompt=False)
    )
    mask = [0] * len(full)
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render_tool_chat(tokenizer, messages[:index], tools, add_generation_prompt=True)
        through = render_tool_chat(
            tokenizer, messages[: index + 1], tools, add_generation_prompt=False
        )
        start = _common_prefix(_ids(tokenizer, before), full)
        end = _common_prefix(_ids(tokenizer, through), full)
        for position in range(start, end):
            mask[position] = 1
    return {"input_ids": full, "completion_mask": mask}


def _ids(tokenizer: Any, text: str) -> list[int]:
    return encode_prompt(tokenizer, text, templated=True)


def _common_prefix(a: list[int], b: list[int]) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length
