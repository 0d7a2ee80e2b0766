"""`optimize_prompt()`: a prompt run (`training.method: "prompt"`) on a real model.

The training split is cut into a pool (reflection minibatches, exemplar candidates) and a
held-out part every candidate is scored on, with the evaluation's own generation settings and
per-row metric; the weights are never touched. The best prompt is written as a prompt artifact
(`prompt.json`: system prompt, exemplars, the base model's reference), beside
`candidates.json` (every candidate tried, with its held-out score) and `log_history.json`.

    result = optimize_prompt(PromptTraining(), model="builtin:tiny-llama",
                             train_path=Path("train.jsonl"), output_dir=Path("out"),
                             instruction="Answer in JSON.", evaluation=EvaluationConfig())
    result.model_path  # out/prompt.json

A finished run's folder is reused as it is (a re-run after a crash does not search again).
The reflection model is the run's model unless `reflection_model` names another local model;
a caller may pass its own `reflect` (a langchain-core chat model, say).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from models.config import ModelConfig
from models.prompt_artifact import PROMPT_FILE, Exemplar, PromptArtifact, write_prompt_artifact
from phases.evaluation.config import EvaluationConfig
from phases.evaluation.errors import EvaluationInputError
from phases.evaluation.eval_data import EvalExample, load_eval_examples
from phases.evaluation.model_evaluation import evaluate_loaded, load_for_generation
from phases.evaluation.prompt_comparison import PROMPTABLE_KINDS, prompted_examples
from phases.prompting.search import PromptRow, Reflect, search_prompt
from phases.training.config import PROMPT_METRICS, PromptTraining
from phases.training.data import TrainingInputError
from phases.training.results import TrainingProgress, TrainingResult

CANDIDATES_FILE = "candidates.json"
LOG_HISTORY_FILE = "log_history.json"
ARGS_FILE = "training_args.json"


def prompt_metric(config: PromptTraining, evaluation: EvaluationConfig) -> str:
    """The per-row metric the search maximizes: the configured one, else the first of the
    evaluation's metrics that is scored per row, else exact match."""
    if config.metric:
        return config.metric
    return next((m for m in evaluation.metrics if m in PROMPT_METRICS), "exact_match")


