"""Prompt optimization (`training.method: "prompt"`): a system prompt evolved with GEPA and
few-shot exemplars chosen by bootstrap, the model's weights frozen.

    from phases.prompting import optimize_prompt
    result = optimize_prompt(PromptTraining(), model="builtin:tiny-llama",
                             train_path=Path("train.jsonl"), output_dir=Path("out"),
                             instruction="Answer in JSON.", evaluation=EvaluationConfig())

`search.py` is the search itself (given a scorer and a reflection function); `optimize.py`
runs it on a loaded model and writes the prompt artifact (`models.prompt_artifact`). The
evaluation of a prompt against the plain instruction is `phases.evaluation.prompt_comparison`.
"""

from phases.prompting.optimize import optimize_prompt
from phases.prompting.search import Candidate, PromptRow, SearchResult, search_prompt

__all__ = ["Candidate", "PromptRow", "SearchResult", "optimize_prompt", "search_prompt"]
