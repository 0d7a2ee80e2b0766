"""AutoTrain Advanced as a second training backend, in a virtual environment of its own.

AutoTrain 0.8.36 pins transformers 4.48, TRL 0.13, PEFT 0.14 and pydantic 2.10, so it cannot
share this project's environment: `install_autotrain` builds one under `<home>/backends`
(`finetune-agent backends install autotrain`), and `train_autotrain` writes an AutoTrain
project from the run's training config, runs `autotrain --config` in that environment as a
process tree, streams its progress, and judges the outcome by the files and text it leaves —
never by its exit code, which is 0 even when training crashed (autotrain-advanced#877).

Importing this package is light: nothing here imports torch or AutoTrain.
"""

from phases.training.autotrain.environment import (
    INSTALL_COMMAND,
    BackendInstall,
    BackendNotInstalled,
    installed_backend,
    require_autotrain,
)

__all__ = [
    "INSTALL_COMMAND",
    "BackendInstall",
    "BackendNotInstalled",
    "installed_backend",
    "require_autotrain",
]
