"""One generation module for the evaluator, the agents' chat model and the API, on the tiny Llama.

Random weights never write `</s>`, so the fixture's model also ends at a token it writes often
(a generation config may list several eos ids, as Llama 3's does): completions then end at
different steps, and batched rows really get padding after their end.
"""

from pathlib import Path

import pytest

from models.config import ModelConfig
from models.generation import (
    cut_to_length,
    encode_prompt,
    eos_ids,
    generate_completions,
    render_chat,
)
from models.loading import load_model_and_tokenizer

PROMPTS = [
    "Alice is 30 years old and lives in Paris.",
    "Bob lives in Oslo.",
    "hello",
    "Tell me about Emma, who is a doctor in Rome and works at a large house",
]
MAX_NEW = 16


def _often_written_token(model, tokenizer) -> int:
    """The 4th token of the greedy completion of PROMPTS[0]: made an eos id, it ends that
    completion early (and others where they write it, if they do)."""
    ids = encode_prompt(tokenizer, PROMPTS[0], templated=False)
    [first] = generate_completions(model, tokenizer, [ids], max_new_tokens=MAX_NEW)
    return first.ids[3]


@pytest.fixture(scope="module")
def ending_model(tiny_model_dir: Path):
    """The tiny Llama for generation, whose completions end early at a second eos id."""
    model, tokenizer = load_model_and_tokenizer(str(tiny_model_dir), for_generation=True)
    ender = _often_written_token(model, tokenizer)
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, ender]
    return model, tokenizer


def _prompt_ids(tokenizer) -> list[list[int]]:
    """PROMPTS as raw text, and two as one-turn chats: prompts of many lengths."""
    chats = [render_chat(tokenizer, [{"role": "user", "content": p}]) for p in PROMPTS[1:3]]
    return [encode_prompt(tokenizer, p, templated=False) for p in PROMPTS] + [
        encode_prompt(tokenizer, c, templated=True) for c in chats
    ]


def test_a_rendered_chat_is_tokenized_as_apply_chat_template_does(ending_model) -> None:
    _, tokenizer = ending_model
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    text = render_chat(tokenizer, messages)
    assert text == "<|system|>\nS</s>\n<|user|>\nU</s>\n<|assistant|>\n"
    templated = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    assert encode_prompt(tokenizer, text, templated=True) == list(templated)
    assert encode_prompt(tokenizer, "hello", templated=False) == tokenizer("hello")["input_ids"]


def test_greedy_batches_equal_one_by_one_and_end_at_an_eos(ending_model) -> None:
    model, tokenizer = ending_model
    prompts = _prompt_ids(tokenizer)
    assert len({len(p) for p in prompts}) == len(prompts)  # batches really are left-padded
    batched = generate_completions(model, tokenizer, prompts, max_new_tokens=MAX_NEW, batch_size=4)
    alone = generate_completions(model, tokenizer, prompts, max_new_tokens=MAX_NEW, batch_size=1)
    assert batched == alone
    assert batched == generate_completions(model, tokenizer, prompts, max_new_tokens=MAX_NEW)
    ended = [c for c in batched if c.ended]
    assert ended and len(ended) < len(batched)  # some end early, some run to the limit
    assert all(len(c.ids) < MAX_NEW for c in ended)
    assert all(len(c.ids) == MAX_NEW for c in batched if not c.ended)
    ends = eos_ids(model, tokenizer)
    assert not any(token in ends for c in batched for token in c.ids)


def test_only_the_new_tokens_up_to_the_end_are_decoded(ending_model) -> None:
    import torch

    model, tokenizer = ending_model
    ids = encode_prompt(tokenizer, PROMPTS[0], templated=False)
    [completion] = generate_completions(model, tokenizer, [ids], max_new_tokens=MAX_NEW)
    with torch.no_grad():
        full = model.generate(
            input_ids=torch.tensor([ids]), max_new_tokens=MAX_NEW, do_sample=False
        )
    written = full[0].tolist()
    assert written[: len(ids)] == ids  # transformers returns prompt + completion
    assert completion.ended and written[len(ids) :] == [*completion.ids, written[-1]]
    assert written[-1] in eos_ids(model, tokenizer)
    assert completion.text == tokenizer.decode(completion.ids, skip_special_tokens=True)
    assert PROMPTS[0] not in completion.text


