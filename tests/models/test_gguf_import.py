"""GGUF import: a llama GGUF written here from the tiny model becomes a normal, trainable model."""

import json
from pathlib import Path

import numpy as np
import pytest

from models.gguf_import import import_gguf
from models.loading import ModelLoadError, load_model_and_tokenizer, resolve_model_path

_LAYER_TENSORS = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def _permute_like_llama_cpp(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp interleaves q/k rows per rotary pair; transformers reverses this on load."""
    rows = weights.shape[0]
    return (
        weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _add_tokenizer(writer, model_dir: Path) -> None:
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    vocab = dict(tokenizer["model"]["vocab"])
    vocab.update({added["content"]: added["id"] for added in tokenizer["added_tokens"]})
    tokens = sorted(vocab, key=vocab.get)
    special = {added["content"] for added in tokenizer["added_tokens"] if added["special"]}
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if token in special else 1 for token in tokens])  # 3 = control
    writer.add_token_merges([" ".join(pair) for pair in tokenizer["model"]["merges"]])
    writer.add_bos_token_id(vocab["<s>"])
    writer.add_eos_token_id(vocab["</s>"])
    writer.add_unk_token_id(vocab["<unk>"])
    writer.add_pad_token_id(vocab["<pad>"])
    writer.add_chat_template((model_dir / "chat_template.jinja").read_text())


def write_llama_gguf(model_dir: Path, gguf_path: Path) -> Path:
    """Write an HF Llama directory as an F32 GGUF file in llama.cpp's layout."""
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text())
    n_head, n_kv = config["num_attention_heads"], config["num_key_value_heads"]
    writer = gguf.GGUFWriter(gguf_path, "llama")
    writer.add_name("tiny-llama")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_dimension_count(config["hidden_size"] // n_head)
    writer.add_rope_freq_base(config["rope_parameters"]["rope_theta"])
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_vocab_size(config["vocab_size"])
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    _add_tokenizer(writer, model_dir)

    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
    }
    for layer in range(config["num_hidden_layers"]):
        for hf_name, gguf_name in _LAYER_TENSORS.items():
            names[f"model.layers.{layer}.{hf_name}.weight"] = f"blk.{layer}.{gguf_name}.weight"
    for hf_name, array in load_file(model_dir / "model.safetensors").items():
        if ".q_proj." in hf_name:
            array = _permute_like_llama_cpp(array, n_head)
        elif ".k_proj." in hf_name:
            array = _permute_like_llama_cpp(array, n_kv)
        writer.add_tensor(names[hf_name], array.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return gguf_path


@pytest.fixture(scope="module")
def tiny_gguf(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_llama_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def test_imported_gguf_matches_source_and_trains(
    tiny_gguf: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(resolve_model_path(str(tiny_gguf), cache_dir=tmp_path))
    assert path.parent == tmp_path / "gguf" and (path / "config.json").is_file()
    assert "quantization_config" not in json.loads((path / "config.json").read_text())
    assert resolve_model_path(str(tiny_gguf), cache_dir=tmp_path) == str(path)  # reused

    source = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    source_tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model, tokenizer = load_model_and_tokenizer(str(tiny_gguf), cache_dir=tmp_path)
    assert getattr(model, "hf_quantizer", None) is None and not getattr(
        model, "is_quantized", False
    )
    assert model.dtype == torch.float32 and tokenizer.pad_token == "<pad>"
    text = 'Alice is 30 years old and lives in Paris. {"age": 30} Zürich'
    assert tokenizer(text)["input_ids"] == source_tokenizer(text)["input_ids"]
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]
    assert tokenizer.apply_chat_template(chat, tokenize=False).endswith("ok</s>\n")

    batch = tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(model(**batch).logits, source(**batch).logits, atol=1e-5)

    before = model.model.layers[0].self_attn.q_proj.weight.detach().clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = model(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    optimizer.step()
    assert not torch.equal(before, model.model.layers[0].self_attn.q_proj.weight)


def test_corrupt_gguf_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF\x03\x00\x00\x00 not really a gguf file")
    with pytest.raises(ModelLoadError, match=r"cannot read GGUF file .*broken\.gguf"):
        import_gguf(broken, tmp_path / "out")
    with pytest.raises(ModelLoadError, match=r"broken\.gguf"):
        resolve_model_path(str(broken), cache_dir=tmp_path / "cache")
    assert not (tmp_path / "out").exists()
    assert not list((tmp_path / "cache" / "gguf").iterdir())  # no half-imported model left
