"""Answers: verbatim sentences picked from retrieved passages, each followed by its citation markers."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from assistant.decline import DeclineModel, evidence
from assistant.retrieval import Filters, Hit, Retriever
from embeddings.backend import ARTICLE, END, FIRST_SENTENCE, SENTENCE_STOP, START, Reader
from embeddings.terms import term_set, terms

DECLINE = "The articles don't cover this."
DECLINE_MODEL = DeclineModel.load()


@dataclass(frozen=True)
class Citation:
    """One cited excerpt: a verbatim sentence span of an article, with the passage around it."""

    n: int
    article_id: str
    label: str
    """A readable name of the source: its outlet, else its title, else its first words."""
    title: str | None
    outlet: str | None
    date: str | None
    path: str
    excerpt: str
    start: int
    end: int
    score: float
    passage_start: int
    passage_end: int


@dataclass(frozen=True)
class Statement:
    """One claim or quotation of an answer, with one cited excerpt (a version) from each article that carries it.

    `citations` are the `n` of the answer's citations that are its versions, the first one quoted as its text.
    """

    text: str
    citations: list[int]
    outlets: list[str]
    independent_sources: int
    first_date: str | None
    speaker: str | None = None


@dataclass(frozen=True)
class Answer:
    """A cited answer made of statements, or a declined question (`abstained`, with no statements or citations).

    `answer` is rendered from the statements: each statement's text followed by its citation markers.
    """

    question: str
    abstained: bool
    statements: list[Statement] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    query: str = ""
    evidence: dict = field(default_factory=dict)
    store: Reader | None = field(default=None, compare=False, repr=False)
    """The loaded index the answer was made from: its articles hold the texts the citations' offsets point into."""

    @property
    def answer(self) -> str:
        """Return the answer as text: each statement followed by its [n] markers, or the decline message."""
        if self.abstained:
            return DECLINE
        return " ".join(f"{s.text} {''.join(f'[{n}]' for n in s.citations)}" for s in self.statements)

    def to_json(self) -> dict:
        """Return the answer as the JSON contract of `assistant ask --json`."""
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("question", "store")}
        record["statements"] = [asdict(s) for s in self.statements]
        record["citations"] = [asdict(c) for c in self.citations]
        return {"question": self.question, "answer": self.answer} | record


@dataclass(slots=True)
class Candidate:
    """A sentence of a retrieved passage, scored against the question."""

    row: int
    article_row: int
    start: int
    end: int
    hit: Hit
    similarity: float
    terms: frozenset[str]
    has_shape: bool
    coverage: float = 0.0
    score: float = 0.0
    corroborating: list[Candidate] = field(default_factory=list)

    @property
    def versions(self) -> list[Candidate]:
        """Return this sentence and the other articles' sentences that say the same."""
        return [self, *self.corroborating]


@dataclass(frozen=True)
class AnswerSettings:
    """How answers are composed: how much is retrieved and quoted, and when a question is declined."""

    passages: int = 8
    max_sentences: int = 3
    min_relative_score: float = 0.5
    same_statement: float = 0.82
    min_answer_probability: float | None = None
    """Questions whose evidence gives a lower probability of an answer are declined; None: the calibrated threshold."""
    similarity_weight: float = 0.6
    coverage_weight: float = 0.6
    rank_weight: float = 0.1
    shape_weight: float = 0.15


def _inverse_frequency(frequency: int, total: int) -> float:
    """Return BM25's inverse document frequency of a term found in `frequency` of `total` texts."""
    return math.log(1 + (total - frequency + 0.5) / (frequency + 0.5))


def _term_weights(retriever: Retriever, query_terms: set[str]) -> dict[str, float]:
    """Return the inverse document frequency of each query term among the passages (unknown terms weigh most)."""
    total = retriever.store.passage_count
    return {term: _inverse_frequency(retriever.passage_frequency(term), total) for term in query_terms}


# Questions that ask for a number or a date, and the numbers that could answer them.
_ASKS_NUMBER = re.compile(
    r"\b(when|what year|which year|how (many|much|long|old|far|large|big|tall|often|fast|high)|"
    r"what (percentage|percent|number|amount|date|century|decade|age|size))\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# Questions that ask for a name, and the capitalized words that could answer them (not at a sentence start).
_ASKS_NAME = re.compile(r"^\s*(who|whom|whose)\b|\b(which|what) (person|man|woman|king|city|country|company)\b", re.I)
_NAME = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]+")


