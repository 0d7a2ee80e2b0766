"""Turning prompts into completions with a loaded causal LM and its tokenizer.

The evaluator, the agents' chat model and the API's generate endpoint all call this:

    ids = [encode_prompt(tokenizer, render_chat(tokenizer, messages), templated=True)]
    [completion] = generate_completions(model, tokenizer, ids, max_new_tokens=32)
    completion.text  # the new tokens only, cut at the first end token

Prompts are left-padded into batches (so every row ends where generation starts), so a
prompt's greedy completion is the same alone or in a batch. torch is imported on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Progress = Callable[[int, int], None]
"""Called after each batch with (prompts done, prompts in all)."""


@dataclass(frozen=True)
class Completion:
    """What the model wrote after one prompt."""

    text: str
    """The new tokens before the first end token, decoded without special tokens."""
    ids: list[int]
    """Those tokens' ids (the end token and any padding left out)."""
    ended: bool
    """Whether the model wrote an end token (False: it ran to `max_new_tokens`)."""


def has_chat_template(tokenizer: Any) -> bool:
    """Whether the tokenizer can render a conversation (it has a chat template)."""
    return bool(getattr(tokenizer, "chat_template", None))


def render_chat(
    tokenizer: Any, messages: list[dict[str, str]], *, add_generation_prompt: bool = True
) -> str:
    """The conversation rendered with the chat template, by default ending where the
    assistant's reply starts."""
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def encode_prompt(
    tokenizer: Any, text: str, *, templated: bool, max_length: int | None = None
) -> list[int]:
    """Token ids of a prompt; `max_length` cuts it on the tokenizer's truncation side.

    A rendered chat template already holds the special tokens (BOS) it wants, so only plain
    text gets the tokenizer's own — as `apply_chat_template(tokenize=True)` and TRL do.
    """
    encoded = tokenizer(
        text,
        add_special_tokens=not templated,
        truncation=max_length is not None,
        max_length=max_length,
    )
    return list(encoded["input_ids"])


def context_window(model: Any) -> int | None:
    """How many tokens (prompt plus completion) the model can attend to, if it says."""
    return getattr(model.config, "max_position_embeddings", None)


def pad_id(tokenizer: Any) -> int:
    """The id to pad with: the tokenizer's pad token, else its eos."""
    pad = tokenizer.pad_token_id
    return pad if pad is not None else tokenizer.eos_token_id


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """Every id that ends a completion: the model's configured eos ids and the tokenizer's."""
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = set(configured if isinstance(configured, list) else [configured])
    ids.add(tokenizer.eos_token_id)
    return {i for i in ids if i is not None}


def _sampling(
    do_sample: bool,
    *,
    temperature: float | None = None,
    top_p: float | None = None,
    top_k: int | None = None,
) -> dict[str, Any]:
    """`generate` arguments for greedy or sampled decoding; an unset knob keeps the model's
    own default."""
    if not do_sample:  # silence "temperature is set but do_sample=False" from the model's config
        return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    knobs = {"temperature": temperature, "top_p": top_p, "top_k": top_k}
    return {"do_sample": True, **{name: v for name, v in knobs.items() if v is not None}}


def generate_completions(
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    *,
    max_new_tokens: int,
    batch_size: int = 8,
    do_sample: bool = False,
    temperature: float | None = None,
    top_p: float | None = None,
    top_k: int | None = None,
    seed: int | None = None,
    stop: list[str] | None = None,
    progress: Progress | None = None,
) -> list[Completion]:
    """The model's completion of each prompt (token ids), generated `batch_size` at a time.

    Greedy unless `do_sample`; `seed` seeds torch first, for reproducible sampling. A row that
    writes one of the `stop` strings generates no further (the batch ends when every row has
    ended), and its text is cut before the string.
    """
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    sampling = _sampling(do_sample, temperature=temperature, top_p=top_p, top_k=top_k)
    completions: list[Completion] = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        completions += _generate_batch(model, tokenizer, batch, max_new_tokens, sampling, stop)
        if progress:
            progress(len(completions), len(prompts))
    return completions


