"""The synthesis phase: new training examples from a few seed samples, the task description and
retrieved passages, filtered (format, length, duplicates, eval leakage, quality) with every
drop counted by reason.

    from phases.synthesis import DataGenerationConfig, generate_examples
    kept, report = generate_examples(DataGenerationConfig(num_examples=50), task="...",
                                     kind="chat", seeds=seeds, complete=my_chat_fn,
                                     generator_name="my-model", output_dir=Path("out"))
    print(report.message)
"""

from phases.synthesis.config import DataGenerationConfig
from phases.synthesis.filters import (
    DROP_REASONS,
    MinHasher,
    SeedProfile,
    infer_profile,
    quality_score,
)
from phases.synthesis.generate import (
    REPORT_FILE,
    SYNTHETIC_FILE,
    Complete,
    GenerationError,
    GenerationReport,
    generate_examples,
)
from phases.synthesis.merge import MERGED_FILE, merge_training_data
from phases.synthesis.prompts import (
    generation_messages,
    generator_stop,
    parse_example,
    render_example,
)

__all__ = [
    "DROP_REASONS",
    "MERGED_FILE",
    "REPORT_FILE",
    "SYNTHETIC_FILE",
    "Complete",
    "DataGenerationConfig",
    "GenerationError",
    "GenerationReport",
    "MinHasher",
    "SeedProfile",
    "generate_examples",
    "generation_messages",
    "generator_stop",
    "infer_profile",
    "merge_training_data",
    "parse_example",
    "quality_score",
    "render_example",
]
