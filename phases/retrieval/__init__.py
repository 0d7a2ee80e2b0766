"""The retrieval phase: index local documents (BM25 + MiniLM embeddings) and record the
passages that best answer the run's queries.

    from phases.retrieval import KnowledgeConfig, retrieve_passages
    result = retrieve_passages(KnowledgeConfig(sources=["docs/"]), ["refund policy"],
                               output_dir=Path("out"))
"""

from phases.retrieval.config import KnowledgeConfig
from phases.retrieval.documents import (
    Document,
    KnowledgeSourceError,
    SourceIssue,
    check_sources,
    read_document,
    read_sources,
)
from phases.retrieval.ranking import BM25, chunk_text, hybrid_scores, tokenize
from phases.retrieval.retrieve import (
    PASSAGES_FILE,
    REPORT_FILE,
    Chunk,
    KnowledgeIndex,
    Passage,
    RetrievalResult,
    build_index,
    build_queries,
    example_input,
    load_passages,
    retrieve_passages,
)

__all__ = [
    "BM25",
    "PASSAGES_FILE",
    "REPORT_FILE",
    "Chunk",
    "Document",
    "KnowledgeConfig",
    "KnowledgeIndex",
    "KnowledgeSourceError",
    "Passage",
    "RetrievalResult",
    "SourceIssue",
    "build_index",
    "build_queries",
    "check_sources",
    "chunk_text",
    "example_input",
    "hybrid_scores",
    "load_passages",
    "read_document",
    "read_sources",
    "retrieve_passages",
    "tokenize",
]