def _answer_shape(query: str) -> re.Pattern | None:
    """Return the pattern of the kind of answer the question asks for (a number, a name), None if not known."""
    if _ASKS_NUMBER.search(query):
        return _NUMBER
    return _NAME if _ASKS_NAME.search(query) else None


def _has_shape(shape: re.Pattern, sentence: str, query: str) -> bool:
    """Return True if the sentence holds something of the asked-for shape that the question does not already say."""
    return any(m not in query for m in shape.findall(sentence))


def _candidates(
    retriever: Retriever,
    hits: list[Hit],
    query: str,
    query_vector: np.ndarray,
    weights: dict,
    shape: re.Pattern | None,
    settings: AnswerSettings,
) -> list[Candidate]:
    """Return every sentence of the hit passages once, scored by similarity, term coverage, answer shape and rank.

    Coverage weighs each query term by its IDF in the corpus times its IDF among these sentences: a term that every
    retrieved sentence has (the article's subject) tells less about which sentence answers than one few have.
    """
    store = retriever.store
    rank_of: dict[int, int] = {}
    spans = store.passage_table([hit.row for hit in hits])[:, [FIRST_SENTENCE, SENTENCE_STOP]].tolist()
    for rank, (first, stop) in enumerate(spans):
        for row in range(first, stop):
            rank_of.setdefault(row, rank)
    rows = list(rank_of)
    similarities = (retriever.sentence_vectors_of(rows) @ query_vector).tolist()
    wanted = frozenset(weights)
    frequency = dict.fromkeys(weights, 0)
    candidates, matched = [], []
    for row, (article_row, start, end), similarity in zip(rows, store.sentence_table(rows).tolist(), similarities):
        text = store.article(article_row).text[start:end]
        shaped = shape is not None and _has_shape(shape, text, query)
        candidates.append(
            Candidate(row, article_row, start, end, hits[rank_of[row]], similarity, term_set(text), shaped)
        )
        matched.append(candidates[-1].terms & wanted)
        for term in matched[-1]:
            frequency[term] += 1
    # A term's weight times its BM25-style inverse frequency among the candidate sentences; numpy's per-call cost
    # outweighs its speed for the few dozen sentences here.
    total = len(rows)
    local = {t: w * _inverse_frequency(frequency[t], total) for t, w in weights.items()}
    local_total = sum(local.values())
    for candidate, terms_found in zip(candidates, matched):
        candidate.coverage = sum(local[t] for t in terms_found) / local_total if local_total else 0.0
        candidate.score = (
            settings.similarity_weight * candidate.similarity
            + settings.coverage_weight * candidate.coverage
            + settings.rank_weight / (1 + rank_of[candidate.row])
            + settings.shape_weight * candidate.has_shape
        )
    return sorted(candidates, key=lambda c: -c.score)


def _select(retriever: Retriever, candidates: list[Candidate], settings: AnswerSettings) -> list[Candidate]:
    """Return the statements to quote: the best candidates, each other article's copy attached as corroboration."""
    vectors = retriever.sentence_vectors_of([c.row for c in candidates])
    chosen: list[int] = []
    absorbed: set[int] = set()
    for i, candidate in enumerate(candidates):
        if candidate.score < settings.min_relative_score * candidates[0].score or len(chosen) == settings.max_sentences:
            break  # candidates come best first
        if i in absorbed:
            continue
        chosen.append(i)
        articles = {candidate.article_row}
        for j in np.flatnonzero(vectors @ vectors[i] >= settings.same_statement).tolist():
            if j != i and j not in absorbed and j not in chosen:
                absorbed.add(j)
                if candidates[j].article_row not in articles:
                    articles.add(candidates[j].article_row)
                    candidate.corroborating.append(candidates[j])
    statements = [candidates[i] for i in chosen]
    # Read well: the best statement first, then the rest grouped by article, each article in its own order.
    first_seen = {}
    for position, statement in enumerate(statements):
        first_seen.setdefault(statement.article_row, position)
    return statements[:1] + sorted(statements[1:], key=lambda s: (first_seen[s.article_row], s.start))


def _quote_marks(text: str) -> int:
    """Return how many quotations `text` opens (positive) or closes (negative) without the other half."""
    return text.count("“") - text.count("”") + (text.count('"') % 2)


