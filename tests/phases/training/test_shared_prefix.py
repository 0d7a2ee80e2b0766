"""A batch's common prefix computed once: the same losses and gradients as the plain forward,
on every model family it is switched on for, and never where rows would differ."""

import copy
import json
from pathlib import Path

import pytest
import torch
from training_test_data import NAMES, write_jsonl

from phases.training import LoraSettings, SFTTraining, shared_prefix, train
from phases.training.shared_prefix import common_prefix_length, share_common_prefix

VOCAB = 120


@pytest.fixture
def shared_lengths(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The prefix length of each batch the shared path computes once, recorded as it runs."""
    lengths: list[int] = []
    once = shared_prefix._prefix_once
    monkeypatch.setattr(shared_prefix, "_prefix_once", lambda *a: lengths.append(a[-1]) or once(*a))
    return lengths


def _tiny(family: str, dropout: float = 0.0) -> torch.nn.Module:
    """A 2-layer, 32-wide causal LM of `family`, random weights."""
    import transformers

    sizes = {"vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 2}
    llama_like = {
        **sizes,
        "intermediate_size": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "attention_dropout": dropout,
    }
    configs = {
        "llama": ("LlamaConfig", "LlamaForCausalLM", llama_like),
        "mistral": ("MistralConfig", "MistralForCausalLM", llama_like),
        "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", llama_like),
        "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {**llama_like, "head_dim": 8}),
        "gpt2": (
            "GPT2Config",
            "GPT2LMHeadModel",
            {
                "vocab_size": VOCAB,
                "n_embd": 32,
                "n_layer": 2,
                "n_head": 4,
                **dict.fromkeys(("resid_pdrop", "embd_pdrop", "attn_pdrop"), dropout),
            },
        ),
    }
    config_cls, model_cls, settings = configs[family]
    torch.manual_seed(0)
    config = getattr(transformers, config_cls)(**settings)
    return getattr(transformers, model_cls)(config).train()


def _padded_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Four rows sharing their first 20 tokens, two of them right-padded; labels on the tail."""
    torch.manual_seed(1)
    prefix = torch.randint(3, VOCAB, (20,))
    ids = torch.stack([torch.cat([prefix, torch.randint(3, VOCAB, (12,))]) for _ in range(4)])
    mask = torch.ones_like(ids)
    mask[1, 26:] = 0
    mask[2, 29:] = 0
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :22] = -100
    return ids, mask, labels


def _loss_and_grads(model, ids, mask, labels) -> tuple[float, list[torch.Tensor], torch.Tensor]:
    model.zero_grad()
    hidden = model.base_model(input_ids=ids, attention_mask=mask, use_cache=False)
    hidden = hidden.last_hidden_state
    logits = model.get_output_embeddings()(hidden)[:, :-1]
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, VOCAB), labels[:, 1:].reshape(-1), ignore_index=-100
    )
    loss.backward()
    return loss.item(), [p.grad.clone() for p in model.parameters()], hidden[mask.bool()]


@pytest.mark.parametrize("family", ["llama", "mistral", "qwen2", "qwen3", "gpt2"])
def test_the_prefix_computed_once_gives_the_plain_losses_and_gradients(
    family: str, shared_lengths: list[int]
) -> None:
    plain = _tiny(family)
    shared = copy.deepcopy(plain)
    assert share_common_prefix(shared.base_model)
    batch = _padded_batch()
    loss, grads, hidden = _loss_and_grads(plain, *batch)
    shared_loss, shared_grads, shared_hidden = _loss_and_grads(shared, *batch)
    assert shared_lengths == [20]
    assert shared_loss == pytest.approx(loss, rel=1e-6)
    torch.testing.assert_close(shared_hidden, hidden, rtol=1e-5, atol=1e-6)
    for grad, shared_grad in zip(grads, shared_grads, strict=True):
        torch.testing.assert_close(shared_grad, grad, rtol=1e-4, atol=1e-6)