def optimize_prompt(
    config: PromptTraining,
    *,
    model: ModelConfig | str,
    train_path: Path,
    output_dir: Path,
    instruction: str,
    evaluation: EvaluationConfig,
    reflect: Reflect | None = None,
    progress: Callable[[TrainingProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    cache_dir: Path | None = None,
) -> TrainingResult:
    """Search a system prompt and exemplars for `model` on `train_path`, weights frozen.

    The search starts from `config.base_prompt` (default: `instruction`, the run's task). Raises
    TrainingInputError for data it cannot use (fewer than 2 rows, a kind other than chat or
    prompt/completion), before any model loads."""
    output_dir = Path(output_dir)
    finished = _finished(output_dir, config)
    if finished is not None:
        return finished
    rows = _rows(Path(train_path))
    base_prompt = config.base_prompt if config.base_prompt is not None else instruction
    metric = prompt_metric(config, evaluation)
    pool, held_out = _split(rows, config)
    loaded, tokenizer = load_for_generation(model, cache_dir)
    scoring = evaluation.model_copy(update={"metrics": [metric], "max_examples": None})
    model_ref = model.name_or_path if isinstance(model, ModelConfig) else str(model)

    def scorer(system_prompt: str, exemplars: list[Exemplar], batch: list[PromptRow]):
        applied = PromptArtifact(model=model_ref, system_prompt=system_prompt, exemplars=exemplars)
        examples = [EvalExample(_kind(r), r.prompt, r.reference) for r in batch]
        _, predictions = evaluate_loaded(
            loaded, tokenizer, prompted_examples(examples, applied), scoring
        )
        return [p.got or "" for p in predictions], [_row_score(p, metric) for p in predictions]

    if reflect is None and config.optimizer == "gepa":
        reflect = local_reflection(config, model, loaded, tokenizer, cache_dir)
    total = config.planned_metric_calls(len(rows))
    history: list[dict] = []

    def report(calls: int, best: float) -> None:
        history.append({"step": calls, "score": best})
        if progress:
            progress(TrainingProgress(calls, max(total, calls), None, None, None, None, None))

    found = search_prompt(
        config,
        scorer=scorer,
        reflect=reflect,
        base_prompt=base_prompt,
        pool=pool,
        held_out=held_out,
        progress=report,
        should_stop=should_stop,
    )
    if should_stop and should_stop():
        return _result(output_dir, "cancelled", found.metric_calls, total, None, history)
    prompt = PromptArtifact(
        model=model_ref,
        system_prompt=found.best.system_prompt,
        exemplars=found.best.exemplars,
        base_prompt=base_prompt,
        metric=metric,
        scores={
            "held_out_rows": len(held_out),
            "base": found.base.score,
            "best": found.best.score,
            "best_source": found.best.source,
            "metric_calls": found.metric_calls,
            "candidates": len(found.candidates),
        },
    )
    path = write_prompt_artifact(prompt, output_dir / PROMPT_FILE)
    _write_records(output_dir, config, found, len(rows), len(held_out))
    return _result(output_dir, "completed", found.metric_calls, total, path, history)


def local_reflection(
    config: PromptTraining, model: ModelConfig | str, loaded, tokenizer, cache_dir: Path | None
) -> Reflect:
    """The reflection model as a function: `config.reflection_model` loaded locally, else the
    run's own (already loaded) model; each reply sampled with its own seed."""
    from models.generation import (
        encode_prompt,
        generate_completions,
        has_chat_template,
        render_chat,
    )

    if config.reflection_model:
        loaded, tokenizer = load_for_generation(config.reflection_model, cache_dir)
    calls = [0]

    def reflect(prompt: str | list[dict]) -> str:
        messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        templated = has_chat_template(tokenizer)
        text = render_chat(tokenizer, messages) if templated else str(prompt)
        calls[0] += 1
        [completion] = generate_completions(
            loaded,
            tokenizer,
            [encode_prompt(tokenizer, text, templated=templated)],
            max_new_tokens=config.reflection_max_new_tokens,
            do_sample=True,
            temperature=0.7,
            seed=config.seed + calls[0],
        )
        return completion.text

    return reflect


def _rows(train_path: Path) -> list[PromptRow]:
    try:
        examples = load_eval_examples(train_path)
    except EvaluationInputError as exc:
        raise TrainingInputError(str(exc)) from None
    if len(examples) < 2:
        raise TrainingInputError(
            f"{train_path}: a prompt run needs at least 2 training rows (some are held out to "
            f"score candidates on), got {len(examples)}"
        )
    kind = examples[0].kind
    if kind not in PROMPTABLE_KINDS:
        raise TrainingInputError(
            f"{train_path}: method 'prompt' learns from chat or prompt/completion data, not "
            f"{kind} data"
        )
    return [PromptRow(e.prompt, e.reference or "", _user_text(e)) for e in examples]


def _user_text(example: EvalExample) -> str:
    if isinstance(example.prompt, str):
        return example.prompt
    users = [m["content"] for m in example.prompt if m.get("role") == "user"]
    return users[-1] if users else ""


def _kind(row: PromptRow) -> str:
    return "chat" if isinstance(row.prompt, list) else "prompt_completion"


def _row_score(prediction, metric: str) -> float:
    value = (prediction.scores or {}).get(metric)
    if value is None:  # a row the metric cannot score (a JSON metric on a non-JSON answer)
        value = (prediction.scores or {}).get("exact_match", 0.0)
    return float(value or 0.0)


def _split(rows: list[PromptRow], config: PromptTraining) -> tuple[list, list]:
    """(pool, held_out): a seeded shuffle, the held-out rows first."""
    order = list(range(len(rows)))
    random.Random(config.seed).shuffle(order)
    cut = config.held_out_count(len(rows))
    return [rows[i] for i in order[cut:]], [rows[i] for i in order[:cut]]


def _write_records(output_dir: Path, config, found, rows: int, held_out: int) -> None:
    candidates = [
        {
            "source": c.source,
            "score": c.score,
            "system_prompt": c.system_prompt,
            "exemplars": [e.__dict__ for e in c.exemplars],
        }
        for c in found.candidates
    ]
    (output_dir / CANDIDATES_FILE).write_text(json.dumps(candidates, indent=1), "utf-8")
    args = {
        "finetune_agent": {
            "training_config": config.model_dump(mode="json"),
            "num_examples": rows,
            "held_out_rows": held_out,
            "metric_calls": found.metric_calls,
            "gepa_log": found.log[-50:],
        }
    }
    (output_dir / ARGS_FILE).write_text(json.dumps(args, indent=1), "utf-8")


def _result(output_dir, status, calls, total, path, history) -> TrainingResult:
    (output_dir / LOG_HISTORY_FILE).parent.mkdir(parents=True, exist_ok=True)
    (output_dir / LOG_HISTORY_FILE).write_text(json.dumps(history), "utf-8")
    message = (
        f"Prompt search completed: {calls} metric calls; prompt saved to {path}."
        if path
        else f"Prompt search cancelled after {calls} metric calls; nothing saved."
    )
    return TrainingResult(
        status=status,
        global_step=calls,
        total_steps=max(total, calls),
        resumed_from_step=0,
        train_loss=None,
        model_path=str(path) if path else None,
        checkpoint_path=None,
        log_history_path=str(output_dir / LOG_HISTORY_FILE),
        args_path=str(output_dir / ARGS_FILE),
        message=message,
    )


def _finished(output_dir: Path, config: PromptTraining) -> TrainingResult | None:
    """The result of a search already finished in `output_dir` with this config, if any."""
    try:
        args = json.loads((output_dir / ARGS_FILE).read_text("utf-8"))["finetune_agent"]
        history = json.loads((output_dir / LOG_HISTORY_FILE).read_text("utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    path = output_dir / PROMPT_FILE
    if args.get("training_config") != config.model_dump(mode="json") or not path.is_file():
        return None
    calls = args.get("metric_calls", 0)
    return _result(output_dir, "completed", calls, calls, path, history)
