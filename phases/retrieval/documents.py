"""Reading the knowledge sources: files or folders of txt, md, html, json and csv documents.

`check_sources` refuses a local path that does not exist (a typo would otherwise leave the run
without its documents, silently): KnowledgeSourceError, bad input naming `knowledge.sources[i]`.
Reading itself never raises for a bad source: a binary or empty file, text in an unreadable
encoding, or a source that is no local path (a URL) becomes a `SourceIssue` naming it, and
reading goes on with the rest.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from phases.data.errors import DataError

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".json", ".csv")
_ENCODINGS = ("utf-8-sig", "utf-16")  # utf-16 only when the file starts with its byte-order mark


@dataclass(frozen=True)
class Document:
    """The plain text of one readable source file and the sha256 of its bytes."""

    source: str
    text: str
    sha256: str


@dataclass(frozen=True)
class SourceIssue:
    """A source that could not be used, and why (shown to the user as it is)."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


class KnowledgeSourceError(DataError):
    """A knowledge source that cannot be used at all; the message names its setting."""


def is_local_source(source: str) -> bool:
    """Whether `source` names a local file or folder: not a URL or other `scheme:` reference
    (the rule the run config uses to anchor relative paths)."""
    return ":" not in source.split("/")[0]


def check_sources(sources: list[str]) -> None:
    """Raise KnowledgeSourceError naming `knowledge.sources[i]` for each local path that does
    not exist."""
    missing = [
        f"knowledge.sources[{index}]: {source}: no such file or folder"
        for index, source in enumerate(sources)
        if is_local_source(source) and not _exists(source)
    ]
    if missing:
        raise KnowledgeSourceError(
            "; ".join(missing) + ". Fix the path (a relative one is read from the config "
            "file's folder), or remove it from knowledge.sources."
        )


def _exists(source: str) -> bool:
    try:
        return Path(source).exists()
    except (OSError, ValueError):  # a name the system cannot look up (too long, a NUL byte)
        return False


def read_sources(sources: list[str]) -> tuple[list[Document], list[SourceIssue]]:
    """Every readable document under `sources` (files, or folders searched recursively), and an
    issue for each source that is missing, binary, empty, unsupported or not decodable."""
    documents: list[Document] = []
    issues: list[SourceIssue] = []
    for source in sources:
        path = Path(source)
        if not is_local_source(source):
            issues.append(SourceIssue(source, "not a local file or folder (URLs are not read)"))
        elif not path.exists():
            issues.append(SourceIssue(source, "not found (no such file or folder)"))
        elif path.is_dir():
            # Not only regular files: a broken link, a pipe or a device in the folder is
            # named as skipped (read_document says why) rather than left out silently.
            files = sorted(p for p in path.rglob("*") if not p.is_dir() and not _hidden(p, path))
            if not files:
                issues.append(SourceIssue(source, "the folder holds no files"))
            for file in files:
                _read_into(file, documents, issues)
        else:
            _read_into(path, documents, issues)
    return documents, issues


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _read_into(path: Path, documents: list[Document], issues: list[SourceIssue]) -> None:
    result = read_document(path)
    (documents if isinstance(result, Document) else issues).append(result)


def read_document(path: Path) -> Document | SourceIssue:
    """One file as a `Document`, or the `SourceIssue` saying why it cannot be used."""
    name = str(path)
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        return SourceIssue(
            name, f"unsupported file type '{path.suffix or '(none)'}'; use txt, md, html, json, csv"
        )
    if not path.is_file():  # a pipe or a device (/dev/zero) would block or never end
        return SourceIssue(name, "not a regular file (a broken link, a pipe or a device)")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return SourceIssue(name, f"cannot be read: {exc.strerror or exc}")
    if not raw.strip():
        return SourceIssue(name, "the file is empty")
    text = _decode(raw)
    if text is None:
        if b"\x00" in raw[:8192]:
            return SourceIssue(name, "a binary file, not text")
        return SourceIssue(name, "not readable as UTF-8 (or UTF-16 with a byte-order mark) text")
    try:
        plain = _plain_text(path.suffix.lower(), text)
    except ValueError as exc:
        return SourceIssue(name, str(exc))
    except RecursionError:  # JSON nested deeper than Python's parser (or our walk) can go
        return SourceIssue(name, "JSON nested too deeply to read")
    if not plain.strip():
        return SourceIssue(name, "no text left after removing markup")
    return Document(name, plain.strip(), hashlib.sha256(raw).hexdigest())


def _decode(raw: bytes) -> str | None:
    has_bom16 = raw.startswith((b"\xff\xfe", b"\xfe\xff"))
    encodings = _ENCODINGS[1:] if has_bom16 else _ENCODINGS[:1]
    for encoding in encodings:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text
    return None


def _plain_text(suffix: str, text: str) -> str:
    if suffix in (".html", ".htm"):
        return html_text(text)
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON at line {exc.lineno}: {exc.msg}") from None
        return "\n".join(_json_strings(data))
    if suffix == ".csv":
        rows = csv.reader(io.StringIO(text))
        try:
            return "\n".join(
                ", ".join(cell.strip() for cell in row if cell.strip()) for row in rows
            )
        except csv.Error as exc:  # e.g. an unclosed quote running into csv's field size limit
            raise ValueError(f"invalid CSV at line {rows.line_num}: {exc}") from None
    return text


def _json_strings(data: Any) -> list[str]:
    """The text values of a JSON document, each as 'key: value' when it has a key."""
    if isinstance(data, dict):
        out = []
        for key, value in data.items():
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                out.append(f"{key}: {value}")
            else:
                out.extend(_json_strings(value))
        return out
    if isinstance(data, list):
        return [line for item in data for line in _json_strings(item)]
    return [str(data)] if isinstance(data, str) else []


class _TextCollector(HTMLParser):
    """Visible text of an HTML page: skips script/style, breaks lines at block elements."""

    _SKIP = {"script", "style", "noscript", "template", "head"}
    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "pre"}
    # What may stand in <head>; any other start tag (<body>, <p>) ends it, as in a browser:
    # HTML lets `</head>` out, and waiting for it would drop the whole page's text.
    _HEAD_CONTENT = {"title", "meta", "link", "base", "style", "script", "noscript", "template"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._in_head and tag not in self._HEAD_CONTENT and tag != "head":
            self._in_head = False
            self._skipping -= 1
        if tag == "head" and self._in_head:
            return  # a second <head> inside the first
        self._in_head = self._in_head or tag == "head"
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "head" and not self._in_head:
            return  # `</head>` after the head was already ended by a body tag
        self._in_head = self._in_head and tag != "head"
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_text(html: str) -> str:
    """The visible text of an HTML document, one block per line."""
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    lines = (" ".join(line.split()) for line in "".join(collector.parts).splitlines())
    return "\n".join(line for line in lines if line)
