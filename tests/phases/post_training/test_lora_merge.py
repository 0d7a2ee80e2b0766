"""LoRA merge: the final model that `export_final_model` writes from an adapter computes
what the adapter on its base computes, loads with plain transformers, and is not the
base model; without `merge_lora` the adapter is copied as it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from phases.post_training.merge import export_final_model

PROMPTS = ["Alice lives in Paris. JSON:", "Where does Bob live? In Tokyo", "1 2 3 {"]


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter on every linear layer of the tiny Llama, saved the way training saves one.

    PEFT starts lora_B at zero (an adapter that changes nothing, which any merge would pass),
    so it is set to random values here.
    """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.05)
    adapter = tmp_path_factory.mktemp("lora") / "adapter"
    model.save_pretrained(adapter)
    return adapter


def _logits(model, tokenizer) -> torch.Tensor:
    batch = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits


def test_merged_model_computes_what_the_adapter_computes(
    adapter_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    final = export_final_model(adapter_dir, tmp_path / "final", merge_lora=True)

    assert not (final / "adapter_config.json").exists()  # a full model, no PEFT needed to load it
    merged = AutoModelForCausalLM.from_pretrained(final).eval()
    tokenizer = AutoTokenizer.from_pretrained(final)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    base_logits = _logits(base, tokenizer)
    adapted = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(adapter_dir)
    ).eval()

    merged_logits, adapter_logits = _logits(merged, tokenizer), _logits(adapted, tokenizer)
    assert torch.allclose(merged_logits, adapter_logits, atol=1e-4, rtol=1e-4), (
        (merged_logits - adapter_logits).abs().max()
    )
    # The adapter moved the model: a merge that dropped it (or merged nothing) must fail here.
    assert (merged_logits - base_logits).abs().max() > 0.05


def test_without_merge_lora_the_adapter_is_copied(adapter_dir: Path, tmp_path: Path) -> None:
    final = export_final_model(adapter_dir, tmp_path / "final", merge_lora=False)

    assert sorted(p.name for p in final.iterdir()) == sorted(p.name for p in adapter_dir.iterdir())
    assert json.loads((final / "adapter_config.json").read_text()) == json.loads(
        (adapter_dir / "adapter_config.json").read_text()
    )
    assert not (final / "model.safetensors").exists()