def test_seeded_sampling_repeats_and_differs_from_greedy(ending_model) -> None:
    model, tokenizer = ending_model
    prompts = _prompt_ids(tokenizer)[:3]

    def sample(seed: int):
        return generate_completions(
            model, tokenizer, prompts, max_new_tokens=MAX_NEW, do_sample=True, seed=seed
        )

    greedy = generate_completions(model, tokenizer, prompts, max_new_tokens=MAX_NEW)
    assert sample(1) == sample(1)
    assert sample(1) != sample(2)
    assert sample(1) != greedy


def test_a_greedy_completion_cut_to_a_limit_is_the_one_generated_with_it(ending_model) -> None:
    model, tokenizer = ending_model
    prompts = _prompt_ids(tokenizer)
    longest = generate_completions(model, tokenizer, prompts, max_new_tokens=MAX_NEW)
    assert {c.ended for c in longest} == {True, False}
    for limit in (1, 3, 4, 5, MAX_NEW - 1):
        cut = [cut_to_length(tokenizer, c, limit) for c in longest]
        assert cut == generate_completions(model, tokenizer, prompts, max_new_tokens=limit)


def test_the_evaluator_chat_model_and_api_answer_as_this_module(
    ending_model, tiny_model_dir: Path
) -> None:
    import torch

    from api.generation import generate
    from api.generation_batching import GenerationBatcher
    from api.schemas import GenerateRequest
    from llmfinetune_agent.chat_model import LocalChatModel
    from phases.evaluation.eval_data import EvalExample
    from phases.evaluation.generation import generate_answers

    model, tokenizer = ending_model
    chats = [[{"role": "user", "content": p}] for p in PROMPTS[:3]]
    ids = [encode_prompt(tokenizer, render_chat(tokenizer, c), templated=True) for c in chats]
    greedy = generate_completions(model, tokenizer, ids, max_new_tokens=MAX_NEW)

    examples = [EvalExample(kind="chat", prompt=c, reference="") for c in chats]
    answers = generate_answers(model, tokenizer, examples, max_new_tokens=MAX_NEW, batch_size=2)
    assert answers == [c.text for c in greedy]

    for chat, completion in zip(chats, greedy, strict=True):
        request = GenerateRequest(messages=chat, max_new_tokens=MAX_NEW)
        reply = generate(GenerationBatcher(model, tokenizer), request)
        assert reply["text"] == completion.text
        assert reply["completion_tokens"] == len(completion.ids) + completion.ended

    adapter = LocalChatModel(
        local_model=ModelConfig(name_or_path=str(tiny_model_dir)), max_new_tokens=MAX_NEW
    )
    adapter._model()[0].generation_config.eos_token_id = model.generation_config.eos_token_id
    torch.manual_seed(7)
    replies = adapter.generate_texts(chats)
    sampled = generate_completions(
        model,
        tokenizer,
        ids,
        max_new_tokens=MAX_NEW,
        batch_size=adapter.batch_size,
        do_sample=True,
        temperature=adapter.temperature,
        top_p=adapter.top_p,
        seed=7,
    )
    assert replies == [c.text.strip() for c in sampled]


def test_a_stop_string_ends_its_row_and_is_cut_off(ending_model) -> None:
    model, tokenizer = ending_model
    prompts = _prompt_ids(tokenizer)
    free = generate_completions(model, tokenizer, prompts, max_new_tokens=MAX_NEW, batch_size=8)
    longest = max(free, key=lambda c: len(c.ids))
    # A stop string written mid-way by the longest completion: text two tokens in, to five.
    stop = tokenizer.decode(longest.ids[2:5], skip_special_tokens=True).strip()
    assert stop and stop in longest.text
    stopped = generate_completions(
        model, tokenizer, prompts, max_new_tokens=MAX_NEW, batch_size=8, stop=[stop]
    )
    for before, after in zip(free, stopped, strict=True):
        if stop in before.text:
            assert after.ended and after.text == before.text[: before.text.find(stop)]
            assert len(after.ids) < len(before.ids)  # it generated no further
        else:
            assert after == before
