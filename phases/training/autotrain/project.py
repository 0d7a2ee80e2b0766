"""An AutoTrain project from a run's training config: its YAML, its data file, its base model.

`write_project()` lays out, in the training folder:
- `autotrain-data/train.json`: the training rows in the columns AutoTrain reads (`text` for
  SFT, rendered the way the evaluator prompts: chats through the run's chat template, a prompt
  and completion joined and ended with eos; `prompt`/`chosen`/`rejected` for DPO; the prompt
  joined to each answer for a reward model);
- `base-model/`: the base model as transformers 4.48 reads it (see `compatible_model_dir`);
- `autotrain.yml`: the `autotrain --config` file: local backend, CPU-safe (no quantization,
  mixed precision only when `training.precision` asks for bfloat16), every training setting
  taken from the run config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phases.training.config import TrainingSettings
from phases.training.data import TrainingData

PROJECT_NAME = "model"  # AutoTrain's output folder, relative to the training folder
DATA_DIR = "autotrain-data"
CONFIG_FILE = "autotrain.yml"
MODEL_VIEW = "base-model"
TASKS = {"sft": "llm-sft", "dpo": "llm-dpo", "reward": "llm-reward"}
# The data file is named train.json, not train.jsonl: AutoTrain copies a .jsonl or .csv file
# through pandas (which turns "007" into 7); a .json file is read by `datasets` as it is.
DATA_FILE = "train.json"


@dataclass
class AutoTrainProject:
    """The files of one AutoTrain run and the settings they hold."""

    config_path: Path
    data_path: Path
    model_dir: str
    settings: dict[str, Any]


def write_project(
    config: TrainingSettings,
    *,
    data: TrainingData,
    tokenizer: Any,
    model_path: str,
    work_dir: Path,
    max_length: int,
) -> AutoTrainProject:
    """Write the data, base-model view and YAML for `config` into `work_dir`."""
    from phases.training.autotrain.model_view import compatible_model_dir

    data_dir = work_dir / DATA_DIR
    data_dir.mkdir(parents=True, exist_ok=True)
    rows = [autotrain_row(record, config.method, tokenizer) for record in data.records]
    data_path = data_dir / DATA_FILE
    data_path.write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
    )
    model_dir = compatible_model_dir(model_path, work_dir / MODEL_VIEW, tokenizer=tokenizer)
    settings = autotrain_settings(
        config, model_dir=model_dir, data_dir=data_dir, max_length=max_length
    )
    config_path = work_dir / CONFIG_FILE
    import yaml  # a dependency of transformers

    config_path.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return AutoTrainProject(config_path, data_path, model_dir, settings)


def autotrain_settings(
    config: TrainingSettings, *, model_dir: str, data_dir: Path, max_length: int
) -> dict[str, Any]:
    """The `autotrain --config` document for `config` (see AutoTrain's LLM parameters)."""
    columns = {"text_column": "text"}
    if config.method in ("dpo", "reward"):
        columns = {"text_column": "chosen", "rejected_text_column": "rejected"}
        if config.method == "dpo":
            columns["prompt_text_column"] = "prompt"
    return {
        "task": TASKS[config.method],
        "base_model": model_dir,
        "project_name": PROJECT_NAME,
        "log": "none",
        "backend": "local",
        "data": {
            "path": str(data_dir),
            "train_split": "train",
            "valid_split": None,
            "chat_template": None,
            "column_mapping": columns,
        },
        "params": {**_training_params(config, max_length), **config.autotrain_params},
    }


def _training_params(config: TrainingSettings, max_length: int) -> dict[str, Any]:
    lora = config.lora
    params: dict[str, Any] = {
        "block_size": max_length,
        "model_max_length": max_length,
        "epochs": int(config.epochs),
        "batch_size": config.batch_size,
        "gradient_accumulation": config.gradient_accumulation_steps,
        "lr": config.learning_rate,
        "scheduler": config.lr_scheduler,
        "warmup_ratio": config.warmup_ratio,
        "weight_decay": config.weight_decay,
        "max_grad_norm": config.max_grad_norm,
        "seed": config.seed,
        "logging_steps": config.logging_steps,
        "save_total_limit": config.save_total_limit,
        "disable_gradient_checkpointing": not config.gradient_checkpointing,
        "padding": "right",
        "quantization": None,
        "mixed_precision": _mixed_precision(config),
        "peft": lora is not None,
    }
    if lora is not None:
        modules = lora.target_modules
        params.update(
            lora_r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=modules if isinstance(modules, str) else ",".join(modules),
        )
    if config.method == "dpo":
        params.update(dpo_beta=config.beta, max_prompt_length=max(1, max_length // 2))
    return params


def _mixed_precision(config: TrainingSettings) -> str | None:
    """AutoTrain's `mixed_precision` for the run's `precision` ("bf16" or None for float32)."""
    from phases.training.trainers import training_precision

    return "bf16" if training_precision(config.precision) == "bfloat16" else None


def autotrain_row(record: dict, method: str, tokenizer: Any) -> dict[str, str]:
    """One training record (TRL's shape, from `load_training_data`) in AutoTrain's columns."""
    eos = tokenizer.eos_token or ""
    if method == "sft":
        return {"text": _sft_text(record, tokenizer, eos)}
    prompt, chosen, rejected = record["prompt"], record["chosen"], record["rejected"]
    if method == "dpo":
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    return {"chosen": _ended(prompt + chosen, eos), "rejected": _ended(prompt + rejected, eos)}


def _sft_text(record: dict, tokenizer: Any, eos: str) -> str:
    if "text" in record:
        return _ended(record["text"], eos)
    prompt, completion = record["prompt"], record["completion"]
    if isinstance(prompt, list):  # a chat: rendered whole, as the evaluator renders its prompt
        from models.generation import render_chat

        return render_chat(tokenizer, [*prompt, *completion], add_generation_prompt=False)
    return _ended(prompt + completion, eos)


def _ended(text: str, eos: str) -> str:
    return text if not eos or text.endswith(eos) else text + eos
