"""Resuming prints nothing that is expected: no "missing keys ['lm_head.weight']" for tied
embeddings and no FutureWarning from peft/TRL, while a real missing key is still reported."""

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from phases.training.checkpoints import expected_resume_warnings_hidden, tied_parameter_names

# Pause at half-way and resume, full fine-tuning and LoRA, in a fresh interpreter that shows
# every warning the way the CLI does (stderr, default filters).
_PAUSE_AND_RESUME = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from training_test_data import prompt_completion_rows, write_jsonl
from phases.training import LoraSettings, SFTTraining, train

root = Path({root!r})
data = write_jsonl(root / "train.jsonl", prompt_completion_rows(8))
for name, lora in (("full", None), ("lora", LoraSettings(r=4, alpha=8))):
    config = SFTTraining(max_steps=2, batch_size=4, save_steps=1, lora=lora)
    for fraction in (0.5, None):
        result = train(config, model={model!r}, train_path=data, eval_path=None,
                       output_dir=root / name, max_length=64, stop_at_fraction=fraction)
    print(name, result.status, result.resumed_from_step)
"""


@pytest.mark.slow
def test_pause_and_resume_print_no_expected_warnings(tiny_model_dir: Path, tmp_path: Path) -> None:
    script = _PAUSE_AND_RESUME.format(
        tests=str(Path(__file__).parent), root=str(tmp_path), model=str(tiny_model_dir)
    )
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[-3:] == ["full completed 1", "lora completed 1", ""]
    assert "missing keys" not in done.stderr
    assert "FutureWarning" not in done.stderr


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_only_tied_weights_are_hidden_from_the_missing_keys_warning(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    assert tied_parameter_names(model) == {"lm_head.weight"}
    logger = logging.getLogger("transformers.trainer")
    collect = _Collect()
    logger.addHandler(collect)
    try:
        with expected_resume_warnings_hidden(model):
            for keys in (["lm_head.weight"], ["model.norm.weight"], ["lm_head.weight", "x"]):
                logger.warning(f"There were missing keys in the checkpoint model loaded: {keys}.")
            logger.warning("There were unexpected keys in the checkpoint model loaded: ['y'].")
        logger.warning(
            "There were missing keys in the checkpoint model loaded: ['lm_head.weight']."
        )
    finally:
        logger.removeHandler(collect)
    assert collect.messages == [
        "There were missing keys in the checkpoint model loaded: ['model.norm.weight'].",
        "There were missing keys in the checkpoint model loaded: ['lm_head.weight', 'x'].",
        "There were unexpected keys in the checkpoint model loaded: ['y'].",
        "There were missing keys in the checkpoint model loaded: ['lm_head.weight'].",
    ]
