"""Build the TRL trainer for one method: SFTTrainer, DPOTrainer or RewardTrainer.

Imported only inside `train()`: it pulls in torch, transformers, trl, peft and datasets.
"""

import json
import statistics
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback

from models.config import ModelConfig
from phases.training.callbacks import StepMonitor
from phases.training.config import DPOTraining, RewardTraining, SFTTraining, TrainingSettings
from phases.training.data import TrainingData, text_lengths, tool_chat_records
from phases.training.hardware import cpu_precision
from phases.training.lm_head import use_plain_head_when_small
from phases.training.model_access import is_adapter, load_causal_lm, load_reward_model
from phases.training.shared_prefix import share_common_prefix

# Coefficient of variation of example lengths above which packing pays (less padding to waste).
_VARIABLE_LENGTH_CV = 0.3


def use_packing(config: SFTTraining, data: TrainingData) -> bool:
    """Resolve `packing`: 'auto' packs only on CUDA with variable-length data.

    On CPU, plain padding measured faster than packing for short, similar-length examples (see
    the `packing` field): there is little padding to save, and the padding-free attention path
    is tuned for GPUs. Lengths are judged in characters, before tokenizing.
    """
    if config.packing == "off":
        return False
    if config.packing == "on":
        return True
    if not torch.cuda.is_available():
        return False
    lengths = text_lengths(data.records)
    if len(lengths) < 2:
        return False
    return statistics.pstdev(lengths) / max(statistics.mean(lengths), 1) > _VARIABLE_LENGTH_CV


def common_args(
    config: TrainingSettings, *, checkpoints_dir: Path, max_length: int, has_eval: bool
) -> dict:
    """TrainingArguments shared by every method, tuned for a CPU twin and a quiet service."""
    cuda = torch.cuda.is_available()
    eval_strategy = "no"
    if has_eval:
        eval_strategy = "steps" if config.eval_steps else "epoch"
    return {
        "output_dir": str(checkpoints_dir),
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps or -1,
        "learning_rate": config.learning_rate,
        "lr_scheduler_type": config.lr_scheduler,
        "warmup_steps": config.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        "weight_decay": config.weight_decay,
        "max_grad_norm": config.max_grad_norm,
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        # TRL turns it on by default; on a small CPU run it only costs time.
        _checkpointing_arg(): config.gradient_checkpointing,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": config.save_total_limit,
        "logging_strategy": "steps",
        "logging_steps": config.logging_steps,
        # Log NaN/inf as they are: the divergence guard must see them (the default hides them).
        "logging_nan_inf_filter": False,
        "eval_strategy": eval_strategy,
        "eval_steps": config.eval_steps,
        "seed": config.seed,
        "report_to": "none",
        "use_cpu": not cuda,
        "bf16": training_precision(config.precision) == "bfloat16",
        "fp16": False,
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": cuda,
        "disable_tqdm": True,
        "include_num_input_tokens_seen": "non_padding",
        "max_length": max_length,
    }


def training_precision(setting: str = "auto") -> str:
    """'bfloat16' or 'float32': what training computes in for a `precision` setting.

    auto picks bfloat16 (autocast; the trained weights stay float32) where the hardware multiplies
    it natively: a GPU that supports it, or a CPU with AMX or AVX512-BF16. On such CPUs it measured
    1.1-1.4x faster for LoRA SFT than float32 (SmolLM2-135M and a 4x256 Llama), and TRL's own
    default is bfloat16, so float32 there would leave our defaults behind TRL's. Elsewhere float32:
    without those instructions bfloat16 products run emulated, about 70x slower.
    """
    if setting == "auto" and torch.cuda.is_available():
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return cpu_precision(setting)


def _checkpointing_arg() -> str:
    """`activation_checkpointing` in transformers >= 5.x, `gradient_checkpointing` before."""
    from dataclasses import fields

    from transformers import TrainingArguments

    names = {field.name for field in fields(TrainingArguments)}
    return (
        "activation_checkpointing"
        if "activation_checkpointing" in names
        else "gradient_checkpointing"
    )


def lora_config(config: TrainingSettings, task_type: str):
    """A peft LoraConfig from the training section, or None for full fine-tuning."""
    if config.lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=config.lora.target_modules,
        task_type=task_type,
    )


