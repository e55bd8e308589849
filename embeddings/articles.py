"""Articles: reading .txt, .md, .html and .jsonl files into text with metadata and content spans."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

from embeddings.metadata import (
    DATE_PREFIX,
    Dateline,
    canonical_outlet,
    credited_outlet,
    dateline_date,
    find_date,
    read_dateline,
    stamp_date,
)
from embeddings.settings import MAX_FILE_BYTES

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
JSONL_SUFFIXES = (".jsonl",)
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES + JSONL_SUFFIXES

Span = tuple[int, int]


@dataclass(frozen=True)
class Article:
    """One news article: its text exactly as read, its metadata and the spans that hold its content."""

    id: str
    text: str
    path: str
    title: str | None = None
    outlet: str | None = None
    date: str | None = None
    url: str | None = None
    blocks: tuple[Span, ...] = field(default=())

    @property
    def hash(self) -> str:
        """Return a fingerprint of everything that goes into the article's passages and vectors."""
        payload = json.dumps([self.text, self.title, self.outlet, self.date, self.url, self.blocks])
        return hashlib.sha256(payload.encode()).hexdigest()

    @property
    def label(self) -> str:
        """Return a readable name for the article: its outlet, else its title, else its first words; never its id."""
        if self.outlet:
            return self.outlet
        if self.title:
            return self.title
        words = self.text[self.blocks[0][0] if self.blocks else 0 :].split()
        return " ".join(words[:8]) + (" …" if len(words) > 8 else "") if words else self.id

    def to_json(self) -> dict:
        """Return the article as a JSON-ready dict."""
        record = asdict(self)
        record["blocks"] = [list(span) for span in self.blocks]
        return record

    @classmethod
    def from_json(cls, record: dict) -> Article:
        """Return the article stored by `to_json`."""
        fields = dict(record)
        fields["blocks"] = tuple((int(a), int(b)) for a, b in fields.get("blocks", ()))
        return cls(**fields)


@dataclass(frozen=True)
class Skipped:
    """A file, or a line of a JSONL file, that was not indexed, and why."""

    path: str
    reason: str


class LoadError(ValueError):
    """An article file that cannot be read; the message says why."""


# --- content and page furniture ------------------------------------------------------------

_BOILERPLATE = re.compile(
    r"\s*(?:advertisement|advert|sponsored|read more|related:|share this|sign up|subscribe"
    r"|\(?(?:additional )?(?:reporting|writing|editing) by)\b",
    re.IGNORECASE,
)
_DATELINE_LINES = 3  # a dateline is looked for at the start of the first this many content lines
_CODE_CHARS = re.compile(r"[{};<>]|=>")
_WORD = re.compile(r"\w+")
LETTER = re.compile(r"[^\W\d_]")
_MARKDOWN_PREFIX = re.compile(r"(?:#{1,6}\s+|>\s*|[-*+]\s+|\d+[.)]\s+)")
_TERMINAL = ".!?:;"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# JSONL fields read for the date and the outlet, first found first.
_DATE_FIELDS = ("date", "published", "published_at", "publishedAt", "published_date", "pubDate", "datetime")
_OUTLET_FIELDS = ("outlet", "source", "publisher")


@dataclass(frozen=True)
class Layout:
    """What a text's lines hold: title, outlet and date found in it, and its content spans."""

    title: str | None
    outlet: str | None
    date: str | None
    blocks: tuple[Span, ...]


def _lines(text: str, start: int) -> list[Span]:
    """Return the (start, end) span of each line from `start`, without its line break."""
    spans, pos = [], start
    for line in text[start:].splitlines(keepends=True):
        body = line.rstrip("\r\n")
        spans.append((pos, pos + len(body)))
        pos += len(line)
    return spans


def _words(line: str) -> list[str]:
    return _WORD.findall(line.lower())


def _is_headline(line: str) -> bool:
    """Return True for a short line that does not end like a sentence (a title or a subheading)."""
    stripped = line.strip().rstrip("\"'”’»")
    n_words = len(_words(stripped))
    return 1 <= n_words <= 25 and len(stripped) <= 200 and stripped[-1:] not in _TERMINAL


def _is_boilerplate(line: str) -> bool:
    """Return True for page furniture: ads, share prompts, bylines' reporting credits, stray code."""
    if _BOILERPLATE.match(line):
        return True
    return bool(_CODE_CHARS.search(line)) and len(_words(line)) <= 4


def _is_metadata(text: str, start: int, end: int) -> bool:
    """Return True for a line that only carries metadata: a credit, a date stamp or a dateline on its own."""
    if credited_outlet(text, start, end) or stamp_date(text, start, end):
        return True
    dateline = read_dateline(text, start, end, first=True)
    return dateline is not None and not text[dateline.end : end].strip()


