"""Terms: the lower-cased, stemmed content words of a text, shared by BM25 and answer checks."""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS

# A word, up to its first apostrophe ("peskov's" -> "peskov"); the rest of the word is matched and dropped.
_TOKEN = re.compile(r"([^\W_]+)(?:['’][^\W_]+)*")
# Modals and reporting verbs: in news questions they carry no topic ("What did Peskov tell reporters?").
_NEWS_FUNCTION_WORDS = {
    "would", "could", "may", "might", "must", "shall", "also", "according",
    "say", "said", "says", "saying", "tell", "told", "tells", "describe", "described", "describes",
}  # fmt: skip
_STOPWORDS = frozenset(STOPWORDS_EN_PLUS) | _NEWS_FUNCTION_WORDS
_stemmer = Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer.stemWord(word)


def terms(text: str) -> list[str]:
    """Return the stemmed, lower-cased words of `text` that are not stopwords, in order."""
    return [_stem(word) for word in _TOKEN.findall(text.lower()) if word not in _STOPWORDS]


def term_set(text: str) -> frozenset[str]:
    """Return the set of terms of `text`."""
    return frozenset(terms(text))
