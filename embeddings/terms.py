"""Terms: the lower-cased, stemmed content words of a text, shared by BM25 and answer checks."""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer
from bm25s.stopwords import STOPWORDS_EN

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_STOPWORDS = frozenset(STOPWORDS_EN) | {
    "s",
    "t",
    "what",
    "who",
    "whom",
    "whose",
    "which",
    "when",
    "where",
    "why",
    "how",
}
_stemmer = Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer.stemWord(word)


def terms(text: str) -> list[str]:
    """Return the stemmed, lower-cased words of `text` that are not stopwords, in order."""
    words = (word.replace("’", "'").split("'")[0] for word in _TOKEN.findall(text.lower()))
    return [_stem(word) for word in words if word and word not in _STOPWORDS]
