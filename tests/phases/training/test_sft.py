"""SFT: full fine-tuning changes the weights, LoRA only the adapter, loss only on completions."""

import json
from pathlib import Path

import pytest
import torch
from training_test_data import built_trainer, chat_rows, prompt_completion_rows, write_jsonl

from phases.training import LoraSettings, SFTTraining, TrainingProgress, train


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(directory / "model.safetensors"))


def _sft_trainer(config: SFTTraining, model_dir: Path, data: Path, work: Path):
    """The SFTTrainer train() would use, built from the same pieces, for inspection."""
    return built_trainer("sft", config, model_dir, data, work)


def test_full_sft_changes_weights_and_writes_outputs(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", prompt_completion_rows(16))
    config = SFTTraining(max_steps=4, batch_size=4, learning_rate=1e-3, logging_steps=1)
    reports: list[TrainingProgress] = []
    result = train(
        config,
        model=str(tiny_model_dir),
        train_path=data,
        eval_path=data,
        output_dir=tmp_path / "out",
        max_length=128,
        progress=reports.append,
    )
    assert result.status == "completed" and result.global_step == result.total_steps == 4
    assert result.resumed_from_step == 0
    before, after = _weights(tiny_model_dir), _weights(Path(result.model_path))
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert len(changed) >= len(before) // 2, f"only {changed} changed"
    assert (Path(result.model_path) / "tokenizer.json").is_file()
    assert [report.step for report in reports] == [1, 2, 3, 4]
    assert all(report.total_steps == 4 and report.loss > 0 for report in reports)
    assert reports[-1].eta_seconds == 0 and reports[-1].tokens_per_second > 0
    history = json.loads(Path(result.log_history_path).read_text())
    losses = [entry["loss"] for entry in history if "loss" in entry]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert any("eval_loss" in entry for entry in history)  # eval_path was evaluated
    assert "entropy" not in history[0]  # diagnostics kept out of the hot path
    args = json.loads(Path(result.args_path).read_text())
    assert args["report_to"] == [] or args["report_to"] in ("none", ["none"])
    assert args["finetune_agent"]["total_steps"] == 4
    assert args["finetune_agent"]["packing"] is False  # auto on CPU
    json.dumps(result.to_dict())


def test_lora_changes_only_adapter_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", prompt_completion_rows(8))
    config = SFTTraining(
        max_steps=3, batch_size=4, learning_rate=5e-3, lora=LoraSettings(r=4, alpha=8)
    )
    trainer = _sft_trainer(config, tiny_model_dir, data, tmp_path / "out")
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    lora = [name for name in before if "lora_" in name]
    base = [name for name in before if "lora_" not in name]
    assert lora and base
    assert all(torch.equal(before[name], after[name]) for name in base)
    changed_lora = [name for name in lora if not torch.equal(before[name], after[name])]
    assert len(changed_lora) >= len(lora) // 2


def test_lora_run_saves_an_adapter(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", prompt_completion_rows(8))
    config = SFTTraining(max_steps=2, batch_size=4, lora=LoraSettings(r=4, alpha=8))
    result = train(
        config,
        model=str(tiny_model_dir),
        train_path=data,
        eval_path=None,
        output_dir=tmp_path / "out",
    )
    model_dir = Path(result.model_path)
    assert (model_dir / "adapter_config.json").is_file()
    assert not (model_dir / "model.safetensors").exists()


@pytest.mark.parametrize("kind", ["prompt_completion", "chat"])
def test_loss_only_on_completion(tiny_model_dir: Path, tmp_path: Path, kind: str) -> None:
    rows = prompt_completion_rows(4) if kind == "prompt_completion" else chat_rows(4)
    data = write_jsonl(tmp_path / f"{kind}.jsonl", rows)
    trainer = _sft_trainer(SFTTraining(batch_size=4), tiny_model_dir, data, tmp_path / "out")
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    tokenizer = trainer.processing_class
    for i, row in enumerate(rows):
        labels, ids = batch["labels"][i], batch["input_ids"][i]
        trained = labels != -100
        first = int(trained.nonzero()[0])
        assert (labels[:first] == -100).all() and first > 0  # the whole prompt is masked
        assert torch.equal(labels[trained], ids[trained])
        answer = (
            row["completion"] if kind == "prompt_completion" else row["messages"][-1]["content"]
        )
        trained_text = tokenizer.decode(labels[trained])
        assert trained_text.strip().startswith(answer.strip())
        assert tokenizer.eos_token in trained_text  # the model learns to stop
        prompt_text = tokenizer.decode(ids[:first])
        assert answer.strip() not in prompt_text


def test_text_data_trains_on_every_token(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "text.jsonl", [{"text": "Alice lives in Paris."}] * 2)
    trainer = _sft_trainer(SFTTraining(batch_size=2), tiny_model_dir, data, tmp_path / "out")
    batch = trainer.data_collator([trainer.train_dataset[0]])
    assert torch.equal(batch["labels"], batch["input_ids"])
