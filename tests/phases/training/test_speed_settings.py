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


def test_precision_auto_is_bfloat16_only_on_a_cpu_that_multiplies_it_natively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from phases.training import hardware

    if torch.cuda.is_available():
        pytest.skip("auto follows the GPU's bf16 support there")

    def bf16(**settings) -> bool:
        args = common_args(
            SFTTraining(**settings), checkpoints_dir=tmp_path, max_length=64, has_eval=False
        )
        return args["bf16"]

    for native in (False, True):
        monkeypatch.setattr(hardware, "native_bf16", lambda cpuinfo=None, n=native: n)
        assert training_precision("auto") == ("bfloat16" if native else "float32")
        assert bf16() is native
        # An explicit setting wins either way.
        assert training_precision("bfloat16") == "bfloat16" and bf16(precision="bfloat16")
        assert training_precision("float32") == "float32" and not bf16(precision="float32")
