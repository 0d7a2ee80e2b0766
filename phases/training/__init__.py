"""The training phase: SFT, DPO and reward modelling with TRL, pausable and crash-safe.

    from phases.training import TrainingConfig, train
    result = train(TrainingConfig(method="sft"), model="builtin:tiny-llama",
                   train_path=Path("train.jsonl"), eval_path=None, output_dir=Path("out"))

Importing this package is light; torch, transformers and trl load on the first `train()`.
"""

from phases.training.config import LoraSettings, TrainingConfig
from phases.training.data import TrainingInputError
from phases.training.estimate import estimate_training
from phases.training.results import TrainingProgress, TrainingResult
from phases.training.reward import score
from phases.training.run import train

__all__ = [
    "LoraSettings",
    "TrainingConfig",
    "TrainingInputError",
    "TrainingProgress",
    "TrainingResult",
    "estimate_training",
    "score",
    "train",
]