def _complete_quotes(retriever: Retriever, candidate: Candidate, *, reach: int = 2) -> tuple[int, int]:
    """Return the span of a sentence widened to whole sentences until a quotation it opens or closes is whole."""
    store = retriever.store
    first = last = candidate.row
    text = store.article(candidate.article_row).text
    low, high = max(candidate.row - reach, 0), min(candidate.row + reach + 1, store.sentence_rows)
    window = store.sentence_table(np.arange(low, high))  # the sentences within reach, read once

    def span_text(a: int, b: int) -> str:
        return text[window[a - low, START] : window[b - low, END]]

    balance = _quote_marks(span_text(first, last))
    while balance > 0 and last - candidate.row < reach and last + 1 < high:
        if window[last + 1 - low, ARTICLE] != candidate.article_row:
            break
        last += 1
        balance = _quote_marks(span_text(first, last))
    while balance < 0 and candidate.row - first < reach and first > low:
        if window[first - 1 - low, ARTICLE] != candidate.article_row:
            break
        first -= 1
        balance = _quote_marks(span_text(first, last))
    if balance != 0:
        return candidate.start, candidate.end
    return int(window[first - low, START]), int(window[last - low, END])


def _citation(retriever: Retriever, candidate: Candidate, n: int) -> Citation:
    article = retriever.store.article(candidate.article_row)
    start, end = _complete_quotes(retriever, candidate)
    return Citation(
        n=n,
        article_id=article.id,
        label=article.label,
        title=article.title,
        outlet=article.outlet,
        date=article.date,
        path=article.path,
        excerpt=article.text[start:end],
        start=start,
        end=end,
        score=round(candidate.score, 4),
        passage_start=candidate.hit.start,
        passage_end=candidate.hit.end,
    )


def answer_question(
    question: str,
    *,
    retriever: Retriever,
    query: str | None = None,
    filters: Filters | None = None,
    settings: AnswerSettings = AnswerSettings(),
) -> Answer:
    """Return a cited, extractive answer to `question`, or a declined one when the articles don't cover it.

    Args:
        question: the question as asked.
        retriever: search over the index.
        query: the text to search with, when it differs from the question (a follow-up made self-contained).
        filters: restrict the sources by outlet or date.
        settings: retrieval depth, answer length and decline thresholds.
    """
    query = query or question
    store = retriever.store  # another thread may swap the retriever's index; the answer keeps the one it used
    query_vector = retriever.encode_query(query)
    hits = retriever.search(query, k=settings.passages, filters=filters, query_vector=query_vector)
    weights = _term_weights(retriever, set(terms(query)))
    shape = _answer_shape(query)
    candidates = _candidates(retriever, hits, query, query_vector, weights, shape, settings) if hits else []
    retrieved = {"retrieved": [[hit.article.id, hit.start, hit.end] for hit in hits]}
    if not candidates:
        return Answer(question, True, query=query, evidence={"reason": "no passages matched"} | retrieved, store=store)
    features = evidence(retriever, hits, candidates, query, weights, asks_kind=shape is not None)
    probability = DECLINE_MODEL.probability(features)
    judged = retrieved | {
        "answer_probability": round(probability, 4),
        "features": {name: round(value, 4) for name, value in features.items()},
    }
    threshold = DECLINE_MODEL.threshold if settings.min_answer_probability is None else settings.min_answer_probability
    if probability < threshold:
        return Answer(question, True, query=query, evidence=judged | {"reason": "weak evidence"}, store=store)

    citations: list[Citation] = []
    statements: list[Statement] = []
    for chosen in _select(retriever, candidates, settings):
        versions = [_citation(retriever, source, len(citations) + n) for n, source in enumerate(chosen.versions, 1)]
        citations += versions
        statements.append(_statement(versions))
    return Answer(question, False, statements, citations, query, judged, store)


def _statement(versions: list[Citation]) -> Statement:
    """Return the statement carried by `versions` (its first version quoted as its text)."""
    outlets = list(dict.fromkeys(v.outlet for v in versions if v.outlet))
    dates = [v.date for v in versions if v.date]
    return Statement(
        text=versions[0].excerpt,
        citations=[v.n for v in versions],
        outlets=outlets,
        independent_sources=len({v.article_id for v in versions}),
        first_date=min(dates) if dates else None,
    )