def test_the_shared_length_stops_at_padding_and_leaves_each_row_a_token() -> None:
    ids = torch.tensor([[5, 6, 7, 8], [5, 6, 7, 9], [5, 6, 7, 8]])
    assert common_prefix_length(ids, torch.ones_like(ids)) == 3
    # Row 1 is padding from position 2 on: a padded position is never shared.
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 1]])
    assert common_prefix_length(ids, mask) == 2
    same = torch.tensor([[5, 6, 7], [5, 6, 7]])
    assert common_prefix_length(same, torch.ones_like(same)) == 2


def test_dropout_or_an_unchecked_family_leaves_the_forward_as_it_is() -> None:
    for model in (_tiny("llama", dropout=0.1), _tiny("gpt2", dropout=0.1)):
        forward = model.base_model.forward
        assert not share_common_prefix(model.base_model)
        assert model.base_model.forward == forward
    other = _tiny("llama")
    other.base_model.config.model_type = "some-new-family"
    assert not share_common_prefix(other.base_model)


def test_calls_other_than_a_plain_padded_batch_take_the_plain_forward(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = _tiny("llama").eval()
    model = copy.deepcopy(plain)
    assert share_common_prefix(model.base_model)
    monkeypatch.setattr(shared_prefix, "_prefix_once", None)  # would fail if reached
    ids, mask, _ = _padded_batch()
    backbone = model.base_model
    backbone(input_ids=ids, attention_mask=mask, use_cache=True)
    backbone(inputs_embeds=backbone.embed_tokens(ids), attention_mask=mask)
    backbone(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    backbone(input_ids=ids, attention_mask=mask, position_ids=torch.arange(32).expand(4, -1))
    backbone(input_ids=ids)  # no padding mask
    # Generation runs on its cache, as before.
    prompt = {"input_ids": ids[:, :24], "attention_mask": mask[:, :24], "max_new_tokens": 4}
    assert torch.equal(model.generate(**prompt), plain.generate(**prompt))


def test_activation_checkpointing_takes_the_plain_forward(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = _tiny("llama")
    checkpointed = copy.deepcopy(plain)
    checkpointed.gradient_checkpointing_enable()
    assert share_common_prefix(checkpointed.base_model)
    monkeypatch.setattr(shared_prefix, "_prefix_once", None)  # would fail if reached
    batch = _padded_batch()
    assert _loss_and_grads(checkpointed, *batch)[0] == pytest.approx(
        _loss_and_grads(plain, *batch)[0], rel=1e-6
    )


def _system_chats(count: int) -> list[dict]:
    """Chats under one long system turn: every row starts with the same tokens."""
    system = "You extract the city a person lives in and answer with the city name alone."
    return [
        {
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": f"Where does {NAMES[i % 8]} live now?"},
                {"role": "assistant", "content": ["Paris", "Rome", "Oslo", "Lima"][i % 4]},
            ]
        }
        for i in range(count)
    ]


def test_lora_training_with_the_shared_prefix_follows_the_plain_one(
    tiny_model_dir: Path, tmp_path: Path, shared_lengths: list[int]
) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", _system_chats(16))
    losses = {}
    for share in (False, True):
        config = SFTTraining(
            max_steps=4,
            batch_size=4,
            learning_rate=2e-3,
            logging_steps=1,
            lora=LoraSettings(r=4, alpha=8, dropout=0.0),
            share_prefix=share,
        )
        result = train(
            config,
            model=str(tiny_model_dir),
            train_path=data,
            eval_path=None,
            output_dir=tmp_path / f"out-{share}",
            max_length=128,
        )
        assert result.status == "completed", result.message
        history = json.loads(Path(result.log_history_path).read_text())
        losses[share] = [entry["loss"] for entry in history if "loss" in entry]
        if not share:
            assert shared_lengths == []
    assert len(shared_lengths) == 4 and min(shared_lengths) >= 16
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)
    assert losses[True][-1] < losses[True][0]  # it learned, not just ran