def load_dataset_cached(data: TrainingData | None, work_dir: Path, split: str):
    """A `datasets.Dataset` backed by an Arrow file under `work_dir`.

    A file-backed dataset lets `datasets` cache every `map` TRL runs (chat rendering,
    tokenization, labels) next to its Arrow file in `work_dir/datasets-cache/<split>`, so a
    resumed segment tokenizes nothing again. The Arrow file (and the readable copy in
    `work_dir/data/<split>.jsonl`) is rewritten only when the records change, which keeps the
    cache fingerprint stable across calls. It is built from the records themselves, never by
    re-reading the jsonl: `load_dataset("json")` infers types, turning a completion such as
    "2024-01-05" into a timestamp.
    """
    if data is None:
        return None
    import shutil

    from datasets import Dataset, load_from_disk

    prepared = work_dir / "data" / f"{split}.jsonl"
    arrow_dir = work_dir / "datasets-cache" / split
    content = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in data.records)
    unchanged = prepared.is_file() and prepared.read_text(encoding="utf-8") == content
    if not (unchanged and (arrow_dir / "dataset_info.json").is_file()):
        shutil.rmtree(arrow_dir, ignore_errors=True)  # its map caches belong to the old records
        prepared.parent.mkdir(parents=True, exist_ok=True)
        Dataset.from_list(data.records).save_to_disk(str(arrow_dir))
        prepared.write_text(content, encoding="utf-8")
    return load_from_disk(str(arrow_dir))


def datasets_and_tokenizer(
    train_data: TrainingData, eval_data: TrainingData | None, work_dir: Path, tokenizer
) -> dict:
    """The trainer arguments every method shares: cached train/eval datasets, the tokenizer."""
    return {
        "train_dataset": load_dataset_cached(train_data, work_dir, "train"),
        "eval_dataset": load_dataset_cached(eval_data, work_dir, "eval"),
        "processing_class": tokenizer,
    }


def watched(trainer_cls: type[Trainer], monitor: StepMonitor) -> type[Trainer]:
    """`trainer_cls` reporting each micro-batch loss to `monitor`, so NaN is caught per step."""

    class Watched(trainer_cls):
        def training_step(self, *args, **kwargs):
            loss = super().training_step(*args, **kwargs)
            monitor.add_micro_loss(float(loss))
            return loss

    Watched.__name__ = Watched.__qualname__ = trainer_cls.__name__
    return Watched


def quiet(trainer: Trainer) -> Trainer:
    """Drop the callback that prints every log dict to stdout (progress goes to our callback)."""
    from transformers import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


_EAGER_DEVICES = ("cpu", "cuda", "xpu", "mps")


def score_labelled_positions_only() -> None:
    """Have TRL's fused LM head project only the positions that carry a label.

    Since TRL 1.16 the head scores every position (prompt and padding too) unless Triton runs
    its kernel, to keep tile shapes fixed for compilers such as Neuron's. An eager device has
    nothing to recompile, and scoring the completion alone measured 1.3x faster for SFT on
    SmolLM2-135M on the CPU (116 vs 87 tokens/s, one thread); the losses are the same sums.
    In that TRL, `_use_triton` in `trl.trainer.utils` decides only this (the kernels read
    their own copy); older releases lack it and always compact.
    """
    import trl.trainer.utils as trl_utils

    if getattr(trl_utils, "_use_triton", None) is not None:
        trl_utils._use_triton = lambda device: device.type in _EAGER_DEVICES


def lean_sft_trainer_class():
    """SFTTrainer without its per-token entropy and top-1 accuracy diagnostics.

    TRL's fused LM head computes both on every training step, for logging only; at a 50k
    vocabulary on CPU they cost about a fifth of the LM head's time (measured: 13.6 s vs
    11.1 s forward+backward for 1024 tokens). There is no switch, so the head is re-patched to
    compute log-probabilities only, and the two metrics are fed zeros and dropped from the logs.
    """
    import functools

    from accelerate.utils import is_peft_model
    from trl import SFTTrainer
    from trl.trainer.utils import add_fused_lm_head

    score_labelled_positions_only()
    use_plain_head_when_small()

    class LeanSFTTrainer(SFTTrainer):
        def __init__(self, *args, share_prefix: bool = False, **kwargs):
            super().__init__(*args, **kwargs)
            base = self.model.get_base_model() if is_peft_model(self.model) else self.model
            add_fused_lm_head(base, outputs=("log_probs",))
            lean_forward = base.forward

            @functools.wraps(type(base).forward)
            def forward(*f_args, **f_kwargs):
                out = lean_forward(*f_args, **f_kwargs)
                if f_kwargs.get("fused_lm_head"):
                    out.entropy = torch.zeros_like(out.log_probs.detach())
                    out.is_top1 = torch.zeros_like(out.label_mask)
                return out

            base.forward = forward
            if share_prefix:
                share_common_prefix(base.base_model)

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            for metrics in self._metrics.values():
                metrics.pop("entropy", None)
                metrics.pop("mean_token_accuracy", None)
            super().log(logs, start_time)

    return LeanSFTTrainer