def _title_line(text: str, lines: list[Span]) -> int | None:
    """Return the index of the line that is the article's headline (the first line that is not metadata), or None."""
    for number, (a, b) in enumerate(lines[:-1]):
        if not _is_metadata(text, a, b):
            return number if _is_headline(text[a:b]) else None
    return None


@dataclass
class _Found:
    """Metadata met while reading an article's lines: the first credit, date stamps and the dateline."""

    credit: str | None = None
    published: str | None = None
    updated: str | None = None
    dateline: Dateline | None = None

    def take(self, text: str, start: int, end: int) -> bool:
        """Record a credit or date stamp line; return True if the line was one (such lines are never content)."""
        if outlet := credited_outlet(text, start, end):
            self.credit = self.credit or outlet
            return True
        if stamp := stamp_date(text, start, end):
            kind, date = stamp
            if kind == "published":
                self.published = self.published or date
            else:
                self.updated = self.updated or date
            return True
        return False


def read_layout(text: str, *, title: str | None = None, markdown: bool = False) -> Layout:
    """Return the title, outlet, date and content spans found in an article's plain text.

    Args:
        text: the article text, exactly as read.
        title: a title known from elsewhere (JSONL field, HTML metadata).
        markdown: strip Markdown heading, quote and list markers from the content spans.
    """
    date = None
    start = 0
    match = DATE_PREFIX.match(text)
    if match:
        date, start = match.group(1), match.end()

    lines = [(a, b) for a, b in _lines(text, start) if text[a:b].strip()]
    title_number = _title_line(text, lines)
    if title is None and title_number is not None:
        first = text[slice(*lines[title_number])]
        title = first.strip().lstrip("#").strip() if markdown else first.strip()

    found = _Found()
    blocks: list[Span] = []
    open_block: list[Span] = []
    content_lines = 0
    for number, (a, b) in enumerate(lines):
        if markdown and (prefix := _MARKDOWN_PREFIX.match(text, a, b)):
            a = prefix.end()
        metadata = number == title_number or found.take(text, a, b)
        line_start = a
        # Datelines open one of the first paragraphs (photo captions may come before); the content starts after.
        if not metadata and found.dateline is None and content_lines < _DATELINE_LINES:
            found.dateline = read_dateline(text, a, b, first=content_lines == 0)
            a = found.dateline.end if found.dateline else a
        # Titles (also repeated ones), subheadings, credits, date stamps and page furniture are never content.
        content = not (metadata or _is_headline(text[a:b]) or _is_boilerplate(text[a:b]) or not text[a:b].strip())
        if open_block and (not content or a != line_start):
            blocks.append((open_block[0][0], open_block[-1][1]))
            open_block = []
        if content:
            content_lines += 1
            open_block.append((a, b))
    if open_block:
        blocks.append((open_block[0][0], open_block[-1][1]))
    dateline = found.dateline
    return Layout(
        title=title,
        outlet=(dateline.outlet if dateline else None) or found.credit,
        date=date or found.published or (dateline_date(dateline, text) if dateline else None) or found.updated,
        blocks=tuple(blocks),
    )


# --- readers for each format ----------------------------------------------------------------


def _decode(data: bytes) -> str:
    """Return UTF-8 text, or raise LoadError for binary or undecodable bytes."""
    if not data.strip():
        raise LoadError("empty file")
    if b"\x00" in data[:8192]:
        raise LoadError("binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise LoadError(f"not valid UTF-8 (byte {error.start})") from error


def _normalize_date(value: object) -> str | None:
    """Return the first full date in a metadata value as YYYY-MM-DD, or None."""
    return find_date(value) if isinstance(value, str) else None


def _field_date(record: dict) -> str | None:
    """Return the date in the first of a record's date fields that holds one, or None."""
    return next(filter(None, (_normalize_date(record.get(key)) for key in _DATE_FIELDS)), None)


def _field_outlet(record: dict) -> str | None:
    """Return the canonical outlet named by a record's outlet fields (a name, or an object with a name), or None."""
    for key in _OUTLET_FIELDS:
        value = record.get(key)
        name = value.get("name") if isinstance(value, dict) else value
        if isinstance(name, str) and name.strip():
            return canonical_outlet(name)
    return None


def _checked(article: Article) -> Article:
    """Return the article, or raise LoadError if none of its content has a letter (nothing to split or search)."""
    if not any(LETTER.search(article.text, a, b) for a, b in article.blocks):
        raise LoadError("no article text found")
    return article


def _from_plain(article_id: str, text: str, path: str, *, markdown: bool) -> Article:
    layout = read_layout(text, markdown=markdown)
    return _checked(Article(article_id, text, path, layout.title, layout.outlet, layout.date, None, layout.blocks))


def _from_html(article_id: str, html: str, path: str) -> Article:
    import trafilatura  # imported here: it takes a second to load and only HTML needs it

    document = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False)
    if document is None or not (document.text or "").strip():
        raise LoadError("no article text found in the HTML")
    text = document.text
    layout = read_layout(text, title=document.title or None)
    return _checked(
        Article(
            article_id,
            text,
            path,
            layout.title,
            layout.outlet or (canonical_outlet(document.sitename) if document.sitename else None),
            _normalize_date(document.date) or layout.date,
            document.url or None,
            layout.blocks,
        )
    )


