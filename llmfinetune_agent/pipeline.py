"""The phases of a run called directly, in order, with no graph, gates or stores.

Used by `finetune-agent train|evaluate` and as the baseline that
`benchmarks/graph_overhead.py` compares the graph against.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmfinetune_agent.config import RunConfig

EventSink = Callable[[str, dict[str, Any]], None]


def prepare_direct(
    config: RunConfig, out: Path, *, cache_dir: Path, sample_size: int = 3
) -> dict[str, Any]:
    """Validate and split the data with the base model's tokenizer into `out/data`; models
    resolve through `cache_dir` (the service's model cache)."""
    from models import load_tokenizer
    from phases.data import prepare_data, tokenizer_token_counter
    from phases.training.data import check_kind

    tokenizer = load_tokenizer(config.model, cache_dir=cache_dir)
    prepared = prepare_data(
        config.data, count_tokens=tokenizer_token_counter(tokenizer), output_dir=out / "data"
    )
    # Data the method cannot learn from fails now, before any gate, not in the trainer.
    check_kind(Path(config.data.train), prepared.kind, config.training.method)
    if config.training.method == "prompt":
        check_prompt_run(config, len(prepared.train), cache_dir=cache_dir)
    if prepared.eval:
        # Eval data the metrics cannot use fails now, not after hours of training.
        from phases.evaluation.model_evaluation import load_checked_examples

        load_checked_examples(config.evaluation, out / "data" / "eval.jsonl")
    report = prepared.report.to_dict()
    report.pop("dropped", None)  # row-by-row drops stay in data_report.json, out of state
    return {
        "train_path": str(out / "data" / "train.jsonl"),
        "eval_path": str(out / "data" / "eval.jsonl"),
        "report_path": str(out / "data" / "data_report.json"),
        "kind": prepared.kind,
        "format": prepared.format,
        "train_rows": len(prepared.train),
        "eval_rows": len(prepared.eval),
        "data_hash": prepared.report.data_hash,
        "report": report,
        "summary": prepared.report.summary_lines(),
        "sample": prepared.train[:sample_size],
    }


def check_prompt_run(config: RunConfig, train_rows: int, *, cache_dir: Path) -> None:
    """What a prompt run needs besides data of the right kind, checked with the data rather
    than in the trainer after the gates: two training rows (some are held out to score
    candidates on), and a reflection model that exists. Raises a bad-input error naming it."""
    from models import ModelLoadError
    from models.loading import load_model_config
    from phases.training.data import TrainingInputError

    if train_rows < 2:
        raise TrainingInputError(
            f"{config.data.train}: a prompt run needs at least 2 training rows (some are held "
            f"out to score candidates on), got {train_rows}"
        )
    reflection_model = config.training.reflection_model
    if reflection_model:
        try:  # finds the folder or builds the built-in; reads config.json, not the weights
            load_model_config(reflection_model, cache_dir=cache_dir)
        except ModelLoadError as exc:
            raise TrainingInputError(f"training.reflection_model: {exc}") from None
    reflection_chat(config)  # builds the chat model: a bad class or argument names its field


def train_direct(
    config: RunConfig,
    out: Path,
    data: dict[str, Any],
    *,
    stop_at_fraction: float | None = None,
    progress: EventSink | None = None,
    continue_from: Path | None = None,
    cache_dir: Path,
    should_stop: Callable[[], bool] | None = None,
    backends_dir: Path | None = None,
    reward_modules: list[str] | None = None,
) -> dict[str, Any]:
    """Train into `out` (to the end, or to a fraction), resuming from a checkpoint there, or,
    when `out` has none, from `continue_from` (an earlier run's checkpoint, same model/data).
    Training stops at the next step once `should_stop()` is True (a cancel). `backends_dir`
    holds the AutoTrain backend for `training.backend: autotrain`; `reward_modules` are the
    modules a GRPO/RLOO run's user reward functions may come from. A prompt run
    (`training.method: "prompt"`) searches a prompt instead, to the end in one go."""
    from phases.training import train

    if config.training.method == "prompt":
        return optimize_prompt_direct(
            config, out, data, progress=progress, cache_dir=cache_dir, should_stop=should_stop
        )

    result = train(
        config.training,
        model=config.model,
        train_path=Path(data["train_path"]),
        eval_path=Path(data["eval_path"]) if data["eval_rows"] else None,
        output_dir=out,
        max_length=config.data.max_length,
        stop_at_fraction=stop_at_fraction,
        progress=(lambda p: progress("training_progress", p.to_dict())) if progress else None,
        cache_dir=cache_dir,
        continue_from=continue_from,
        should_stop=should_stop,
        backends_dir=backends_dir,
        reward_modules=reward_modules,
    )
    return result.to_dict()


def optimize_prompt_direct(
    config: RunConfig,
    out: Path,
    data: dict[str, Any],
    *,
    progress: EventSink | None = None,
    cache_dir: Path,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """A prompt run's search into `out/prompt.json`, scored with the run's evaluation
    settings; the reflection model is `training.reflection_chat_model` when set (a
    langchain-core chat model), else a local model (see `optimize_prompt`)."""
    from phases.prompting import optimize_prompt

    result = optimize_prompt(
        config.training,
        model=config.model,
        train_path=Path(data["train_path"]),
        output_dir=out,
        instruction=config.task,
        evaluation=config.evaluation,
        reflect=reflection_chat(config),
        progress=(lambda p: progress("training_progress", p.to_dict())) if progress else None,
        should_stop=should_stop,
        cache_dir=cache_dir,
    )
    return result.to_dict()


def reflection_chat(config: RunConfig) -> Callable[[Any], str] | None:
    """The configured langchain-core reflection model as a function (prompt -> reply text),
    or None when the reflection model is local."""
    training = config.training
    if not getattr(training, "reflection_chat_model", None):
        return None
    from llmfinetune_agent.chat_model import load_chat_model

    chat = load_chat_model(
        training.reflection_chat_model,
        training.reflection_chat_model_kwargs,
        field="training.reflection_chat_model",
    )

    def reflect(prompt: Any) -> str:
        content = chat.invoke(prompt).content
        return content if isinstance(content, str) else str(content)

    return reflect


def evaluate_direct(
    config: RunConfig,
    out: Path,
    data: dict[str, Any],
    *,
    tuned: str,
    log_history: Path | None = None,
    progress: EventSink | None = None,
    cache_dir: Path,
) -> dict[str, Any]:
    """Base vs `tuned` on the eval split; the report goes to `out/evaluation`."""
    from phases.evaluation import compare_models

    report = compare_models(
        config.evaluation,
        base=config.model,
        tuned=tuned,
        eval_path=Path(data["eval_path"]),
        output_dir=out / "evaluation",
        cache_dir=cache_dir,
        log_history_path=log_history,
        progress=(lambda d, t: progress("evaluation_progress", {"done": d, "total": t}))
        if progress
        else None,
    )
    return report.summary()
