"""The training phase: SFT, DPO and reward modelling with TRL, pausable and crash-safe.

    from phases.training import DPOTraining, train
    result = train(DPOTraining(beta=0.1), model="builtin:tiny-llama",
                   train_path=Path("pairs.jsonl"), eval_path=None, output_dir=Path("out"))

Each method has its config model (`SFTTraining`, `DPOTraining`, `RewardTraining`);
`parse_training_config({"method": ..., ...})` picks one from a mapping ("sft" when omitted).
Importing this package is light; torch, transformers and trl load on the first `train()`.
"""

from phases.training.config import (
    METHODS,
    DPOTraining,
    LoraSettings,
    RewardTraining,
    SFTTraining,
    TrainingConfig,
    TrainingResources,
    TrainingSettings,
    parse_training_config,
)
from phases.training.data import TrainingInputError
from phases.training.estimate import estimate_training
from phases.training.results import TrainingProgress, TrainingResult
from phases.training.reward import score
from phases.training.run import train

__all__ = [
    "METHODS",
    "DPOTraining",
    "LoraSettings",
    "RewardTraining",
    "SFTTraining",
    "TrainingConfig",
    "TrainingInputError",
    "TrainingProgress",
    "TrainingResources",
    "TrainingResult",
    "TrainingSettings",
    "estimate_training",
    "parse_training_config",
    "score",
    "train",
]
