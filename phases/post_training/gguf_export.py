"""Export a Llama-architecture Hugging Face model as one GGUF file (llama.cpp, Ollama, LM Studio).

The file carries the weights (`q8_0`, `q4_k_m` or `bf16`), the tokenizer (byte-level BPE:
tokens, types, merges, special ids) and the chat template, so a runtime needs nothing else.
Tensor names, the q/k row order and the per-tensor types follow llama.cpp's converter and its
`Q4_K_M` recipe (attn_v and ffn_down of some layers at Q6_K; rows not a multiple of 256 fall
back to Q5_0 / Q8_0 as llama.cpp does). The caller verifies the result by reading it back with
transformers (`quality.py`): a wrong tokenizer, template or permutation shows up there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from phases.post_training.errors import PostTrainingInputError
from phases.post_training.gptq import gptq_q8_0_tensors
from phases.post_training.kquants import QK_K, quantize_q4_k, quantize_q6_k

GGUF_TYPES = ("q8_0", "q4_k_m", "bf16")
LLAMA_ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM")
TOKEN_NORMAL, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED = 1, 3, 4, 5


def export_gguf(
    model_dir: Path,
    output_file: Path,
    gguf_type: str,
    *,
    name: str = "",
    calibration: Sequence[Sequence[int]] | None = None,
) -> Path:
    """Write `model_dir` (a full HF model with its tokenizer) as `output_file` in `gguf_type`.

    `calibration` (token id sequences, e.g. training examples): for `q8_0`, the decoder blocks'
    linear weights are rounded by GPTQ against these inputs (`gptq.py`) instead of to nearest.
    """
    import gguf

    if gguf_type not in GGUF_TYPES:
        raise PostTrainingInputError(
            f"unknown GGUF type {gguf_type!r}; choose one of {', '.join(GGUF_TYPES)}"
        )
    model_dir, output_file = Path(model_dir), Path(output_file)
    config = _llama_config(model_dir)
    tokenizer = _tokenizer_fields(model_dir, config["vocab_size"])
    tensors, rounded = _tensors(model_dir, calibration if gguf_type == "q8_0" else None)
    output_file.parent.mkdir(parents=True, exist_ok=True)
    partial = output_file.with_name(output_file.name + ".partial")
    writer = gguf.GGUFWriter(partial, "llama")
    _write_metadata(writer, config, gguf_type, name or model_dir.name)
    _write_tokenizer(writer, tokenizer)
    _write_tensors(writer, tensors, config, gguf_type, rounded)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(output_file)
    return output_file


def _llama_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    if not path.is_file():
        raise PostTrainingInputError(f"{model_dir} has no config.json: not a full model directory")
    config = json.loads(path.read_text())
    architectures = config.get("architectures") or ["?"]
    if architectures[0] not in LLAMA_ARCHITECTURES:
        raise PostTrainingInputError(
            f"GGUF export supports the Llama architecture ({', '.join(LLAMA_ARCHITECTURES)}); "
            f"{model_dir} is {architectures[0]}"
        )
    if config.get("quantization_config"):
        raise PostTrainingInputError(
            f"{model_dir} is already quantized ({config['quantization_config'].get('quant_method')});"
            " export the unquantized model"
        )
    return config


def _tensors(
    model_dir: Path, calibration: Sequence[Sequence[int]] | None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every tensor of the model in float32 numpy (the tied output head left out), and the
    Q8_0 blocks GPTQ made of some of them when there is `calibration`."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    rounded = gptq_q8_0_tensors(model, calibration) if calibration else {}
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    state = {
        name: tensor.detach().float().numpy()
        for name, tensor in model.state_dict().items()
        if not (tied and name == "lm_head.weight") and "rotary_emb" not in name
    }
    return state, rounded


def _write_metadata(writer: Any, config: dict[str, Any], gguf_type: str, name: str) -> None:
    import gguf

    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    rope = config.get("rope_parameters") or {}
    writer.add_name(name)
    writer.add_context_length(config.get("max_position_embeddings", 2048))
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.get("num_key_value_heads") or heads)
    writer.add_rope_freq_base(float(rope.get("rope_theta") or config.get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_rope_dimension_count(head_dim)
    writer.add_vocab_size(config["vocab_size"])
    file_types = {
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
        "q4_k_m": gguf.LlamaFileType.MOSTLY_Q4_K_M,
        "bf16": gguf.LlamaFileType.MOSTLY_BF16,
    }
    writer.add_file_type(file_types[gguf_type])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


# --- tokenizer ------------------------------------------------------------------------------


def _tokenizer_fields(model_dir: Path, vocab_size: int) -> dict[str, Any]:
    """Tokens, types, merges, special ids, template and pre-tokenizer of a byte-level BPE
    tokenizer, padded to the embedding's `vocab_size` rows."""
    from transformers import AutoTokenizer

    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise PostTrainingInputError(
            f"{model_dir} has no tokenizer.json: GGUF export needs a fast (byte-level BPE) tokenizer"
        )
    spec = json.loads(path.read_text(encoding="utf-8"))
    if spec["model"].get("type") != "BPE":
        raise PostTrainingInputError(
            f"GGUF export supports byte-level BPE tokenizers; {path} is {spec['model'].get('type')}"
        )
    hf = AutoTokenizer.from_pretrained(model_dir)
    by_id = {i: t for t, i in spec["model"]["vocab"].items()}
    types = dict.fromkeys(by_id, TOKEN_NORMAL)
    for added in spec.get("added_tokens", []):
        by_id[added["id"]] = added["content"]
        types[added["id"]] = TOKEN_CONTROL if added.get("special") else TOKEN_USER_DEFINED
    size = max(vocab_size, max(by_id) + 1)
    tokens = [by_id.get(i, f"[PAD{i}]") for i in range(size)]
    token_types = [types.get(i, TOKEN_UNUSED) for i in range(size)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"].get("merges", [])]
    probe = hf("a")["input_ids"]
    return {
        "tokens": tokens,
        "types": token_types,
        "merges": merges,
        "pre": _pre_tokenizer_name(spec.get("pre_tokenizer"), path),
        "bos": hf.bos_token_id,
        "eos": hf.eos_token_id,
        "unk": hf.unk_token_id,
        "pad": hf.pad_token_id,
        "add_bos": bool(probe) and probe[0] == hf.bos_token_id,
        "chat_template": hf.chat_template if isinstance(hf.chat_template, str) else None,
    }


def _pre_tokenizer_name(pre: dict[str, Any] | None, path: Path) -> str:
    """llama.cpp's name for the split before BPE: GPT-2's regex ('gpt2'), or digits one by
    one before it ('smollm'); anything else would tokenize differently there, so it is refused."""
    parts = pre.get("pretokenizers", []) if pre and pre.get("type") == "Sequence" else [pre]
    kinds = [(p or {}).get("type") for p in parts]
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt2"
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits"):
        return "smollm"
    raise PostTrainingInputError(
        f"GGUF export knows the GPT-2 byte-level pre-tokenizer (optionally after single digits); "
        f"{path} has {kinds}"
    )


def _write_tokenizer(writer: Any, fields: dict[str, Any]) -> None:
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(fields["pre"])
    writer.add_token_list(fields["tokens"])
    writer.add_token_types(fields["types"])
    writer.add_token_merges(fields["merges"])
    for key, add in (
        ("bos", writer.add_bos_token_id),
        ("eos", writer.add_eos_token_id),
        ("unk", writer.add_unk_token_id),
        ("pad", writer.add_pad_token_id),
    ):
        if fields[key] is not None:
            add(fields[key])
    writer.add_add_bos_token(fields["add_bos"])
    if fields["chat_template"]:
        writer.add_chat_template(fields["chat_template"])


# --- tensors --------------------------------------------------------------------------------


def _write_tensors(
    writer: Any,
    tensors: dict[str, np.ndarray],
    config: dict[str, Any],
    gguf_type: str,
    rounded: dict[str, np.ndarray],
) -> None:
    """Each tensor under its llama.cpp name and type; `rounded` ones (Q8_0 blocks already
    made) are written as they are."""
    import gguf

    layers = config["num_hidden_layers"]
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, layers)
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    for hf_name, array in tensors.items():
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise PostTrainingInputError(f"GGUF export does not know the tensor {hf_name!r}")
        data = rounded.get(hf_name, array)  # rows stay rows: permuting blocks permutes weights
        if name.endswith("attn_q.weight"):
            data = _permute(data, heads)
        elif name.endswith("attn_k.weight"):
            data = _permute(data, kv_heads)
        if hf_name in rounded:
            writer.add_tensor(name, data, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            continue
        qtype = tensor_type(
            name, array.shape, gguf_type, layers, tied="lm_head.weight" not in tensors
        )
        writer.add_tensor(name, _encode(data, qtype), raw_dtype=qtype)


def _permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's row order for q/k (rotary halves interleaved); transformers undoes it on read."""
    shape = weights.shape
    return (
        weights.reshape(heads, 2, shape[0] // heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)
    )


def _more_bits(layer: int, layers: int) -> bool:
    """llama.cpp's `use_more_bits`: the first and last eighth of layers and every third between."""
    return layer < layers // 8 or layer >= 7 * layers // 8 or (layer - layers // 8) % 3 == 2


def tensor_type(name: str, shape: tuple[int, ...], gguf_type: str, layers: int, *, tied: bool):
    """The GGML type of one tensor under a GGUF type (llama.cpp's choice for that file type);
    `tied`: the token embedding is also the output head."""
    from gguf import GGMLQuantizationType as T

    if len(shape) < 2:
        return T.F32  # norms stay exact
    if gguf_type == "bf16":
        return T.BF16
    if gguf_type == "q8_0":
        return T.Q8_0
    layer = int(name.split(".")[1]) if name.startswith("blk.") else -1
    head = name == "output.weight" or (tied and name == "token_embd.weight")
    more_bits = ("attn_v" in name or "ffn_down" in name) and _more_bits(layer, layers)
    kind = T.Q6_K if head or more_bits else T.Q4_K
    if shape[-1] % QK_K:  # rows that do not fill whole super-blocks: llama.cpp's fallbacks
        kind = {T.Q4_K: T.Q5_0, T.Q6_K: T.Q8_0}[kind]
    return kind


def _encode(array: np.ndarray, qtype: Any) -> np.ndarray:
    from gguf import GGMLQuantizationType as T
    from gguf.quants import quantize

    if qtype == T.Q4_K:
        return quantize_q4_k(array).reshape(*array.shape[:-1], -1)
    if qtype == T.Q6_K:
        return quantize_q6_k(array).reshape(*array.shape[:-1], -1)
    return quantize(array.astype(np.float32), qtype)