def build_sft(
    config: SFTTraining,
    *,
    model: ModelConfig | str,
    train_data: TrainingData,
    eval_data: TrainingData | None,
    base_args: dict,
    work_dir: Path,
    callbacks: list[TrainerCallback],
    monitor: StepMonitor,
    cache_dir: Path | None,
) -> Trainer:
    """An SFTTrainer: completion-only loss for prompt/completion and chat, full text otherwise."""
    from trl import SFTConfig

    causal_lm, tokenizer = load_causal_lm(
        model, cache_dir=cache_dir, keep_adapter=bool(config.lora)
    )
    if train_data.kind == "tool_chat":
        train_data = tool_chat_records(train_data, tokenizer)
        eval_data = tool_chat_records(eval_data, tokenizer) if eval_data else None
    packing = use_packing(config, train_data)
    completion_only = config.completion_only_loss and train_data.kind != "text"
    args = SFTConfig(**base_args, packing=packing, completion_only_loss=completion_only)
    return watched(lean_sft_trainer_class(), monitor)(
        model=causal_lm,
        args=args,
        **datasets_and_tokenizer(train_data, eval_data, work_dir, tokenizer),
        peft_config=None if is_adapter(causal_lm) else lora_config(config, "CAUSAL_LM"),
        callbacks=callbacks,
        share_prefix=config.share_prefix and not packing,
    )


def build_dpo(
    config: DPOTraining,
    *,
    model: ModelConfig | str,
    train_data: TrainingData,
    eval_data: TrainingData | None,
    base_args: dict,
    work_dir: Path,
    callbacks: list[TrainerCallback],
    monitor: StepMonitor,
    cache_dir: Path | None,
) -> Trainer:
    """A DPOTrainer. The reference is a frozen copy of the initial model, or, with LoRA, the
    base model itself with the adapter switched off (no second copy in memory). With
    `sft_adapter` the policy is that adapter, trained on (TRL keeps a frozen copy of it, named
    "ref", as the reference). Replies are plain text: TRL ends each
    chosen and rejected reply with the tokenizer's eos, the end-of-turn token of a chat model."""
    from trl import DPOConfig, DPOTrainer

    score_labelled_positions_only()
    start = _model_at(model, config.sft_adapter) if config.sft_adapter else model
    policy, tokenizer = load_causal_lm(start, cache_dir=cache_dir, keep_adapter=bool(config.lora))
    reference = None
    if config.lora is None:
        reference, _ = load_causal_lm(model, cache_dir=cache_dir, keep_adapter=False)
        reference.eval().requires_grad_(False)
    args = DPOConfig(**base_args, beta=config.beta, **dpo_loss_args(config))
    return watched(DPOTrainer, monitor)(
        model=policy,
        ref_model=reference,
        args=args,
        **datasets_and_tokenizer(train_data, eval_data, work_dir, tokenizer),
        peft_config=None if is_adapter(policy) else lora_config(config, "CAUSAL_LM"),
        callbacks=callbacks,
    )


def _model_at(model: ModelConfig | str, path: str) -> ModelConfig | str:
    """`model`'s loading settings (dtype, device) with weights from `path`."""
    if isinstance(model, ModelConfig):
        return model.model_copy(update={"name_or_path": path})
    return path


def dpo_loss_args(config: DPOTraining) -> dict:
    """DPOConfig's loss settings: sigmoid DPO, plus the SFT term on chosen when rpo_alpha > 0
    (TRL 1.x spells RPO as a weighted loss list)."""
    if not config.rpo_alpha:
        return {"loss_type": ["sigmoid"]}
    return {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, config.rpo_alpha]}


def build_reward(
    config: RewardTraining,
    *,
    model: ModelConfig | str,
    train_data: TrainingData,
    eval_data: TrainingData | None,
    base_args: dict,
    work_dir: Path,
    callbacks: list[TrainerCallback],
    monitor: StepMonitor,
    cache_dir: Path | None,
) -> Trainer:
    """A RewardTrainer on a one-logit sequence classifier built from the same base model."""
    from trl import RewardConfig, RewardTrainer

    scorer, tokenizer = load_reward_model(model, cache_dir=cache_dir)
    args = RewardConfig(**base_args)
    return watched(RewardTrainer, monitor)(
        model=scorer,
        args=args,
        **datasets_and_tokenizer(train_data, eval_data, work_dir, tokenizer),
        peft_config=lora_config(config, "SEQ_CLS"),
        callbacks=callbacks,
    )


BUILDERS = {"sft": build_sft, "dpo": build_dpo, "reward": build_reward}
