"""The fused LoRA forward computes PEFT's sums exactly, and steps aside where it is not sure."""

import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from phases.training.lora_fusion import fuse_lora_updates


def _lora_model(**lora) -> torch.nn.Module:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    settings = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": "all-linear"}
    model = get_peft_model(LlamaForCausalLM(config), LoraConfig(**{**settings, **lora}))
    for name, parameter in model.named_parameters():
        if "lora_B" in name:  # PEFT starts B at zero, which would hide a wrong update
            torch.nn.init.normal_(parameter, std=0.1)
    return model


def _loss_and_grads(model: torch.nn.Module) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad()
    ids = torch.randint(0, 64, (3, 7), generator=torch.Generator().manual_seed(1))
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.item(), grads


def test_fused_forward_gives_the_same_loss_and_gradients() -> None:
    plain = _lora_model()
    fused = copy.deepcopy(plain)
    assert fuse_lora_updates(fused) == 2 * 7  # q k v o gate up down in each layer
    plain_loss, plain_grads = _loss_and_grads(plain)
    fused_loss, fused_grads = _loss_and_grads(fused)
    assert fused_loss == pytest.approx(plain_loss, rel=1e-6)
    assert plain_grads.keys() == fused_grads.keys() and any("lora_A" in k for k in plain_grads)
    for name, grad in plain_grads.items():
        torch.testing.assert_close(fused_grads[name], grad, rtol=1e-5, atol=1e-6, msg=name)


def test_disabled_or_merged_adapters_and_other_variants_keep_pefts_forward() -> None:
    model = _lora_model()
    fuse_lora_updates(model)
    ids = torch.randint(0, 64, (2, 5))
    with torch.no_grad():
        tuned = model(input_ids=ids).logits
        with model.disable_adapter():  # DPO's reference: the base model alone
            base = model(input_ids=ids).logits
        model.merge_adapter()
        merged = model(input_ids=ids).logits
        model.unmerge_adapter()
        again = model(input_ids=ids).logits
    reference = _lora_model()
    with torch.no_grad(), reference.disable_adapter():
        torch.testing.assert_close(base, reference(input_ids=ids).logits)
    assert not torch.allclose(tuned, base)
    torch.testing.assert_close(merged, tuned, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(again, tuned)

    dora = _lora_model(use_dora=True)
    expected = dora(input_ids=ids).logits
    fuse_lora_updates(dora)  # fused forward installed, but it hands DoRA back to PEFT
    torch.testing.assert_close(dora(input_ids=ids).logits, expected)


def test_bfloat16_autocast_runs_fused() -> None:
    plain = _lora_model()
    fused = copy.deepcopy(plain)
    fuse_lora_updates(fused)
    ids = torch.randint(0, 64, (2, 5))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = plain(input_ids=ids, labels=ids).loss
        got = fused(input_ids=ids, labels=ids).loss
    got.backward()
    assert got.item() == pytest.approx(expected.item(), rel=2e-2)
