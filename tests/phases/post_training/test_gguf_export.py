"""GGUF export of the tiny Llama, read back by transformers (`from_pretrained(...,
gguf_file=...)`) as a user's runtime would: the file carries the tokenizer, the chat template
and the end token, its logits match the source's, and its greedy answers are the source's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from phases.evaluation.config import EvaluationConfig
from phases.evaluation.eval_data import EvalExample
from phases.evaluation.generation import teacher_forcing_ids
from phases.evaluation.model_evaluation import evaluate_loaded
from phases.post_training.candidate_loading import load_for_generation
from phases.post_training.config import PostTrainingConfig
from phases.post_training.errors import PostTrainingInputError
from phases.post_training.gguf_export import export_gguf
from phases.post_training.quality import next_token_agreement, tokenizer_problems
from phases.post_training.stage import run_post_training

EXAMPLES = [
    EvalExample(kind="chat", prompt=[{"role": "user", "content": text}], reference=answer)
    for text, answer in [
        ("Anna is 31 and lives in Oslo.", '{"name": "Anna", "age": 31, "city": "Oslo"}'),
        ("Tom, 40, Rome.", '{"name": "Tom", "age": 40, "city": "Rome"}'),
        ("Who lives in Lima? Sara, 22.", '{"name": "Sara", "age": 22, "city": "Lima"}'),
    ]
]


@pytest.fixture(scope="module")
def exported(sharp_model_dir: Path, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("gguf")
    return {t: export_gguf(sharp_model_dir, out / f"tiny-{t}.gguf", t) for t in ("q8_0", "bf16")}


def test_q8_0_reads_back_with_the_sources_tokenizer_and_answers(exported, sharp_model_dir) -> None:
    source, source_tokenizer = load_for_generation(sharp_model_dir)
    model, tokenizer = load_for_generation(exported["q8_0"])
    assert tokenizer_problems(source_tokenizer, tokenizer, EXAMPLES) == []
    assert tokenizer.chat_template == source_tokenizer.chat_template
    assert tokenizer.eos_token == "</s>" and tokenizer.eos_token_id == source_tokenizer.eos_token_id
    agreement = next_token_agreement(source, model, source_tokenizer, EXAMPLES)
    assert agreement["kl"] < 2e-3 and agreement["top1"] == 1.0, agreement


def test_bf16_gives_the_sources_greedy_answers_and_q8_0_is_half_its_size(
    exported, sharp_model_dir
) -> None:
    """(The random model's greedy answers run into near-ties that q8_0's rounding may flip; the
    slow quickstart test checks q8_0's answers on the tuned SmolLM2.)"""
    source, source_tokenizer = load_for_generation(sharp_model_dir)
    model, tokenizer = load_for_generation(exported["bf16"])
    assert next_token_agreement(source, model, source_tokenizer, EXAMPLES)["kl"] < 1e-4
    config = EvaluationConfig(metrics=["rougeL"], max_new_tokens=12)
    _, theirs = evaluate_loaded(source, source_tokenizer, EXAMPLES, config)
    _, ours = evaluate_loaded(model, tokenizer, EXAMPLES, config)
    assert [p.got for p in ours] == [p.got for p in theirs]
    ratio = exported["q8_0"].stat().st_size / exported["bf16"].stat().st_size
    assert 0.45 < ratio < 0.65, ratio


def test_other_architectures_and_tokenizers_are_refused(tiny_model_dir, tmp_path) -> None:
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(PostTrainingInputError, match="Llama architecture.*GPT2LMHeadModel"):
        export_gguf(other, tmp_path / "x.gguf", "q8_0")
    (other / "config.json").write_text(json.dumps(config))
    spec = json.loads((other / "tokenizer.json").read_text())
    spec["pre_tokenizer"] = {"type": "Whitespace"}
    (other / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(PostTrainingInputError, match="pre-tokenizer.*Whitespace"):
        export_gguf(other, tmp_path / "x.gguf", "q8_0")
    with pytest.raises(PostTrainingInputError, match="unknown GGUF type 'q3_k'"):
        export_gguf(tiny_model_dir, tmp_path / "x.gguf", "q3_k")
    assert not (tmp_path / "x.gguf").exists()


def test_q8_0_rounded_by_gptq_is_closer_to_its_source_than_nearest(
    exported, sharp_model_dir, tmp_path
) -> None:
    source, source_tokenizer = load_for_generation(sharp_model_dir)
    calibration = [teacher_forcing_ids(source_tokenizer, e)[0] for e in EXAMPLES] * 3
    path = export_gguf(sharp_model_dir, tmp_path / "gptq.gguf", "q8_0", calibration=calibration)
    assert path.stat().st_size == exported["q8_0"].stat().st_size  # the same format
    gptq, tokenizer = load_for_generation(path)
    nearest, _ = load_for_generation(exported["q8_0"])
    assert tokenizer_problems(source_tokenizer, tokenizer, EXAMPLES) == []
    ours = next_token_agreement(source, gptq, source_tokenizer, EXAMPLES)
    theirs = next_token_agreement(source, nearest, source_tokenizer, EXAMPLES)
    assert ours["kl"] < 0.7 * theirs["kl"], (ours, theirs)  # measured: 0.000105 vs 0.000226


@pytest.mark.parametrize(("rounding", "sequences"), [("gptq", 3), ("nearest", 0)])
def test_the_stage_calibrates_q8_0_on_the_training_data(
    rounding, sequences, sharp_model_dir, tmp_path
) -> None:
    rows = [
        {"messages": [*e.prompt, {"role": "assistant", "content": e.reference}]} for e in EXAMPLES
    ]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_post_training(
        PostTrainingConfig(quantize=["gguf:q8_0"], q8_0_rounding=rounding),
        evaluation=EvaluationConfig(metrics=["rougeL"], max_new_tokens=8),
        tuned_dir=sharp_model_dir,
        eval_path=data,
        train_path=data,
        output_dir=tmp_path / "post",
        base_model="builtin:tiny-llama",
    )
    q8 = result["candidates"][1]
    assert q8["parameters"]["rounding"] == rounding, q8
    assert q8["parameters"]["calibration_sequences"] == sequences
    assert q8["verdict"] == "pass", q8
