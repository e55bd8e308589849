"""Retrieval: dense (FAISS) and lexical (BM25) passage search, fused by reciprocal rank."""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from embeddings import vector_index
from embeddings.articles import Article
from embeddings.encoder import Encoder
from embeddings.store import ARTICLE, END, FIRST_SENTENCE, SENTENCE_STOP, START, Store
from embeddings.terms import term_set, terms


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
        if self.outlets is not None and article.outlet not in self.outlets:
            return False
        if self.articles is not None and article.id not in self.articles:
            return False
        if self.date_from or self.date_to:
            if article.date is None:
                return False
            if (self.date_from and article.date < self.date_from) or (self.date_to and article.date > self.date_to):
                return False
        return True

    @property
    def active(self) -> bool:
        """Return True if any filter is set."""
        return self.outlets is not None or self.articles is not None or bool(self.date_from or self.date_to)


@dataclass(frozen=True)
class Hit:
    """A retrieved passage: its row in the store's passage table, its article and span, its fused and dense scores."""

    row: int
    article: Article
    start: int
    end: int
    score: float
    dense_score: float


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


EXHAUSTIVE_SENTENCES = 200_000
"""Most sentences searched exhaustively (about 300 MB of float32 vectors); beyond, only candidates' sentences."""


class Retriever:
    """Hybrid passage search over a loaded store."""

    def __init__(self, store: Store, encoder: Encoder, *, candidates: int = 50, weights: tuple = (1.0, 1.0, 1.0)):
        self.store = store
        self.encoder = encoder
        self.candidates = candidates
        self.weights = list(weights)
        # Term sets the answer step checks question after question, cached per loaded index: a reload drops them.
        self.sentence_terms = lru_cache(maxsize=65536)(term_set)
        self.article_terms = lru_cache(maxsize=1024)(lambda row: term_set(store.articles[row].text))
        # Small corpora: every sentence is searched, from a float32 copy in memory. Large ones: the sentences of
        # the dense and BM25 candidates are read from the float16 file on disk, keeping memory and time bounded.
        self.exhaustive = len(store.sentences) <= EXHAUSTIVE_SENTENCES
        if self.exhaustive:
            self.sentence_vectors = np.asarray(store.sentence_vectors, dtype=np.float32)
            # Each sentence counts for the first passage holding it: the runs of sentences of one passage.
            passage_of_sentence = np.zeros(len(store.sentences), dtype=np.int64)
            for row in range(len(store.passages) - 1, -1, -1):
                first, stop = store.passages[row, [FIRST_SENTENCE, SENTENCE_STOP]]
                passage_of_sentence[first:stop] = row
            self.run_starts = np.flatnonzero(np.diff(passage_of_sentence, prepend=-1))
            self.run_passages = passage_of_sentence[self.run_starts]
        else:
            # Opened once: the descriptor keeps the file readable after a later index run deletes this generation.
            self.sentence_file = os.open(store.sentence_vectors.filename, os.O_RDONLY)
            weakref.finalize(self, os.close, self.sentence_file)
        # bm25s's score arrays as plain arrays, still memory-mapped: numpy's memmap class costs microseconds a slice.
        scores = store.bm25.scores if store.bm25 is not None else None
        self.bm25_columns = None if scores is None else [np.asarray(scores[k]) for k in ("data", "indices", "indptr")]

    def sentence_vectors_of(self, rows: list[int]) -> np.ndarray:
        """Return the float32 unit vectors of the sentences in `rows`, shape (len(rows), dimension)."""
        if self.exhaustive:
            return self.sentence_vectors[rows]
        return np.asarray(self.store.sentence_vectors[rows], dtype=np.float32)

    def encode_query(self, query: str) -> np.ndarray:
        """Return the query's unit vector, shape (dimension,)."""
        return self.encoder.encode([query])[0]

    def allowed_passages(self, filters: Filters) -> np.ndarray:
        """Return the rows of the passages whose articles pass `filters`."""
        admitted = np.array([filters.admits(a) for a in self.store.articles], dtype=bool)
        return np.flatnonzero(admitted[self.store.passages[:, ARTICLE]])

    def dense(self, query_vector: np.ndarray, *, k: int, allowed: np.ndarray | None = None) -> tuple:
        """Return (scores, rows) of the k passages nearest the query vector, best first (as FAISS orders them)."""
        scores, rows = vector_index.search(self.store.passage_index, query_vector.reshape(1, -1), k, allowed=allowed)
        keep = rows[0] >= 0
        return scores[0][keep], rows[0][keep]

    def sentence_dense(
        self, query_vector: np.ndarray, *, k: int, allowed: np.ndarray | None = None, candidates: np.ndarray = ()
    ) -> np.ndarray:
        """Return the rows of the passages holding the sentences nearest the query vector, best first.

        Every sentence is scored in a small corpus; in a large one, only the sentences of `candidates`.
        """
        if not self.exhaustive:
            return self._candidate_sentence_dense(query_vector, k=k, allowed=allowed, candidates=candidates)
        passage_best = np.full(len(self.store.passages), -np.inf, dtype=np.float32)
        if len(self.run_starts):
            runs_best = np.maximum.reduceat(self.sentence_vectors @ query_vector, self.run_starts)
            np.maximum.at(passage_best, self.run_passages, runs_best)  # a passage may have several runs
        if allowed is not None:
            admitted = np.full(len(passage_best), -np.inf, dtype=np.float32)
            admitted[allowed] = passage_best[allowed]
            passage_best = admitted
        k = min(k, int(np.isfinite(passage_best).sum()))
        top = np.argpartition(-passage_best, k - 1)[:k] if k else np.zeros(0, dtype=np.int64)
        return top[np.argsort(-passage_best[top], kind="stable")]

    def _candidate_sentence_dense(
        self, query_vector: np.ndarray, *, k: int, allowed: np.ndarray | None, candidates: np.ndarray
    ) -> np.ndarray:
        """Return the rows of the k `candidates` with the sentences nearest the query vector, best first.

        Each candidate's sentences are read from the float16 file by one pread; through the memory map, the kernel
        mapped 64 KB around every row read, and 24 questions left 760 MB of it resident at 1M passages.
        """
        candidates = np.unique(np.asarray(candidates, dtype=np.int64))
        if allowed is not None:
            candidates = np.intersect1d(candidates, allowed)
        if not len(candidates):
            return candidates
        vectors = self.store.sentence_vectors
        row_bytes = vectors.shape[1] * vectors.itemsize
        first, stop = self.store.passages[candidates][:, [FIRST_SENTENCE, SENTENCE_STOP]].T
        blocks = [
            os.pread(self.sentence_file, (b - a) * row_bytes, vectors.offset + a * row_bytes)
            for a, b in zip(first, stop)
        ]
        rows = np.frombuffer(b"".join(blocks), dtype=vectors.dtype).reshape(-1, vectors.shape[1])
        scores = rows.astype(np.float32) @ query_vector
        best = np.maximum.reduceat(scores, np.concatenate([[0], np.cumsum(stop - first)[:-1]]))
        return candidates[np.argsort(-best, kind="stable")[:k]]

    def term_id(self, term: str) -> int | None:
        """Return the BM25 vocabulary id of a term, None if no passage has it."""
        return self.store.bm25.vocab_dict.get(term) if self.store.bm25 is not None else None

    def passage_frequency(self, term: str) -> int:
        """Return how many passages hold `term`."""
        token = self.term_id(term)
        return 0 if token is None else int(self.bm25_columns[2][token + 1] - self.bm25_columns[2][token])

    def lexical(self, query_terms: list[str], *, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
        """Return the rows of the k best BM25 passages that share a term with the query, best first."""
        ids = [token for token in map(self.term_id, query_terms) if token is not None]
        if not ids:
            return np.zeros(0, dtype=np.int64)
        # bm25s's own scores (a term's column of precomputed BM25 weights), summed without its per-query overhead.
        data, indices, indptr = self.bm25_columns
        scores = np.zeros(len(self.store.passages), dtype=np.float32)
        for token in ids:
            column = slice(indptr[token], indptr[token + 1])
            scores[indices[column]] += data[column]  # a term's passages are distinct: no lost updates
        if allowed is not None:
            admitted = np.zeros_like(scores)
            admitted[allowed] = scores[allowed]
            scores = admitted
        matched = np.flatnonzero(scores > 0)
        if len(matched) > k:
            matched = matched[np.argpartition(-scores[matched], k - 1)[:k]]
        return matched[np.argsort(-scores[matched], kind="stable")]

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """Return the k best passages for `query` by reciprocal rank fusion of dense and BM25 search."""
        total = len(self.store.passages)
        if total == 0:
            return []
        allowed = self.allowed_passages(filters) if filters is not None and filters.active else None
        if allowed is not None and len(allowed) == 0:
            return []
        pool = min(self.candidates, total if allowed is None else len(allowed))
        vector = self.encode_query(query) if query_vector is None else query_vector
        dense_scores, dense_rows = self.dense(vector, k=pool, allowed=allowed)
        lexical_rows = self.lexical(terms(query), k=pool, allowed=allowed)
        candidates = np.concatenate([dense_rows, lexical_rows])
        sentence_rows = self.sentence_dense(vector, k=pool, allowed=allowed, candidates=candidates)
        fused = reciprocal_rank_fusion([dense_rows, lexical_rows, sentence_rows], weights=self.weights)
        dense_by_row = dict(zip(dense_rows.tolist(), dense_scores.tolist()))
        best = sorted(fused, key=lambda row: -fused[row])[:k]
        hits = []
        for row, (article_row, start, end) in zip(best, self.store.passages[best][:, [ARTICLE, START, END]].tolist()):
            dense_score = dense_by_row.get(row)
            if dense_score is None:
                dense_score = float(self.store.passage_index.reconstruct(row) @ vector)
            hits.append(Hit(row, self.store.articles[article_row], start, end, fused[row], dense_score))
        return hits
