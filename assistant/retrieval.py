"""Retrieval: dense and lexical (BM25) passage search fused by reciprocal rank in the index, plus sentence search."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np

from embeddings.articles import Article
from embeddings.backend import ARTICLE, END, RRF_K, START, Filters, Reader, reciprocal_rank_fusion
from embeddings.encoder import Encoder
from embeddings.terms import term_set, terms

__all__ = ["RRF_K", "Filters", "Hit", "Retriever", "reciprocal_rank_fusion"]


@dataclass(frozen=True)
class Hit:
    """A retrieved passage: its row in the store's passage table, its article and span, its fused and dense scores."""

    row: int
    article: Article
    start: int
    end: int
    score: float
    dense_score: float


@dataclass(frozen=True)
class ArticleSentences:
    """An article's sentences: the row of its first one and the (start, end) span of each, in order."""

    first: int
    spans: tuple[tuple[int, int], ...]

    @property
    def rows(self) -> range:
        """Return the sentence rows of the article."""
        return range(self.first, self.first + len(self.spans))

    def around(self, row: int, *, before: int, after: int) -> tuple[tuple[int, int], ...]:
        """Return the spans of sentence `row` and of up to `before` and `after` of its neighbours in the article."""
        index = row - self.first
        return self.spans[max(0, index - before) : index + after + 1]


def article_sentences(store: Reader, article_row: int) -> ArticleSentences:
    """Return the sentences of the article at `article_row`."""
    rows = store.article_rows(article_row)[1]
    spans = store.sentence_table(np.arange(rows.start, rows.stop))[:, [START, END]].tolist()
    return ArticleSentences(rows.start, tuple(map(tuple, spans)))


class Retriever:
    """Hybrid passage search over a loaded index (any backend behind embeddings.backend.Reader)."""

    def __init__(self, store: Reader, encoder: Encoder, *, candidates: int = 50, weights: tuple = (1.0, 1.0, 1.0)):
        """`weights`: of the dense, BM25 and sentence rankings. The index fuses dense and BM25 with equal weights
        (Milvus's RRFRanker has none; its WeightedRanker adds normalized scores, not ranks), so those two must be equal.
        """
        if weights[0] != weights[1]:
            raise ValueError(f"the dense and BM25 weights must be equal (the index fuses them), not {weights[:2]}")
        self.store = store
        self.encoder = encoder
        self.candidates = candidates
        self.weights = list(weights)
        # Term sets the answer step checks question after question, cached per loaded index: a reload drops them.
        self.sentence_terms = lru_cache(maxsize=65536)(term_set)
        self.article_terms = lru_cache(maxsize=1024)(lambda row: term_set(store.article(row).text))
        self.article_sentences = lru_cache(maxsize=4096)(partial(article_sentences, store))

    def sentence_vectors_of(self, rows: list[int]) -> np.ndarray:
        """Return the float32 unit vectors of the sentences in `rows`, shape (len(rows), dimension)."""
        return self.store.sentence_vectors(rows)

    def encode_query(self, query: str) -> np.ndarray:
        """Return the query's unit vector, shape (dimension,)."""
        return self.encoder.encode([query])[0]

    def dense(self, query_vector: np.ndarray, *, k: int, filters: Filters | None = None) -> tuple:
        """Return (scores, rows) of the k passages nearest the query vector, best first (as FAISS orders them)."""
        return self.store.dense(query_vector, k=k, filters=filters)

    def sentence_dense(
        self, query_vector: np.ndarray, *, k: int, filters: Filters | None = None, candidates: np.ndarray = ()
    ) -> np.ndarray:
        """Return the rows of the passages holding the sentences nearest the query vector, best first."""
        return self.store.sentence_dense(query_vector, k=k, filters=filters, candidates=candidates)

    def passage_frequency(self, term: str) -> int:
        """Return how many passages hold `term`."""
        return self.store.passage_frequency(term)

    def lexical(self, query_terms: list[str], *, k: int, filters: Filters | None = None) -> np.ndarray:
        """Return the rows of the k best BM25 passages that share a term with the query, best first."""
        return self.store.lexical(query_terms, k=k, filters=filters)[1]

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """Return the k best passages for `query` by reciprocal rank fusion of dense, BM25 and sentence search.

        The index fuses dense and BM25 (Reader.fused); the sentence ranking, searched among the passages found there
        in a large local index, is added here. RRF is a sum, so this equals fusing the three rankings at once.
        """
        if self.store.passage_count == 0:
            return []
        filters = filters if filters is not None and filters.active else None
        pool = min(self.candidates, self.store.passage_count)
        vector = self.encode_query(query) if query_vector is None else query_vector
        fused_scores, fused_rows = self.store.fused(vector, terms(query), k=pool, filters=filters)
        sentence_rows = self.sentence_dense(vector, k=pool, filters=filters, candidates=fused_rows)
        fused = dict(zip(fused_rows.tolist(), (self.weights[0] * fused_scores).tolist()))
        for row, score in reciprocal_rank_fusion([sentence_rows], weights=[self.weights[2]]).items():
            fused[row] = fused.get(row, 0.0) + score
        best = sorted(fused, key=lambda row: -fused[row])[:k]
        dense_scores = self.store.dense_scores(vector, best).tolist()
        table = self.store.passage_table(best)[:, [ARTICLE, START, END]].tolist()
        return [
            Hit(row, self.store.article(article_row), start, end, fused[row], dense_score)
            for row, (article_row, start, end), dense_score in zip(best, table, dense_scores)
        ]