def stream_completion(
    model: Any,
    tokenizer: Any,
    prompt: list[int],
    *,
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float | None = None,
    top_p: float | None = None,
    top_k: int | None = None,
) -> Iterator[str]:
    """The completion of one prompt as it is generated: pieces of text whose concatenation is
    the completion (special tokens left out). Closing the iterator early stops generation
    at the next token. Greedy unless `do_sample`, token for token what `generate_completions`
    writes for the same prompt."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

    closed = threading.Event()

    class _Closed(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return closed.is_set()

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    pad, ends = pad_id(tokenizer), eos_ids(model, tokenizer)
    failure: list[BaseException] = []

    def generate() -> None:
        try:
            with torch.no_grad():
                model.generate(
                    input_ids=torch.tensor([prompt], device=model.device),
                    attention_mask=torch.ones(
                        (1, len(prompt)), dtype=torch.long, device=model.device
                    ),
                    max_new_tokens=max_new_tokens,
                    pad_token_id=pad,
                    eos_token_id=sorted(ends),
                    streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([_Closed()]),
                    **_sampling(do_sample, temperature=temperature, top_p=top_p, top_k=top_k),
                )
        except BaseException as exc:  # re-raised in the reading thread
            failure.append(exc)
            streamer.end()

    worker = threading.Thread(target=generate, daemon=True)
    worker.start()
    try:
        yield from (piece for piece in streamer if piece)
    finally:
        closed.set()
        worker.join()
    if failure:
        raise failure[0]


def _generate_batch(
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    max_new_tokens: int,
    sampling: dict[str, Any],
    stop: list[str] | None = None,
) -> list[Completion]:
    import torch

    pad, ends = pad_id(tokenizer), eos_ids(model, tokenizer)
    input_ids, attention_mask = _left_padded(prompts, pad)
    stop = [s for s in stop or [] if s]
    stopping = {"stop_strings": stop, "tokenizer": tokenizer} if stop else {}
    with torch.no_grad():
        output = model.generate(
            input_ids=input_ids.to(model.device),
            attention_mask=attention_mask.to(model.device),
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            eos_token_id=sorted(ends),
            **stopping,
            **sampling,
        )
    rows = output[:, input_ids.shape[1] :].tolist()
    return [_completion(tokenizer, row, ends, stop, pad) for row in rows]


def _left_padded(sequences: list[list[int]], pad: int):
    import torch

    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, width - len(ids) :] = 1
    return input_ids, attention_mask


def _completion(
    tokenizer: Any,
    new_ids: list[int],
    ends: set[int],
    stop: list[str] | None = None,
    pad: int | None = None,
) -> Completion:
    # A row that ended early is padded up to the batch's longest; cut at its first end token.
    end = next((i for i, token in enumerate(new_ids) if token in ends), None)
    ids = new_ids if end is None else new_ids[:end]
    text = tokenizer.decode(ids, skip_special_tokens=True)
    cut = cut_at_stop(text, stop)
    if cut == text:
        return Completion(text=text, ids=ids, ended=end is not None)
    # Ended by a stop string: padding follows it; the ids keep the stop string's tokens.
    while ids and ids[-1] == pad:
        ids = ids[:-1]
    return Completion(text=cut, ids=ids, ended=True)


def cut_to_length(tokenizer: Any, completion: Completion, max_new_tokens: int) -> Completion:
    """`completion` as generating at most `max_new_tokens` would have written it.

    Greedy decoding picks each token from the ones before it only, so a completion generated
    with a larger limit starts with the tokens a smaller limit writes: cut to that limit it
    is the same completion (text, ids, whether it ended), as long as no stop strings applied.
    """
    ids = completion.ids
    if len(ids) < max_new_tokens or (len(ids) == max_new_tokens and not completion.ended):
        return completion  # it ended (or ran out) within the limit
    return _completion(tokenizer, ids[:max_new_tokens], ends=set())  # any end lies past it


def cut_at_stop(text: str, stop: list[str] | None) -> str:
    """`text` before the first of the `stop` strings it holds (all of it when none)."""
    cuts = [text.find(s) for s in stop or [] if s and s in text]
    return text[: min(cuts)] if cuts else text
