"""What the DPO path feeds TRL: replies that end with the end-of-turn token (as SFT chat data
does), and the SFT term on chosen replies (rpo_alpha) that teaches the model to stop."""

from pathlib import Path

import pytest
from training_test_data import built_trainer, completion_logprob, preference_rows, write_jsonl

from phases.training import DPOTraining, LoraSettings, train
from phases.training.trainers import dpo_loss_args


def _end_of_turn_id(tokenizer) -> int:
    """The token the chat template closes an assistant turn with (what SFT trains to emit)."""
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes"}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    after_reply = rendered[rendered.rindex("yes") + len("yes") :]
    return tokenizer(after_reply, add_special_tokens=False)["input_ids"][0]


def _dpo_trainer(config: DPOTraining, model: Path, data: Path, work: Path):
    return built_trainer("dpo", config, model, data, work)


def test_dpo_replies_end_with_the_end_of_turn_token(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "pref.jsonl", preference_rows(4))
    trainer = _dpo_trainer(DPOTraining(max_steps=1, batch_size=4), tiny_model_dir, data, tmp_path)
    end = _end_of_turn_id(trainer.processing_class)
    rows = list(trainer.train_dataset)
    assert [r["chosen_ids"][-1] for r in rows] == [end] * 4
    assert [r["rejected_ids"][-1] for r in rows] == [end] * 4
    batch = trainer.data_collator(rows)
    # The end-of-turn token is trained (in the completion mask), not masked away as padding.
    lengths = [len(r["prompt_ids"]) + len(r["chosen_ids"]) for r in rows]
    for row, length in enumerate(lengths):
        assert batch["input_ids"][row][length - 1] == end
        assert batch["completion_mask"][row][length - 1] == 1


def test_rpo_alpha_adds_the_sft_term_and_zero_is_plain_dpo() -> None:
    assert dpo_loss_args(DPOTraining(rpo_alpha=0.5)) == {
        "loss_type": ["sigmoid", "sft"],
        "loss_weights": [1.0, 0.5],
    }
    assert dpo_loss_args(DPOTraining(rpo_alpha=0)) == {"loss_type": ["sigmoid"]}
    with pytest.raises(ValueError, match="sft_adapter continues a LoRA adapter"):
        DPOTraining(sft_adapter="runs/x/model")


def _chosen_logprob(model_dir: Path, rows: list[dict]) -> float:
    from models.loading import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(str(model_dir), for_generation=True)
    return sum(completion_logprob(model, tokenizer, r["prompt"], r["chosen"]) for r in rows)


def test_the_sft_term_raises_the_chosen_reply_more_than_plain_dpo(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    rows = preference_rows(16)
    data = write_jsonl(tmp_path / "pref.jsonl", rows)
    chosen = {}
    for alpha in (0.0, 1.0):
        config = DPOTraining(max_steps=4, batch_size=8, learning_rate=1e-3, rpo_alpha=alpha)
        result = train(
            config,
            model=str(tiny_model_dir),
            train_path=data,
            eval_path=None,
            output_dir=tmp_path / f"rpo-{alpha}",
        )
        chosen[alpha] = _chosen_logprob(Path(result.model_path), rows)
    assert chosen[1.0] > chosen[0.0], chosen


def test_dpo_continues_an_sft_adapter(tiny_model_dir: Path, tmp_path: Path) -> None:
    from phases.training import SFTTraining

    rows = preference_rows(8)
    sft_rows = [{"prompt": r["prompt"], "completion": r["chosen"]} for r in rows]
    sft = train(
        SFTTraining(max_steps=2, batch_size=8, learning_rate=1e-3, lora=LoraSettings(r=4)),
        model=str(tiny_model_dir),
        train_path=write_jsonl(tmp_path / "sft.jsonl", sft_rows),
        eval_path=None,
        output_dir=tmp_path / "sft",
    )
    config = DPOTraining(
        max_steps=1, batch_size=8, lora=LoraSettings(r=4), sft_adapter=sft.model_path
    )
    data = write_jsonl(tmp_path / "pref.jsonl", rows)
    trainer = _dpo_trainer(config, tiny_model_dir, data, tmp_path / "dpo")
    loaded = {
        name: param.detach().clone()
        for name, param in trainer.model.named_parameters()
        if "lora_B.default" in name
    }
    assert loaded and any(t.abs().sum() > 0 for t in loaded.values())  # not a fresh adapter
    trained = [p.requires_grad for n, p in trainer.model.named_parameters() if ".default." in n]
    assert trained and all(trained)
    # TRL keeps a frozen copy of the loaded adapter as the reference: DPO measures the
    # preference against the SFT model, not the base.
    frozen = [p.requires_grad for n, p in trainer.model.named_parameters() if ".ref." in n]
    assert frozen and not any(frozen)
