"""The knowledge retrieval agent: indexes `knowledge.sources` and records passages for the run.

Queries come from the task description and the seed training examples; the top-k passages per
query go to `<run_dir>/knowledge/passages.jsonl` and state keeps only their ids, counts and the
sources that could not be read (by name). Unreadable files never stop the run; a local source
that does not exist does (bad input naming `knowledge.sources[i]`), before anything is indexed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from llmfinetune_agent.agents.node_io import emit, run_config, run_path
from llmfinetune_agent.context import RunContext, run_context
from llmfinetune_agent.state import RunState


def knowledge_retrieval(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Graph node: retrieve passages for the run's queries and reference them from state."""
    from phases.data import read_jsonl
    from phases.retrieval import build_queries, retrieve_passages

    config = run_config(state)
    seeds = read_jsonl(state["data"]["train_path"])
    queries = build_queries(config.task, seeds, config.knowledge.max_queries)
    emit("agent", agent="knowledge_retrieval", message=f"indexing {config.knowledge.sources}")
    result = retrieve_passages(
        config.knowledge,
        queries,
        output_dir=run_path(state, "knowledge"),
        cache_dir=run_context(runtime).models_cache,
    )
    summary = result.summary_lines()
    for line in summary:
        emit("agent", agent="knowledge_retrieval", message=line)
    retrieval = {
        "status": "done" if result.passage_ids else "empty",
        "passages_path": result.passages_path,
        "report_path": result.report_path,
        "passage_ids": result.passage_ids,
        "queries": result.queries,
        "documents": result.documents,
        "chunks": result.chunks,
        "unreadable_sources": [str(issue) for issue in result.issues],
        "message": " ".join(summary),
    }
    return {"data": {**state["data"], "retrieval_done": True, "retrieval": retrieval}}


def retrieved_passage_texts(data: dict[str, Any]) -> list[str]:
    """The texts of the passages state refers to (empty without retrieval)."""
    from phases.retrieval import load_passages

    retrieval = data.get("retrieval") or {}
    path = retrieval.get("passages_path")
    if not path or not Path(path).is_file():
        return []
    return [p.text for p in load_passages(path, retrieval.get("passage_ids"))]
