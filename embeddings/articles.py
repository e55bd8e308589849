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
        words = self.text.split()
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


# --- metadata found in the text -------------------------------------------------------------

_DATE_PREFIX = re.compile(r"\s*date\s+(\d{4}-\d{2}-\d{2})\b[ \t]*", re.IGNORECASE)
_OUTLET = r"([A-Z][\w.&'’ -]{0,40}?)"
_DATELINES = (
    # MOSCOW, July 14. /TASS/.
    re.compile(r"[A-Z][A-Za-z .'-]{1,40},\s+[A-Z][a-z]+\.?\s+\d{1,2}\.?\s*/" + _OUTLET + r"/\.?\s*"),
    # MOSCOW (Sputnik) -   LONDON (Reuters) -
    re.compile(r"[A-Z][A-Z .'-]{1,40}\s\(" + _OUTLET + r"\)\s*[-–—]+\s*"),
    # (Bloomberg) --
    re.compile(r"\(" + _OUTLET + r"\)\s*[-–—]+\s*"),
)
# ©2024 Bloomberg L.P.   © Sputnik / Alexei Danichev   Copyright 2024 Reuters.
_COPYRIGHT = re.compile(
    r"\s*(?:©|\([cC]\)|[Cc]opyright)\s*(?:\d{4}\s*)?"
    + _OUTLET
    + r"(?:\s+(?:L\.P\.|Inc\.?|Ltd\.?|LLC|plc))?\s*(?:[/|.,]|$)"
)
_BOILERPLATE = re.compile(
    r"\s*(?:advertisement|advert|sponsored|read more|related:|share this|sign up|subscribe)\b", re.IGNORECASE
)
_CODE_CHARS = re.compile(r"[{};<>]|=>")
_WORD = re.compile(r"\w+")
LETTER = re.compile(r"[^\W\d_]")
_MARKDOWN_PREFIX = re.compile(r"(?:#{1,6}\s+|>\s*|[-*+]\s+|\d+[.)]\s+)")
_TERMINAL = ".!?:;"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


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
    """Return True for page furniture: ads, share prompts, copyright lines, stray code."""
    if _BOILERPLATE.match(line) or _COPYRIGHT.match(line):
        return True
    return bool(_CODE_CHARS.search(line)) and len(_words(line)) <= 4


def _strip_dateline(text: str, start: int, end: int) -> tuple[int, str | None]:
    """Return where the content of a first paragraph starts after its dateline, and the outlet it names."""
    for pattern in _DATELINES:
        match = pattern.match(text, start, end)
        if match:
            return match.end(), match.group(1).strip()
    return start, None


def read_layout(text: str, *, title: str | None = None, markdown: bool = False) -> Layout:
    """Return the title, outlet, date and content spans found in an article's plain text.

    Args:
        text: the article text, exactly as read.
        title: a title known from elsewhere (JSONL field, HTML metadata).
        markdown: strip Markdown heading, quote and list markers from the content spans.
    """
    date = None
    start = 0
    match = _DATE_PREFIX.match(text)
    if match:
        date, start = match.group(1), match.end()

    lines = [(a, b) for a, b in _lines(text, start) if text[a:b].strip()]
    found_title = None
    if lines and title is None:
        first = text[lines[0][0] : lines[0][1]]
        if len(lines) > 1 and _is_headline(first):
            found_title = first.strip().lstrip("#").strip() if markdown else first.strip()
    title = title or found_title

    outlet = None
    blocks: list[Span] = []
    open_block: list[Span] = []
    before_content = True  # the first content line may open with a dateline
    for a, b in lines:
        copyright_match = _COPYRIGHT.match(text, a, b)
        if copyright_match and outlet is None:
            outlet = copyright_match.group(1).strip()
        if markdown and (prefix := _MARKDOWN_PREFIX.match(text, a, b)):
            a = prefix.end()
        # Titles (also repeated ones), subheadings and page furniture are never content.
        if _is_headline(text[a:b]) or _is_boilerplate(text[a:b]):
            if open_block:
                blocks.append((open_block[0][0], open_block[-1][1]))
                open_block = []
            continue
        if before_content:
            a, dateline_outlet = _strip_dateline(text, a, b)
            outlet = dateline_outlet or outlet
            before_content = False
        open_block.append((a, b))
    if open_block:
        blocks.append((open_block[0][0], open_block[-1][1]))
    return Layout(title=title, outlet=outlet, date=date, blocks=tuple(blocks))


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
    """Return a YYYY-MM-DD date from the start of a date string, or None."""
    if not isinstance(value, str):
        return None
    match = re.match(r"\s*(\d{4}-\d{2}-\d{2})", value)
    return match.group(1) if match else None


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
            layout.outlet or document.sitename or None,
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
    outlet = record.get("outlet") or record.get("source")
    return _checked(
        Article(
            record["id"].strip(),
            text,
            path,
            layout.title,
            outlet if isinstance(outlet, str) and outlet.strip() else layout.outlet,
            _normalize_date(record.get("date")) or layout.date,
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
