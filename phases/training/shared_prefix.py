"""Compute a batch's common prefix once instead of once per row (SFT on chat data).

Chat rows rendered through a template start alike: SmolLM2's default system turn and the
user header are the first 24 of the quickstart's ~67 tokens in every row. Without dropout a
decoder computes exactly the same keys, values and hidden states for that prefix in every row,
so the backbone runs it once (batch 1), repeats its key/value cache across the batch, and runs
only the rows' own suffixes on top. Gradients from all rows flow back into the one prefix
computation, so losses and gradients match the plain forward up to float rounding.
"""

import functools
import inspect

import torch
from transformers.modeling_outputs import BaseModelOutputWithPast

# Below this many shared tokens the second backbone call costs more than it saves.
MIN_SHARED_TOKENS = 16
# Model families whose cached forward (key/value cache, positions, padding mask) is the plain
# one's; each is checked against the plain forward in the tests.
FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "gpt2")


def common_prefix_length(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> int:
    """Leading positions where every row holds the same real (unpadded) token, capped so that
    each row keeps at least one token of its own."""
    same = (input_ids == input_ids[:1]).all(dim=0) & attention_mask.bool().all(dim=0)
    differing = (~same).nonzero()
    length = int(differing[0]) if len(differing) else same.numel()
    return min(length, input_ids.shape[1] - 1)


def dropout_active(model: torch.nn.Module) -> bool:
    """Whether a training forward would drop anything: rows would then differ on the prefix."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout) and module.p > 0:
            return True
    config = getattr(model, "config", None)
    return any(
        (getattr(config, name, 0) or 0) > 0
        for name in ("attention_dropout", "hidden_dropout", "attn_pdrop", "resid_pdrop")
    )


def share_common_prefix(backbone: torch.nn.Module) -> bool:
    """Patch `backbone` (the decoder under the LM head) to compute a shared prefix once.

    Returns False, leaving it untouched, for a family not known to work this way or a model
    with dropout (each row then sees its own dropout on the prefix). Calls that are not a
    plain padded batch (a cache, embeddings, extra outputs) go to the original forward.
    """
    family = getattr(getattr(backbone, "config", None), "model_type", None)
    if family not in FAMILIES or dropout_active(backbone):
        return False
    original = backbone.forward
    params = inspect.signature(original).parameters
    cache_arg = "cache" if "cache" in params else "past_key_values"

    @functools.wraps(original)
    def forward(*args, **kwargs):
        shared = 0 if len(args) > 1 else _shared_length(*args, **kwargs)
        # Activation checkpointing turns the key/value cache off, and with it this path.
        if shared < MIN_SHARED_TOKENS or getattr(backbone, "gradient_checkpointing", False):
            return original(*args, **kwargs)
        input_ids = args[0] if args else kwargs["input_ids"]
        return _prefix_once(original, cache_arg, input_ids, kwargs["attention_mask"], shared)

    backbone.forward = forward
    return True


def _shared_length(input_ids=None, attention_mask=None, position_ids=None, **kwargs) -> int:
    """The prefix length to share, 0 for a call this path does not cover."""
    # PEFT and TRL pass the defaults explicitly (output_attentions=None, return_dict=True...).
    asked = {name for name, value in kwargs.items() if value is not None and value is not False}
    tuple_asked = kwargs.get("return_dict") is False
    if asked - {"return_dict"} or tuple_asked or position_ids is not None or input_ids is None:
        return 0
    if attention_mask is None or attention_mask.dim() != 2 or input_ids.dim() != 2:
        return 0
    if input_ids.shape[0] < 2:
        return 0
    return common_prefix_length(input_ids, attention_mask)


def _prefix_once(original, cache_arg: str, input_ids, attention_mask, shared: int):
    """The backbone's output for the batch, its first `shared` positions computed once."""
    rows = input_ids.shape[0]
    prefix = original(
        input_ids=input_ids[:1, :shared],
        attention_mask=attention_mask[:1, :shared],
        use_cache=True,
    )
    cache = getattr(prefix, cache_arg)
    cache.batch_repeat_interleave(rows)  # differentiable: each row's gradient sums back
    suffix = original(
        input_ids=input_ids[:, shared:],
        attention_mask=attention_mask,
        use_cache=True,
        **{cache_arg: cache},
    )
    hidden = torch.cat(
        [prefix.last_hidden_state.expand(rows, -1, -1), suffix.last_hidden_state], dim=1
    )
    return BaseModelOutputWithPast(last_hidden_state=hidden)
