"""The storage seam: what the query side reads from an index, and what the indexer writes to one.

Two implementations stand behind it: local files (embeddings/store.py, the default) and Milvus. The query side
(assistant/*.py, app.py) talks only to a `Reader`; the indexer (embeddings/indexer.py, and embeddings/uploads.py
after it) talks only to a `Writer`.

Rows: passages, sentences and articles are addressed by int rows, valid for the lifetime of one `Reader` (one
loaded version of the index). The sentences of one article have consecutive rows in text order, and a passage's
sentences are the rows `FIRST_SENTENCE`..`SENTENCE_STOP` of its passage-table row. Stable ids: an article's id (from
its file); passage n and sentence n of an article (in text order) keep their number while the article is unchanged.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from embeddings.articles import Article, Span
from embeddings.passages import Passage

# Columns of the passage table (passage_table) and of the sentence table (sentence_table, the first three).
ARTICLE, START, END, FIRST_SENTENCE, SENTENCE_STOP = range(5)

RRF_K = 60
"""Reciprocal rank fusion's rank offset: an item ranked r counts weight / (RRF_K + r)."""


def reciprocal_rank_fusion(rankings: list[np.ndarray], *, k: int = RRF_K, weights: list[float] | None = None) -> dict:
    """Return {id: fused score} for ranked id lists: the sum of weight / (k + rank), rank counted from 1."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, item in enumerate(np.asarray(ranking).tolist(), start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return fused


class StoreError(RuntimeError):
    """An index that cannot be used as it is; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Filters:
    """Which articles a search may return: by outlet, by date range (YYYY-MM-DD, inclusive) and by id.

    `outlets` may hold None, which admits the articles whose outlet is not known.
    """

    outlets: frozenset[str | None] | None = None
    date_from: str | None = None
    date_to: str | None = None
    articles: frozenset[str] | None = None

    def admits(self, article: Article) -> bool:
        """Return True if the article passes every filter; articles without a date fail a date range."""
        return self.admits_fields(article.id, article.outlet, article.date)

    def admits_fields(self, article_id: str, outlet: str | None, date: str | None) -> bool:
        """Return True if an article with this id, outlet and date passes every filter (see `admits`)."""
        if self.outlets is not None and outlet not in self.outlets:
            return False
        if self.articles is not None and article_id not in self.articles:
            return False
        if self.date_from or self.date_to:
            if date is None:
                return False
            if (self.date_from and date < self.date_from) or (self.date_to and date > self.date_to):
                return False
        return True

    @property
    def active(self) -> bool:
        """Return True if any filter is set."""
        return self.outlets is not None or self.articles is not None or bool(self.date_from or self.date_to)


@dataclass(frozen=True)
class Coverage:
    """What an index holds: live counts, articles per known outlet, and articles per date (undated ones left out)."""

    articles: int
    passages: int
    outlets: Counter
    days: Counter


class Reader(Protocol):
    """One loaded version of an index, searched and read by the query side."""

    generation: str
    """Names the loaded version; a new write makes a new one."""
    model: dict
    """The model that embedded the index: name, path, fingerprint, dimension."""
    article_count: int
    passage_count: int
    sentence_count: int
    """Live articles, passages and sentences (deleted ones are not counted)."""
    sentence_rows: int
    """One more than the largest sentence row: rows run from 0 to sentence_rows - 1 (some may be deleted)."""

    def article(self, row: int) -> Article:
        """Return the article at `row`, with its full text."""

    def article_row(self, article_id: str) -> int | None:
        """Return the row of the live article with id `article_id`, None if there is none."""

    def article_rows(self, row: int) -> tuple[range, range]:
        """Return the rows of the passages and the rows of the sentences of the article at `row` (each consecutive)."""

    def live_article_rows(self) -> np.ndarray:
        """Return the rows of the live articles (rows of deleted ones are skipped)."""

    @property
    def article_by_id(self) -> Mapping[str, Article]:
        """Return the live articles by id (a view: ArticlesById(self))."""

    def passage_table(self, rows) -> np.ndarray:
        """Return int64 rows (ARTICLE, START, END, FIRST_SENTENCE, SENTENCE_STOP) of the passages `rows`."""

    def sentence_table(self, rows) -> np.ndarray:
        """Return int64 rows (ARTICLE, START, END) of the sentences `rows`."""

    def dense(self, vector: np.ndarray, *, k: int, filters: Filters | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, rows) of the k passages nearest the unit `vector` by inner product, best first."""

    def dense_scores(self, vector: np.ndarray, rows) -> np.ndarray:
        """Return the inner products of `vector` with the passages `rows`."""

    def lexical(self, terms: list[str], *, k: int, filters: Filters | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, rows) of the k best BM25 passages sharing a term with `terms`, best first.

        Scores are BM25 (k1 1.5, b 0.75, Lucene's idf) over the live passages: equal to a fresh build of the same
        articles, whatever the history of writes; except on Milvus Lite, which keeps the statistics per segment
        (README, Milvus Lite caveats; bench/milvus_bm25.py).
        """

    def fused(
        self, vector: np.ndarray, terms: list[str], *, k: int, filters: Filters | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, rows) of the k nearest passages (`dense`) and the k best BM25 ones (`lexical`), best first by
        reciprocal rank fusion of the two rankings (weight 1 each, RRF_K): every passage of either, at most 2k.

        Local files fuse here (reciprocal_rank_fusion); Milvus fuses in the engine (hybrid_search with RRFRanker).
        """

    def admitted_passages(self, filters: Filters) -> np.ndarray:
        """Return the rows of the live passages whose articles pass `filters`, in row order."""

    def passage_frequency(self, term: str) -> int:
        """Return how many live passages hold `term` (a stemmed term, embeddings.terms)."""

    def sentence_vectors(self, rows) -> np.ndarray:
        """Return the float32 unit vectors of the sentences `rows`, shape (len(rows), dimension)."""

    def sentence_dense(
        self, vector: np.ndarray, *, k: int, filters: Filters | None = None, candidates: np.ndarray = ()
    ) -> np.ndarray:
        """Return the rows of the k passages whose best sentence is nearest `vector`, best first.

        A large index may score only the sentences of `candidates` (passage rows found by dense and lexical search).
        """

    def coverage(self) -> Coverage:
        """Return the counts, outlets and dates of the live articles."""

    def verify(self) -> None:
        """Finish the checks deferred at load (checksums of large files); raise StoreError if the index is damaged."""

    def damage(self) -> str | None:
        """Return the StoreError message for what the deferred checks found wrong so far, None if nothing (yet)."""

    def is_current(self) -> bool:
        """Return True if no newer version was written since this one was loaded (cheap: called on every rerun)."""


class ArticlesById(Mapping):
    """The live articles of a reader by id, read on demand."""

    def __init__(self, reader: Reader):
        self.reader = reader

    def __getitem__(self, article_id: str) -> Article:
        row = self.reader.article_row(article_id)
        if row is None:
            raise KeyError(article_id)
        return self.reader.article(row)

    def __iter__(self) -> Iterator[str]:
        return (self.reader.article(row).id for row in self.reader.live_article_rows())

    def __len__(self) -> int:
        return self.reader.article_count


def text_key(article: Article) -> str:
    """Return the key under which an article's text is unique in an index: two articles never share it."""
    return hashlib.sha256(article.text.strip().encode()).hexdigest()


