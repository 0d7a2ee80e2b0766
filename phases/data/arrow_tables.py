"""Arrow-backed data: Parquet files and folders written by `datasets`' `save_to_disk`.

Their rows come back as Python values; `loading` turns numbers into text (as every reader
keeps values) and numbers the rows `row N`. A `DatasetDict` folder is read from its `train`
split (or its only split).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from phases.data.errors import DataError

SAVED_DATASET_FILES = ("dataset_info.json", "state.json")
SAVED_DATASET_DICT_FILE = "dataset_dict.json"


def is_saved_dataset(directory: Path) -> bool:
    """Whether `directory` was written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`."""
    return (directory / SAVED_DATASET_DICT_FILE).is_file() or all(
        (directory / name).is_file() for name in SAVED_DATASET_FILES
    )


def load_parquet(path: Path) -> list[dict[str, Any]]:
    """The rows of a Parquet file."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged or foreign file
        raise DataError(
            f"{path}: cannot read it as Parquet ({type(exc).__name__}: {exc}); is it a Parquet file?"
        ) from None
    return table.to_pylist()


def load_saved_dataset(directory: Path) -> list[dict[str, Any]]:
    """The rows of a `save_to_disk` folder (its `train` split, or its only one)."""
    from datasets import DatasetDict, load_from_disk

    try:
        dataset = load_from_disk(str(directory))
    except Exception as exc:  # datasets raises FileNotFoundError, ValueError, ArrowInvalid, ...
        raise DataError(
            f"{directory}: cannot load the saved dataset ({type(exc).__name__}: {exc})."
        ) from None
    if isinstance(dataset, DatasetDict):
        splits = list(dataset)
        if "train" not in dataset and len(splits) != 1:
            raise DataError(
                f"{directory}: the saved dataset has splits {splits} and none is 'train'; "
                "point data.train at the split's own folder."
            )
        dataset = dataset["train" if "train" in dataset else splits[0]]
    return dataset.to_list()
