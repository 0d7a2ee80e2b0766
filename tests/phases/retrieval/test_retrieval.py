"""Retrieval: recall on a labelled corpus, chunking, caching, unreadable sources reported by
name, and a local source that does not exist refused naming its setting."""

import csv
import json
import os
import threading
from pathlib import Path

import pytest
from knowledge_corpus import DOCUMENTS, QUESTIONS, write_corpus

from phases.data import DataError
from phases.retrieval import (
    KnowledgeConfig,
    KnowledgeSourceError,
    build_index,
    build_queries,
    chunk_text,
    load_passages,
    read_sources,
    retrieve_passages,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def _recall_at_3(corpus: Path, cache: Path, **settings) -> float:
    index = build_index(KnowledgeConfig(sources=[str(corpus)], **settings), cache_dir=cache)
    hits = 0
    for question, answer in QUESTIONS.items():
        found = [Path(p.source).name for p in index.search(question, top_k=3)]
        hits += answer in found
    return hits / len(QUESTIONS)


def test_hybrid_recall_at_3_on_labelled_corpus(corpus: Path, tmp_path: Path) -> None:
    assert _recall_at_3(corpus, tmp_path) >= 0.9
    # the cache holds one embedding file per document, reused by the next index
    cached = sorted((tmp_path / "retrieval").glob("*.npy"))
    assert len(cached) == len(DOCUMENTS)
    stamps = [p.stat().st_mtime_ns for p in cached]
    assert _recall_at_3(corpus, tmp_path) >= 0.9
    assert [p.stat().st_mtime_ns for p in cached] == stamps


def test_bm25_only_ranks_without_the_encoder(corpus: Path, tmp_path: Path) -> None:
    index = build_index(KnowledgeConfig(sources=[str(corpus)], embedding_weight=0.0))
    assert index.embeddings is None
    top = index.search("rate limit 429 requests per minute", top_k=1)[0]
    assert Path(top.source).name == "api_limits.md" and top.score == 1.0


def test_markup_and_structured_files_become_plain_text(corpus: Path) -> None:
    documents, issues = read_sources([str(corpus)])
    assert issues == []
    text = {Path(d.source).name: d.text for d in documents}
    assert "<p>" not in text["passwords.html"] and "p{}" not in text["passwords.html"]
    assert "expires after one hour" in text["passwords.html"]
    assert "opening_hours: Monday to Friday" in text["office_hours.json"]
    assert "Team, 29 euros, up to 10 users" in text["pricing.csv"]


def test_chunks_overlap_and_keep_words_whole() -> None:
    text = " ".join(f"word{i}" for i in range(400))
    chunks = chunk_text(text, size=120, overlap=30)
    assert all(len(c) <= 120 for c in chunks)
    assert all(c.split()[0] in text.split() and c.split()[-1] in text.split() for c in chunks)
    for left, right in zip(chunks, chunks[1:], strict=False):
        assert left.split()[-1] in right.split()[:6]  # neighbours share their border words
    assert chunks[-1].endswith("word399")


def test_bad_sources_are_reported_by_name_and_the_rest_is_used(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.txt").write_text("Refunds are paid within five days.", encoding="utf-8")
    (folder / "empty.txt").write_text("", encoding="utf-8")
    (folder / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01")
    (folder / "latin1.md").write_bytes("Caf\xe9 cr\xe8me br\xfbl\xe9e".encode("latin-1"))
    (folder / "broken.json").write_text('{"a": ', encoding="utf-8")
    (folder / "archive.zip").write_bytes(b"PK\x03\x04")
    url = "https://example.com/faq.html"
    result = retrieve_passages(
        KnowledgeConfig(sources=[str(folder), url], embedding_weight=0.0),
        ["when are refunds paid"],
        output_dir=tmp_path / "out",
    )
    reasons = {Path(i.source).name: i.reason for i in result.issues}
    assert "empty" in reasons["empty.txt"]
    assert "binary" in reasons["image.txt"]
    assert "UTF-8" in reasons["latin1.md"]
    assert "invalid JSON at line 1" in reasons["broken.json"]
    assert "unsupported file type '.zip'" in reasons["archive.zip"]
    assert reasons["faq.html"] == "not a local file or folder (URLs are not read)"
    assert result.documents == 1 and result.chunks == 1
    summary = "\n".join(result.summary_lines())
    assert str(folder / "image.txt") in summary and f"Skipped {url}: not a local" in summary
    passages = load_passages(result.passages_path)
    assert [Path(p.source).name for p in passages] == ["good.txt"]


def test_passages_are_recorded_with_source_chunk_and_score(corpus: Path, tmp_path: Path) -> None:
    queries = build_queries(
        "Answer customer questions about shipping.",
        [{"prompt": "How fast is express delivery?", "completion": "Next day."}],
        max_queries=5,
    )
    assert queries == ["Answer customer questions about shipping.", "How fast is express delivery?"]
    config = KnowledgeConfig(sources=[str(corpus)], top_k=2, embedding_weight=0.0)
    result = retrieve_passages(config, queries, output_dir=tmp_path)
    rows = [json.loads(line) for line in Path(result.passages_path).read_text().splitlines()]
    assert len(rows) == 4 and {r["rank"] for r in rows} == {1, 2}
    assert set(rows[0]) == {"id", "query", "rank", "source", "chunk", "score", "text"}
    express = [r for r in rows if r["query"] == queries[1]]
    assert Path(express[0]["source"]).name == "shipping.txt"
    report = json.loads(Path(result.report_path).read_text())
    assert report["passage_ids"] == result.passage_ids and report["documents"] == 20


def test_a_local_source_that_does_not_exist_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "faq.txt").write_text("Refunds are paid within five days.")
    sources = [str(tmp_path / "docs"), str(tmp_path / "doc"), "https://example.com/faq"]
    sources.append(str(tmp_path / "faq.txt"))
    with pytest.raises(KnowledgeSourceError) as error:
        retrieve_passages(
            KnowledgeConfig(sources=sources, embedding_weight=0.0),
            ["when are refunds paid"],
            output_dir=tmp_path / "out",
        )
    assert isinstance(error.value, DataError)  # the run reports it as bad input
    assert str(error.value) == (
        f"knowledge.sources[1]: {tmp_path / 'doc'}: no such file or folder; "
        f"knowledge.sources[3]: {tmp_path / 'faq.txt'}: no such file or folder. Fix the path "
        "(a relative one is read from the config file's folder), or remove it from "
        "knowledge.sources."
    )
    assert not (tmp_path / "out").exists()  # refused before anything was indexed or written


@pytest.fixture
def default_csv_field_limit():
    """csv's field size limit is process-wide, and our data loader raises it: the default here."""
    previous = csv.field_size_limit(131_072)
    yield
    csv.field_size_limit(previous)


@pytest.mark.usefixtures("default_csv_field_limit")
def test_odd_files_are_skipped_by_name_never_read_forever_or_raised(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.txt").write_text("Refunds are paid within five days.", encoding="utf-8")
    os.mkfifo(folder / "pipe.txt")  # reading it would wait for a writer forever
    os.symlink(folder / "gone.txt", folder / "dangling.md")
    (folder / "deep.json").write_text("[" * 5000 + "]" * 5000)  # RecursionError in json
    (folder / "quote.csv").write_text('a,"unclosed\n' + "x" * 200_000 + "\n")  # csv.Error
    # `</head>` may be left out (HTML5): the body's text is still the document's
    (folder / "page.html").write_text(
        "<html><head><title>T</title><body><p>Express orders ship the same day.</p>"
    )
    config = KnowledgeConfig(sources=[str(folder), str(folder / "pipe.txt")], embedding_weight=0)
    results: list = []
    worker = threading.Thread(
        target=lambda: results.append(
            retrieve_passages(config, ["when are refunds paid"], output_dir=tmp_path / "out")
        ),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():  # blocked opening the pipe: give it a writer so the thread can end
        os.close(os.open(folder / "pipe.txt", os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading the knowledge sources waited on a named pipe")
    [result] = results
    reasons = {Path(i.source).name: i.reason for i in result.issues}
    for name in ("pipe.txt", "dangling.md"):  # a device (/dev/zero) takes the pipe's path
        assert reasons[name] == "not a regular file (a broken link, a pipe or a device)"
    assert reasons["deep.json"] == "JSON nested too deeply to read"
    assert reasons["quote.csv"].startswith("invalid CSV at line 2: field larger than")
    assert len(result.issues) == 5  # the pipe once from the folder, once named itself
    documents, _ = read_sources([str(folder / "page.html")])
    assert [d.text for d in documents] == ["Express orders ship the same day."]
    assert result.documents == 2


def test_a_blank_source_is_refused_not_read_as_the_current_folder() -> None:
    with pytest.raises(ValueError, match=r"knowledge.sources\[1\] is empty"):
        KnowledgeConfig(sources=["docs", " "])