def _from_record(record: object, path: str) -> Article:
    """Return the article in one parsed JSONL record, or raise LoadError naming the bad field."""
    if not isinstance(record, dict):
        raise LoadError("expected a JSON object")
    for key in ("id", "text"):
        if not isinstance(record.get(key), str) or not record[key].strip():
            raise LoadError(f"missing or empty string field {key!r}")
    for key, value in record.items():
        if isinstance(value, str) and _LONE_SURROGATE.search(value):
            raise LoadError(f"field {key!r} holds an invalid Unicode escape (a lone surrogate)")
    title = record.get("title") if isinstance(record.get("title"), str) else None
    text = record["text"]
    layout = read_layout(text, title=title or None)
    return _checked(
        Article(
            record["id"].strip(),
            text,
            path,
            layout.title,
            _field_outlet(record) or layout.outlet,
            _field_date(record) or layout.date,
            record.get("url") if isinstance(record.get("url"), str) else None,
            layout.blocks,
        )
    )


def check_file(path: Path, size: int) -> None:
    """Raise LoadError if a file's type is not supported or it is too large to read (JSONL: the limit is per line)."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise LoadError(f"unsupported file type {suffix or '(none)'}; supported: {', '.join(SUPPORTED_SUFFIXES)}")
    if size > MAX_FILE_BYTES and suffix not in JSONL_SUFFIXES:
        raise LoadError(f"file is {size:,} bytes; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB")


def read_articles(path: Path, data: bytes, *, display_path: str) -> tuple[list[Article], list[Skipped]]:
    """Return the articles in one file's bytes, and the JSONL lines skipped with their reasons.

    Raises:
        LoadError: the file as a whole cannot be read (the message says why).
    """
    check_file(path, len(data))
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        items = list(stream_jsonl(io.BytesIO(data), display_path))
        return [i for i in items if isinstance(i, Article)], [i for i in items if isinstance(i, Skipped)]
    text = _decode(data)
    if suffix in TEXT_SUFFIXES:
        return [_from_plain(path.stem, text, display_path, markdown=suffix != ".txt")], []
    return [_from_html(path.stem, text, display_path)], []


def _binary_lines(handle: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """Yield (number, line) for each line of a binary file; a line over the size limit comes as None, unread."""
    number = 0
    while True:
        line = handle.readline(MAX_FILE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_FILE_BYTES and not line.endswith(b"\n"):
            while (rest := handle.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass  # the rest of an oversized line is read in bounded pieces and dropped
            yield number, None
        else:
            yield number, line


def stream_jsonl(handle: BinaryIO, display_path: str) -> Iterator[Article | Skipped]:
    """Yield the articles of a JSONL file read line by line, and a Skipped for each line that is not one.

    Memory is bounded by one line (at most the per-article size limit), not by the file.

    Raises:
        LoadError: the file as a whole cannot be read: empty, binary, or without one valid article line.
    """
    first = handle.peek(8192)[:8192] if hasattr(handle, "peek") else handle.getvalue()[:8192]
    if b"\x00" in first:
        raise LoadError("binary file, not text")
    found, problems, blank = False, [], True
    for number, line in _binary_lines(handle):
        where = f"{display_path}:{number}"
        if line is None:
            problems.append(Skipped(where, f"line is over {MAX_FILE_BYTES / 1e6:.0f} MB, the limit for one article"))
        elif not line.strip():
            continue
        else:
            blank = False
            item = _jsonl_line(line, where, display_path)
            if isinstance(item, Article):
                found = True
                yield item
                continue
            problems.append(item)
        yield problems[-1]
    if blank and not problems:
        raise LoadError("empty file")
    if not found:
        raise LoadError("no valid article lines" + (f"; first problem: {problems[0].reason}" if problems else ""))


def _jsonl_line(line: bytes, where: str, display_path: str) -> Article | Skipped:
    """Return the article on one JSONL line, or a Skipped saying why there is none."""
    try:
        return _from_record(json.loads(line.decode("utf-8")), display_path)
    except UnicodeDecodeError as error:
        return Skipped(where, f"not valid UTF-8 (byte {error.start})")
    except json.JSONDecodeError as error:
        return Skipped(where, f"invalid JSON: {error.msg} (column {error.colno})")
    except RecursionError:
        return Skipped(where, "invalid JSON: nested too deeply")
    except LoadError as error:
        return Skipped(where, str(error))
