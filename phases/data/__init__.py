"""The data phase: read the user's data (CSV, TSV, JSON, JSONL, Parquet, a directory of them, or
a `datasets` save_to_disk folder), detect its format, normalize it, clean it and split it into
train and eval.

Normalized records, one JSON object per line in train.jsonl / eval.jsonl, by dataset kind:
  "chat":              {"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}
  "tool_chat":         {"messages": [... assistant turns may have "tool_calls", answered by
                        {"role": "tool", "content": str} turns], "tools": [JSON schemas]}
  "prompt_completion": {"prompt": str, "completion": str}
  "preference":        {"prompt": str, "chosen": str, "rejected": str}
  "kto":               {"prompt": str, "completion": str, "label": bool}
  "prompt":            {"prompt": str, "reference": str (optional)}
  "text":              {"text": str}

Values stay text end to end: no reader infers types, so a prompt or completion such as "007",
"2024-01-05", "true", "null" or "1e3" is written exactly as read. A JSON number or boolean in a
text field becomes the text it was written with (`1.50` -> "1.50", `true` -> "true"); JSON null
is a missing value.

    from phases.data import DataConfig, prepare_data
    prepared = prepare_data(DataConfig(train="train.jsonl"), output_dir=Path("out"))
    print("\\n".join(prepared.report.summary_lines()))
"""

from phases.data.cleaning import approximate_token_count, tokenizer_token_counter
from phases.data.config import DataConfig
from phases.data.errors import DataError
from phases.data.formats import (
    FORMAT_COLUMNS,
    KIND_OF_FORMAT,
    dataset_kind,
    detect_format,
    normalize,
)
from phases.data.loading import Record, load_records, read_jsonl
from phases.data.prepare import (
    EVAL_FILE,
    REPORT_FILE,
    TRAIN_FILE,
    PreparedData,
    data_hash,
    prepare_data,
)
from phases.data.report import DataReport

__all__ = [
    "EVAL_FILE",
    "FORMAT_COLUMNS",
    "KIND_OF_FORMAT",
    "REPORT_FILE",
    "TRAIN_FILE",
    "DataConfig",
    "DataError",
    "DataReport",
    "PreparedData",
    "Record",
    "approximate_token_count",
    "data_hash",
    "dataset_kind",
    "detect_format",
    "load_records",
    "normalize",
    "prepare_data",
    "read_jsonl",
    "tokenizer_token_counter",
]
