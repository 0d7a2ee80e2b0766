"""Resolving model references and loading models/tokenizers: devices, padding, adapters, errors."""

import json
import os
import shutil
from pathlib import Path

import pytest

from models import ModelConfig
from models.loading import (
    ModelLoadError,
    load_model,
    load_model_and_tokenizer,
    load_tokenizer,
    resolve_device,
    resolve_model_path,
)


def test_resolve_device() -> None:
    import torch

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_builtin_is_built_once_into_the_cache(tmp_path: Path, _isolated_home: Path) -> None:
    path = Path(resolve_model_path("builtin:tiny-llama"))
    assert path == _isolated_home / "models" / "builtin" / "tiny-llama"
    assert (path / "config.json").is_file() and (path / "tokenizer.json").is_file()
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert resolve_model_path(ModelConfig(name_or_path="builtin:tiny-llama")) == str(path)
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp
    # Only the finished model is left behind, no staging directories.
    assert [p.name for p in path.parent.iterdir()] == ["tiny-llama"]

    other = Path(resolve_model_path("builtin:tiny-llama", cache_dir=tmp_path / "cache"))
    assert other == tmp_path / "cache" / "builtin" / "tiny-llama"


def test_unknown_builtin_lists_available() -> None:
    with pytest.raises(ModelLoadError, match=r"unknown built-in model 'gpt5'.*builtin:tiny-llama"):
        resolve_model_path("builtin:gpt5")


def test_local_paths(tmp_path: Path, tiny_model_dir: Path) -> None:
    assert resolve_model_path(str(tiny_model_dir)) == str(tiny_model_dir.resolve())
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match=f"{empty}.*no config.json"):
        resolve_model_path(str(empty))
    for missing in ("./models/nope", str(tmp_path / "nope"), "~/nope-model", "a/b/c", "x.gguf"):
        with pytest.raises(ModelLoadError, match="model path not found"):
            resolve_model_path(missing)
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hi")
    with pytest.raises(ModelLoadError, match="is a file"):
        resolve_model_path(str(text_file))
    assert resolve_model_path("HuggingFaceTB/SmolLM2-135M") == "HuggingFaceTB/SmolLM2-135M"


def test_an_empty_reference_or_a_pipe_is_not_a_model(tmp_path: Path) -> None:
    """`--model ""` (a pydantic dump before) and a path that exists but is a pipe or a device
    ("not found" before, or a hub id when it looked like one) say what they are."""
    for empty in ("", "  "):
        with pytest.raises(ModelLoadError, match="the model reference is empty"):
            resolve_model_path(empty)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    for name in (str(pipe), "/dev/null"):
        with pytest.raises(ModelLoadError, match="is not a regular file or directory"):
            resolve_model_path(name)


def test_hub_id_offline_names_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    name = "nonexistent-org/nonexistent-model-xyz"
    for load in (load_model, load_tokenizer):
        with pytest.raises(ModelLoadError) as caught:
            load(name)
        message = str(caught.value)
        assert name in message
        assert "local model directory" in message and "network" in message


def test_padding_sides_and_pad_ids(tiny_model_dir: Path) -> None:
    model, tokenizer = load_model_and_tokenizer(str(tiny_model_dir))
    assert tokenizer.padding_side == "right" and model.training
    model, tokenizer = load_model_and_tokenizer(str(tiny_model_dir), for_generation=True)
    assert tokenizer.padding_side == "left" and not model.training
    assert tokenizer.pad_token == "<pad>"
    assert model.config.pad_token_id == model.generation_config.pad_token_id
    assert model.config.pad_token_id == tokenizer.pad_token_id
    assert str(model.device) == "cpu"


def test_batched_greedy_generation_matches_unbatched(tiny_model_dir: Path) -> None:
    import torch

    model, tokenizer = load_model_and_tokenizer(str(tiny_model_dir), for_generation=True)
    prompts = ["Alice is 30 years old and lives in Paris.", "Hello"]
    kwargs = {"max_new_tokens": 6, "min_new_tokens": 6, "do_sample": False}
    with torch.no_grad():
        batch = tokenizer(prompts, return_tensors="pt", padding=True)
        assert batch["attention_mask"][1, 0] == 0  # the short prompt is padded on the left
        together = model.generate(**batch, **kwargs)[:, batch["input_ids"].shape[1] :]
        for row, prompt in enumerate(prompts):
            single = tokenizer(prompt, return_tensors="pt")
            alone = model.generate(**single, **kwargs)[0, single["input_ids"].shape[1] :]
            assert together[row].tolist() == alone.tolist()


def test_pad_falls_back_to_unk_and_chat_template_override(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    no_pad = tmp_path / "no-pad"
    shutil.copytree(tiny_model_dir, no_pad)
    settings = json.loads((no_pad / "tokenizer_config.json").read_text())
    settings.pop("pad_token", None)
    (no_pad / "tokenizer_config.json").write_text(json.dumps(settings))
    tokenizer = load_tokenizer(str(no_pad))
    assert tokenizer.pad_token == tokenizer.unk_token == "<unk>"

    template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    config = ModelConfig(name_or_path=str(tiny_model_dir), chat_template=template)
    tokenizer = load_tokenizer(config, padding_side="left")
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert rendered == "[user] hi\n" and tokenizer.padding_side == "left"


def test_dtype_choice(tiny_model_dir: Path) -> None:
    import torch

    assert load_model(str(tiny_model_dir)).dtype == torch.float32
    config = ModelConfig(name_or_path=str(tiny_model_dir), dtype="bfloat16")
    assert load_model(config).dtype == torch.bfloat16


def test_adapter_directory_loads_base_plus_adapter(tmp_path: Path, tiny_model_dir: Path) -> None:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.tensor([[5, 100, 200, 300, 2]])
    with torch.no_grad():
        base_logits = base(ids).logits
    lora = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():  # LoRA starts as a no-op; make it visible in the logits
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
        adapted_logits = lora(ids).logits
    adapter_dir = tmp_path / "adapter"
    lora.save_pretrained(adapter_dir)
    assert not (adapter_dir / "config.json").exists()

    model = load_model(str(adapter_dir), for_training=False)
    assert isinstance(model, PeftModel) and not model.training
    with torch.no_grad():
        logits = model(ids).logits
    assert torch.allclose(logits, adapted_logits, atol=1e-5)
    assert not torch.allclose(logits, base_logits, atol=1e-3)

    trainable = load_model(str(adapter_dir), for_training=True)
    names = [name for name, p in trainable.named_parameters() if p.requires_grad]
    assert names and all("lora_" in name for name in names)
    tokenizer = load_tokenizer(str(adapter_dir))  # no tokenizer saved: the base model's is used
    assert tokenizer.eos_token == "</s>"


def test_adapter_without_base_model_is_explained(tmp_path: Path) -> None:
    adapter_dir = tmp_path / "adapter"
    adapter_dir.mkdir()
    (adapter_dir / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    with pytest.raises(ModelLoadError, match="base_model_name_or_path"):
        load_model(str(adapter_dir))


def test_broken_model_directory_is_explained(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot load model"):
        load_model(str(broken))


def test_adapter_with_missing_base_names_the_adapter(tmp_path: Path) -> None:
    adapter_dir = tmp_path / "adapter"
    adapter_dir.mkdir()
    settings = {"peft_type": "LORA", "base_model_name_or_path": str(tmp_path / "gone")}
    (adapter_dir / "adapter_config.json").write_text(json.dumps(settings))
    with pytest.raises(ModelLoadError, match=f"base model of adapter {adapter_dir}.*not found"):
        load_model(str(adapter_dir))
