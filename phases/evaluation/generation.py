"""Batched generation and teacher-forced reference loss, tokenized the way training sees data.

Prompt tokens follow TRL's SFT: a chat is rendered with the tokenizer's chat template
(messages[:-1] plus the generation prompt), a prompt/completion pair is the raw prompt text
with no template, and the reference is what follows (the completion plus eos).
"""

from collections.abc import Callable

from phases.evaluation.errors import EvaluationInputError
from phases.evaluation.eval_data import EvalExample

Progress = Callable[[int, int], None]


def _chat_ids(tokenizer, messages: list[dict], add_generation_prompt: bool) -> list[int]:
    if not getattr(tokenizer, "chat_template", None):
        raise EvaluationInputError(
            "The eval data is chat, but the model's tokenizer has no chat template; set "
            "model.chat_template in the run config."
        )
    encoded = tokenizer.apply_chat_template(
        messages, add_generation_prompt=add_generation_prompt, tokenize=True, return_dict=True
    )
    return list(encoded["input_ids"])


def prompt_ids(tokenizer, example: EvalExample) -> list[int]:
    """Token ids the model is given to answer `example`."""
    if example.kind == "chat":
        return _chat_ids(tokenizer, example.prompt, add_generation_prompt=True)
    return list(tokenizer(example.prompt)["input_ids"])


def teacher_forcing_ids(tokenizer, example: EvalExample) -> tuple[list[int], int]:
    """(ids of prompt + reference, index of the first reference token), as TRL SFT builds them."""
    eos = tokenizer.eos_token or ""
    if example.kind == "text":
        ids = list(tokenizer(example.text + eos)["input_ids"])
        return ids, 1  # the first token has no context to be predicted from
    if example.kind == "chat":
        messages = [*example.prompt, {"role": "assistant", "content": example.reference}]
        full = _chat_ids(tokenizer, messages, add_generation_prompt=False)
    else:
        reference = example.reference
        full = list(
            tokenizer(example.prompt + reference + ("" if reference.endswith(eos) else eos))[
                "input_ids"
            ]
        )
    prompt = prompt_ids(tokenizer, example)
    start = 0  # where prompt and prompt+reference diverge (TRL's common_prefix_length)
    while start < min(len(prompt), len(full)) and prompt[start] == full[start]:
        start += 1
    return full, max(start, 1)


def _pad_id(tokenizer) -> int:
    pad = tokenizer.pad_token_id
    return pad if pad is not None else tokenizer.eos_token_id


def _left_padded(sequences: list[list[int]], pad_id: int):
    import torch

    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, width - len(ids) :] = 1
    return input_ids, attention_mask


def _until_eos(ids: list[int], eos_ids: set[int]) -> list[int]:
    for i, token in enumerate(ids):
        if token in eos_ids:
            return ids[:i]
    return ids


def _eos_ids(model, tokenizer) -> set[int]:
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = set(configured if isinstance(configured, list) else [configured])
    ids.add(tokenizer.eos_token_id)
    return {i for i in ids if i is not None}


def generate_answers(
    model,
    tokenizer,
    examples: list[EvalExample],
    *,
    max_new_tokens: int,
    batch_size: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    progress: Progress | None = None,
) -> list[str]:
    """The model's answer to each example: left-padded batches, new tokens only, cut at eos."""
    import torch

    pad_id, eos_ids = _pad_id(tokenizer), _eos_ids(model, tokenizer)
    sampling = (
        {"do_sample": True, "temperature": temperature} if do_sample else {"do_sample": False}
    )
    if not do_sample:  # silence "temperature is set but do_sample=False" from the model's config
        sampling.update(temperature=None, top_p=None, top_k=None)
    answers: list[str] = []
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        input_ids, attention_mask = _left_padded([prompt_ids(tokenizer, e) for e in batch], pad_id)
        with torch.no_grad():
            output = model.generate(
                input_ids=input_ids.to(model.device),
                attention_mask=attention_mask.to(model.device),
                max_new_tokens=max_new_tokens,
                pad_token_id=pad_id,
                eos_token_id=sorted(eos_ids),
                **sampling,
            )
        for row in output[:, input_ids.shape[1] :].tolist():
            answers.append(tokenizer.decode(_until_eos(row, eos_ids), skip_special_tokens=True))
        if progress:
            progress(len(answers), len(examples))
    return answers


def reference_loss(
    model, tokenizer, examples: list[EvalExample], *, batch_size: int
) -> tuple[float, int]:
    """(sum of token cross-entropy over the reference tokens, number of those tokens)."""
    import torch
    import torch.nn.functional as F

    total, count = 0.0, 0
    for start in range(0, len(examples), batch_size):
        pairs = [teacher_forcing_ids(tokenizer, e) for e in examples[start : start + batch_size]]
        width = max(len(ids) for ids, _ in pairs)
        input_ids = torch.full((len(pairs), width), _pad_id(tokenizer), dtype=torch.long)
        labels = torch.full((len(pairs), width), -100, dtype=torch.long)
        attention_mask = torch.zeros((len(pairs), width), dtype=torch.long)
        for row, (ids, first) in enumerate(pairs):  # right padding: positions start at 0
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention_mask[row, : len(ids)] = 1
            labels[row, first : len(ids)] = torch.tensor(ids[first:])
        with torch.no_grad():
            logits = model(
                input_ids=input_ids.to(model.device), attention_mask=attention_mask.to(model.device)
            ).logits.float()
        shifted = labels[:, 1:].to(logits.device)
        loss = F.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]),
            shifted.reshape(-1),
            ignore_index=-100,
            reduction="sum",
        )
        total += float(loss)
        count += int((shifted != -100).sum())
    return total, count
