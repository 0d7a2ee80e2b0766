"""The built-in tiny Llama: builds fast, reloads as a normal HF model, deterministic per seed."""

import json
import time
from pathlib import Path

from models.builtin import build_tiny_llama

CHAT = [
    {"role": "system", "content": "You turn sentences into JSON."},
    {"role": "user", "content": "Alice is 30 and lives in Paris."},
    {"role": "assistant", "content": '{"name": "Alice", "age": 30, "city": "Paris"}'},
]


def test_reloads_and_generates(tiny_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert model.config.model_type == "llama"
    assert model.dtype == torch.float32
    assert model.config.max_position_embeddings == 1024
    special = (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token)
    assert special == ("<s>", "</s>", "<pad>")
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id

    inputs = tokenizer("Bob is 42 years old", return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 4


def test_tokenizer_round_trips_arbitrary_text(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = 'Zoë lives in Zürich — 東京 😀 {"k": [1.5e3, null]}\ttab'
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == text
    # The corpus taught it common words: "the" is one token, not three bytes.
    assert len(tokenizer(" the")["input_ids"]) == 1


def test_chat_template_ends_turns_with_eos_and_marks_assistant(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = tokenizer.apply_chat_template(CHAT, tokenize=False)
    assert text.count("</s>") == 3
    assert text.rstrip("\n").endswith('"Paris"}</s>')
    prompt = tokenizer.apply_chat_template(CHAT[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|assistant|>\n")

    enc = tokenizer.apply_chat_template(CHAT, return_dict=True, return_assistant_tokens_mask=True)
    masked = [i for i, m in zip(enc["input_ids"], enc["assistant_masks"], strict=True) if m]
    assert tokenizer.decode(masked) == CHAT[2]["content"] + "</s>"


def test_same_seed_same_model_other_seed_differs(tmp_path: Path, tiny_model_dir: Path) -> None:
    start = time.perf_counter()
    again = build_tiny_llama(tmp_path / "again")
    assert time.perf_counter() - start < 5
    other = build_tiny_llama(tmp_path / "other", seed=1)
    for name in ("model.safetensors", "tokenizer.json"):
        assert (again / name).read_bytes() == (tiny_model_dir / name).read_bytes()
    assert (other / "model.safetensors").read_bytes() != (again / "model.safetensors").read_bytes()
    assert json.loads((again / "config.json").read_text())["num_hidden_layers"] == 2


def test_size_arguments(tmp_path: Path) -> None:
    from transformers import AutoConfig

    path = build_tiny_llama(tmp_path / "m", hidden_size=64, num_layers=1, num_heads=2)
    config = AutoConfig.from_pretrained(path)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (64, 1, 2)