@dataclass(frozen=True)
class Indexed:
    """What a writer knows of a live article without reading its text: id, content hash, source file, text key."""

    id: str
    hash: str
    source: str
    text_key: str


@dataclass
class Source:
    """A file indexed earlier: its sha256 and the JSONL lines it skipped ([path, reason] pairs)."""

    sha256: str
    skipped: list[list[str]] = field(default_factory=list)


@dataclass
class Embedded:
    """One article ready to write: its sentences and passages (sentence ranges within the article), their vectors
    and each passage's BM25 terms."""

    article: Article
    sentences: list[Span]
    passages: list[Passage]
    passage_vectors: np.ndarray
    sentence_vectors: np.ndarray
    passage_terms: list[list[str]]


@dataclass
class Change:
    """One atomic write: articles added or replaced (same id), articles deleted, source records set or dropped."""

    upserts: list[Embedded] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)
    dropped_sources: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Return True if the change writes nothing."""
        return not (self.upserts or self.deletes or self.sources or self.dropped_sources)


class Writer(Protocol):
    """An index open for writing by one process (the implementation serializes writers)."""

    model: dict | None
    """The model recorded by the index, None for an empty or new one."""
    chunking: dict | None
    """The chunking settings recorded by the index, None for an empty or new one."""

    def indexed(self, article_id: str) -> Indexed | None:
        """Return the live article with this id, None if there is none."""

    def with_text(self, key: str) -> Indexed | None:
        """Return the live article whose text_key is `key`, None if there is none."""

    def from_source(self, source: str) -> list[Indexed]:
        """Return the live articles read from the file `source` (Article.path)."""

    def sources(self) -> dict[str, Source]:
        """Return the source files recorded by the index."""

    def read(self, article_id: str) -> Article:
        """Return the live article with this id, with its text (to embed it again)."""

    def counts(self) -> dict[str, int]:
        """Return the live "articles", "passages" and "sentences" counts."""

    def commit(self, change: Change, *, model: dict, chunking: dict) -> None:
        """Apply `change` atomically: a reader sees all of it or none, also after a crash at any point."""

    def compact(self) -> None:
        """Merge what earlier commits wrote into one unit, dropping deleted data; readers see the same articles."""


def open_reader(location: Path, *, model_fingerprint: str | None = None) -> Reader:
    """Return the index at `location` loaded for questions; a different model fingerprint is refused (StoreError)."""
    from embeddings import milvus_store, store

    if isinstance(location, milvus_store.MilvusLocation):
        return milvus_store.open_reader(location, model_fingerprint=model_fingerprint)
    return store.load(Path(location), model_fingerprint=model_fingerprint)


def index_exists(location: Path) -> bool:
    """Return True if there is an index at `location` (cheap: page reruns call it)."""
    from embeddings import milvus_store, store

    if isinstance(location, milvus_store.MilvusLocation):
        return milvus_store.exists(location)
    return store.manifest_signature(Path(location)) is not None


def recorded_model(location: Path) -> dict | None:
    """Return the model recorded by the index at `location`, None if there is no index yet."""
    from embeddings import milvus_store, store

    if isinstance(location, milvus_store.MilvusLocation):
        return milvus_store.recorded_model(location)
    manifest = store.read_manifest(Path(location))
    return manifest["model"] if manifest else None


def open_writer(location: Path, *, rebuild: bool = False, on_wait=None) -> AbstractContextManager[Writer]:
    """Return a context holding the index at `location` open for writing (`rebuild`: start from an empty index).

    `on_wait()` is called if another process holds the index and this one waits for it.
    """
    from embeddings import milvus_store, store

    if isinstance(location, milvus_store.MilvusLocation):
        return milvus_store.open_writer(location, rebuild=rebuild, on_wait=on_wait)
    return store.open_writer(Path(location), rebuild=rebuild, on_wait=on_wait)
