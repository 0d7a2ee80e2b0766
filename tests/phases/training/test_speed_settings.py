"""The training settings that buy speed: the LM head scored on labelled positions only, and the
`precision` setting, checked for what they compute, never for how fast."""

from pathlib import Path

import pytest
import torch

from phases.training import SFTTraining
from phases.training.trainers import common_args, score_labelled_positions_only, training_precision


def test_the_head_scores_labelled_positions_only_with_the_same_loss(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoModelForCausalLM
    from trl.kernels.chunked_logprob import _use_triton
    from trl.trainer import utils as trl_utils

    # Start from TRL's own choice (another test may have applied ours) and restore it after.
    monkeypatch.setattr(trl_utils, "_use_triton", _use_triton)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trl_utils.add_fused_lm_head(model)
    projected: list[int] = []
    apply = trl_utils._ChunkedLogProbFunction.apply
    monkeypatch.setattr(
        trl_utils._ChunkedLogProbFunction,
        "apply",
        lambda hidden, *rest: projected.append(hidden.shape[0]) or apply(hidden, *rest),
    )
    torch.manual_seed(0)
    ids = torch.randint(3, model.config.vocab_size, (2, 12))
    labels = ids.clone()
    labels[:, :8] = -100  # a prompt of 8 tokens, a completion of 4
    every = model(input_ids=ids, labels=labels, fused_lm_head=True).loss
    score_labelled_positions_only()
    labelled = model(input_ids=ids, labels=labels, fused_lm_head=True).loss
    assert projected == [2 * 11, 2 * 4]  # every shifted position, then the completion's only
    assert labelled.item() == pytest.approx(every.item(), rel=1e-5)


def test_precision_auto_is_float32_on_a_cpu_and_bfloat16_when_asked(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("auto means bfloat16 on a GPU that has it")
    assert training_precision("auto") == "float32"
    assert training_precision("bfloat16") == "bfloat16"
    args = common_args(SFTTraining(), checkpoints_dir=tmp_path, max_length=64, has_eval=False)
    assert args["bf16"] is False
    asked = SFTTraining(precision="bfloat16")
    assert common_args(asked, checkpoints_dir=tmp_path, max_length=64, has_eval=False)["bf16"]
