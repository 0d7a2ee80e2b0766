"""The data generator agent: validates, de-duplicates and splits the seed data when state has
none, then generates synthetic examples when the config enables it and they are not made yet.

Generation writes `<run_dir>/synthesis/synthetic.jsonl` and `generation_report.json`, merges the
kept examples with the seed training split into `<run_dir>/data/train_with_synthetic.jsonl`
and points state at it. When nothing usable comes out (or the generator fails), state says so
plainly and keeps the seed data, so the data gate asks whether to train on the seeds alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from llmfinetune_agent.agents.knowledge_agent import retrieved_passage_texts
from llmfinetune_agent.agents.node_io import emit, run_config, run_path
from llmfinetune_agent.config import is_local_path
from llmfinetune_agent.context import RunContext, run_context
from llmfinetune_agent.pipeline import prepare_direct
from llmfinetune_agent.sections import local_paths
from llmfinetune_agent.state import RunState
from phases.data import DataError
from phases.retrieval import check_sources

# The parts of the generation report that go into state (the rest stays in the report file).
_STATE_KEYS = (
    "generator",
    "requested",
    "generated",
    "kept",
    "dropped",
    "sample",
    "keep_rate",
    "near_duplicate_rate",
    "field_rules",
    "field_stats",
    "replies",
    "replies_extracted",
    "replies_with_several_examples",
    "stopped_early",
    "usable",
    "message",
    "synthetic_path",
    "report_path",
)


def data_generator(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Graph node: prepare the seed data when there is none, else generate (when enabled)."""
    cache_dir = run_context(runtime).models_cache
    if not state.get("data"):
        return {"data": prepare_seed_data(state, cache_dir)}
    return {"data": generate_synthetic_data(state, cache_dir)}


def prepare_seed_data(state: RunState, cache_dir: Path) -> dict[str, Any]:
    """Validate and split the configured data with the base model's tokenizer."""
    config = run_config(state)
    if config.knowledge.enabled:  # a typo in a source fails now, not after the plan gate
        check_sources(config.knowledge.sources)
    check_config_paths(config)
    emit("agent", agent="data_generator", message=f"validating {config.data.train}")
    data = prepare_direct(config, Path(state["run_dir"]), cache_dir=cache_dir)
    emit("data_report", summary=data["summary"])
    if not data["eval_rows"]:  # the evaluator would find nothing, after all the training
        raise DataError(
            f"{config.data.train}: no rows are held out for evaluation ({data['train_rows']} "
            f"training rows, data.eval_fraction {config.data.eval_fraction}, no data.eval): the "
            "evaluator compares the base and tuned models on held-out rows. Give data.eval, "
            "raise data.eval_fraction, or add distinct rows."
        )
    return data


def check_config_paths(config: Any) -> None:
    """`DataError` naming every local path of the config that does not exist and is read only
    later (a merge's held_out or sources, an SFT adapter, a reflection model): found now,
    before any gate, not by the phase that reads it after training. (The API refuses them at
    submission; the CLI took them.) The model and the data are read right after this, by
    checks that say more (a close file name, say); knowledge sources by `check_sources`, when
    retrieval is on."""
    missing = [
        f"{where}: {value}"
        for where, value, path_field in local_paths(config.model_dump(mode="json"))
        if not where.startswith(("model.", "data.", "knowledge."))
        and is_local_path(value, path_field)
        and not Path(value).exists()
    ]
    if missing:
        raise DataError(f"{'; '.join(missing)}: no such file or directory")


def generate_synthetic_data(state: RunState, cache_dir: Path) -> dict[str, Any]:
    """Generate, filter and merge synthetic examples; return the new `data` state."""
    from llmfinetune_agent.chat_model import ChatModelError, display_name, generator_chat_model
    from models import ModelLoadError
    from phases.data import read_jsonl
    from phases.synthesis import GenerationError, generate_examples, generator_stop

    config, data = run_config(state), state["data"]
    if not config.data_generation.enabled:
        return {**data, "generation_done": True}
    emit("agent", agent="data_generator", message="generating synthetic examples")
    try:
        chat = generator_chat_model(config, cache_dir=cache_dir)
        kept, report = generate_examples(
            config.data_generation,
            task=config.task,
            kind=data["kind"],
            seeds=read_jsonl(data["train_path"]),
            eval_records=read_jsonl(data["eval_path"]) if data.get("eval_rows") else [],
            passages=retrieved_passage_texts(data),
            passage_context=config.knowledge.enabled and config.knowledge.rag_context,
            complete=generator_function(chat, generator_stop(data["kind"])),
            generator_name=display_name(chat),
            output_dir=run_path(state, "synthesis"),
            progress=_progress,
        )
    except (GenerationError, ChatModelError, ModelLoadError) as exc:
        message = (
            f"Generation failed: {exc}. No synthetic examples were added; approve to train on "
            "the seed data only, or edit data_generation."
        )
        emit("agent", agent="data_generator", message=message)
        failed = {"status": "failed", "generated": 0, "kept": 0, "usable": False}
        return {**data, "generation_done": True, "generation": {**failed, "message": message}}
    summary = {key: report.to_dict()[key] for key in _STATE_KEYS}
    summary["status"] = "done" if report.usable else "no_usable_examples"
    emit("agent", agent="data_generator", message=report.message)
    update = {**data, "generation_done": True, "generation": summary}
    if kept:
        update.update(_merged(state, data, kept))
    return update


def _merged(state: RunState, data: dict[str, Any], kept: list[dict[str, Any]]) -> dict[str, Any]:
    """State fields for the merged training set (the seed split is kept for reference)."""
    from phases.synthesis import MERGED_FILE, merge_training_data

    merged = merge_training_data(
        Path(data["train_path"]),
        Path(data["eval_path"]),
        kept,
        run_path(state, "data") / MERGED_FILE,
    )
    return {
        **merged,
        "seed_train_path": data["train_path"],
        "seed_train_rows": data["train_rows"],
        "seed_data_hash": data["data_hash"],
    }


def generator_function(
    chat: Any, stop: list[str]
) -> Callable[[list[list[dict[str, str]]], float], list[str]]:
    """The synthesis phase's generator function over a langchain-core chat model, asking it to
    stop at `stop` (a local model stops generating there; a remote one is sent them)."""

    def complete(prompts: list[list[dict[str, str]]], temperature: float) -> list[str]:
        inputs = [[(m["role"], m["content"]) for m in prompt] for prompt in prompts]
        replies = chat.batch(inputs, temperature=temperature, stop=stop)
        return [str(reply.content) for reply in replies]

    return complete


def _progress(generated: int, kept: int, requested: int) -> None:
    emit("generation_progress", generated=generated, kept=kept, requested=requested)
