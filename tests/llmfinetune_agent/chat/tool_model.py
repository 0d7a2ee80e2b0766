"""A tiny Llama taught (by real gradient steps, to a memorized fit) to call tools on two
messages, so chat tests can drive the whole tool loop with a real model in seconds:

- "What is 2 plus 3?" -> calculator("2 + 3") -> after the result: "The answer is 5." (also
  as the second turn of a conversation)
- "Run my program." -> python("while True: pass") -> after the result: "It ran too long."

It only knows these two conversations; `tests/.../test_tool_learning.py` tunes a model
(SmolLM2 with LoRA) that generalizes to new questions.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Any

TOOLS_USED = ["calculator", "python"]
CALCULATOR_QUESTION, CALCULATOR_ANSWER = "What is 2 plus 3?", "The answer is 5."
PROGRAM_REQUEST, PROGRAM_ANSWER = "Run my program.", "It ran too long."


def _call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


def conversations(timeout_text: str) -> list[list[dict[str, Any]]]:
    """The two conversations, with the system prompt of a default chat with these tools and the
    python result written as the sandbox reports a timeout."""
    from llmfinetune_agent.chat.config import ChatConfig

    system = {"role": "system", "content": ChatConfig(model="-", tools=TOOLS_USED).system_text()}
    calculation = [
        {"role": "user", "content": CALCULATOR_QUESTION},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [_call("calculator", {"expression": "2 + 3"})],
        },
        {"role": "tool", "name": "calculator", "content": "5"},
        {"role": "assistant", "content": CALCULATOR_ANSWER},
    ]
    return [
        [system, *calculation],
        [system, *calculation, *calculation],  # the same question again, later in a chat
        [
            system,
            {"role": "user", "content": PROGRAM_REQUEST},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [_call("python", {"code": "while True: pass"})],
            },
            {"role": "tool", "name": "python", "content": timeout_text},
            {"role": "assistant", "content": PROGRAM_ANSWER},
        ],
    ]


@functools.cache
def fitted_tool_model() -> Path:
    """The fitted model, built once per test session (every test module shares it);
    FINETUNE_AGENT_TEST_TOOL_MODEL names one built earlier, to rerun the tests faster."""
    prebuilt = os.environ.get("FINETUNE_AGENT_TEST_TOOL_MODEL")
    if prebuilt:
        return Path(prebuilt)
    return build_tool_model(Path(tempfile.mkdtemp(prefix="tool-model-")))


def build_tool_model(output_dir: Path, *, max_steps: int = 400) -> Path:
    """A narrow tiny Llama (64 wide: a quarter of the default's compute) fitted to the
    conversations (with the chat's real tool schemas in the prompt) until its loss is near
    zero; saved to `output_dir`."""
    import torch
    from langchain_core.utils.function_calling import convert_to_openai_tool
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmfinetune_agent.tools.python_sandbox import SandboxLimits, SandboxResult
    from llmfinetune_agent.tools.registry import build_tools
    from models.builtin import build_tiny_llama
    from models.tool_chat import tokenize_tool_chat

    base_dir = build_tiny_llama(output_dir / "base", hidden_size=64)
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    limits = SandboxLimits(timeout_seconds=3)
    schemas = [
        convert_to_openai_tool(t)
        for t in build_tools(TOOLS_USED, limits=limits, allowed_modules=[])
    ]
    timeout_text = SandboxResult("", "", 137, timed_out=True).as_text()
    examples = [tokenize_tool_chat(tokenizer, c, schemas) for c in conversations(timeout_text)]
    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), tokenizer.pad_token_id)
    labels = torch.full((len(examples), width), -100)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example["input_ids"])
        ids[row, :n] = torch.tensor(example["input_ids"])
        mask[row, :n] = 1
        trained = [
            t if m else -100
            for t, m in zip(example["input_ids"], example["completion_mask"], strict=True)
        ]
        labels[row, :n] = torch.tensor(trained)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(max_steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        if loss.item() < 0.01:  # greedy decoding repeats every token by then
            break
    fitted = output_dir / "fitted"
    model.save_pretrained(fitted)
    tokenizer.save_pretrained(fitted)
    return fitted
