"""Passages: sentence spans of an article, grouped into overlapping windows of a few sentences."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from embeddings.articles import LETTER, Article, Span

# Words whose trailing period does not end a sentence.
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st sr jr gen col lt sgt capt cmdr adm gov sen rep rev hon pres "
    "jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun "
    "inc corp co ltd plc bros dept est fig vol approx vs etc no nos op ed eds pp "
    "u.s u.k u.n e.g i.e a.m p.m d.c".split()
)
# A run of terminal punctuation, closing quotes or brackets, then whitespace.
_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s)")
_NEXT_STARTS_SENTENCE = re.compile(r"\s+[\"'“‘«(\[]?[A-Z0-9À-Ý]")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")
_NEWLINE = re.compile(r"\n")
_FIRST_CHAR = re.compile(r"\s*(\S)")
_SHORT_QUOTE_CHARS = 20

CHUNKING = {"passage_words": 150, "max_sentences": 10, "overlap_sentences": 1}
"""How articles are cut into passages; recorded in the index manifest (other settings re-embed everything)."""


@dataclass(frozen=True)
class Passage:
    """A window of consecutive sentences of one article: its span, and its sentences as a range of indices."""

    start: int
    end: int
    first_sentence: int
    sentence_stop: int


def _inside_short_quote(text: str, segment_start: int, end: int, limit: int) -> bool:
    """Return True if `end` falls inside a quotation that closes within a few words ("Moscow. Kremlin. Putin")."""
    segment = text[segment_start:end]
    open_curly = segment.count("“") > segment.count("”")
    open_straight = segment.count('"') % 2 == 1
    ahead = text[end : min(end + _SHORT_QUOTE_CHARS, limit)]
    return (open_curly and "”" in ahead) or (open_straight and '"' in ahead)


def _is_boundary(text: str, segment_start: int, end: int, limit: int) -> bool:
    """Return True if the punctuation run ending at `end` closes the sentence begun at `segment_start`.

    Only text before `limit` is looked at.
    """
    if not _NEXT_STARTS_SENTENCE.match(text, end, limit) or _inside_short_quote(text, segment_start, end, limit):
        return False
    word = _WORD_BEFORE.search(text, max(0, end - 12), end)
    if word and text[end - 1] == ".":
        token = word.group(1).lower()
        if token in ABBREVIATIONS or len(token) == 1:
            return False
    return True


def _last_char(text: str, start: int, position: int) -> str:
    """Return the last non-space character of text[start:position], or "" if there is none."""
    while position > start and text[position - 1].isspace():
        position -= 1
    return text[position - 1] if position > start else ""


def split_sentences(text: str, start: int, end: int) -> list[Span]:
    """Return the spans of the sentences in text[start:end], trimmed of surrounding whitespace.

    A sentence ends at terminal punctuation (with any closing quotes) followed by a capital, digit or
    opening quote, unless the word before is an abbreviation or an initial; a line break ends a sentence
    unless the line stops mid-sentence and the next begins in lower case.
    """
    cuts = [start]
    for match in _END.finditer(text, start, end):
        if _is_boundary(text, cuts[-1], match.end(), end):
            cuts.append(match.end())
    for newline in _NEWLINE.finditer(text, start, end):
        position = newline.start()
        before = _last_char(text, start, position)
        following = _FIRST_CHAR.match(text, position, end)
        after = following.group(1) if following else ""
        if not (after.islower() or before in (",", ";") or (before.isalpha() and before.islower() and after.islower())):
            cuts.append(position)
    cuts = [*sorted(set(cuts)), end]
    spans = []
    for a, b in itertools.pairwise(cuts):
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b and LETTER.search(text, a, b):
            spans.append((a, b))
    return spans


def chunk_article(
    article: Article,
    *,
    passage_words: int = CHUNKING["passage_words"],
    max_sentences: int = CHUNKING["max_sentences"],
    overlap_sentences: int = CHUNKING["overlap_sentences"],
) -> tuple[list[Span], list[Passage]]:
    """Return an article's sentence spans and its passages: runs of whole sentences of about `passage_words` words.

    Consecutive passages of a content block share `overlap_sentences` sentences; no passage crosses blocks.
    """
    sentences: list[Span] = []
    passages: list[Passage] = []
    words: list[int] = []
    for block_start, block_end in article.blocks:
        base = len(sentences)
        sentences += split_sentences(article.text, block_start, block_end)
        words += [len(article.text[a:b].split()) for a, b in sentences[base:]]
        first = base
        while first < len(sentences):
            stop, count = first, 0
            while stop < len(sentences) and stop - first < max_sentences and (count < passage_words or stop == first):
                count += words[stop]
                stop += 1
            passages.append(Passage(sentences[first][0], sentences[stop - 1][1], first, stop))
            if stop == len(sentences):
                break
            first = max(stop - overlap_sentences, first + 1)
    return sentences, passages


def passage_document(article: Article, sentences: list[Span]) -> str:
    """Return the text that represents a passage for search: the article title, then the passage's sentences."""
    body = " ".join(article.text[a:b] for a, b in sentences)
    return f"{article.title}\n{body}" if article.title else body
