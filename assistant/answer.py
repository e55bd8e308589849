"""Answers: verbatim sentences picked from retrieved passages, each followed by its citation markers."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from assistant.decline import DeclineModel, evidence
from assistant.retrieval import Filters, Hit, Retriever
from assistant.statements import (
    WHOLE,
    Claim,
    Grouping,
    claim,
    is_comparison,
    shared_clause,
    source_groups,
    speaker,
    topic_terms,
    whole_quotation,
)
from assistant.wording import differing_spans
from embeddings.backend import ARTICLE, END, FIRST_SENTENCE, SENTENCE_STOP, START, Reader
from embeddings.terms import terms

if TYPE_CHECKING:
    from assistant.question import Focus  # the question's reading builds on answers

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
class Version:
    """One article's wording of a statement: its citation, its source's label, and where it differs from the first.

    `differences` are (start, end) offsets into the article's text of the words that differ from the first version
    (for the first version: the words some other version lacks); given for comparison questions, empty otherwise.
    """

    n: int
    label: str
    differences: list[tuple[int, int]]


@dataclass(frozen=True)
class Statement:
    """One claim or quotation of an answer, with one cited excerpt (a version) from each article that carries it.

    `citations` are the `n` of the answer's citations that are its versions, the first one quoted as its text;
    `independent_sources` counts the versions' articles, those that copy or lightly rewrite one another once.
    """

    text: str
    citations: list[int]
    outlets: list[str]
    independent_sources: int
    first_date: str | None
    speaker: str | None = None
    versions: list[Version] = field(default_factory=list)


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
    filters: Filters | None = None
    """The filters the sources were searched under: those asked for, narrowed by what the question names."""

    @property
    def answer(self) -> str:
        """Return the answer as text: each statement followed by its [n] markers, or the decline message."""
        if self.abstained:
            return DECLINE
        return " ".join(f"{s.text} {''.join(f'[{n}]' for n in s.citations)}" for s in self.statements)

    def to_json(self) -> dict:
        """Return the answer as the JSON contract of `assistant ask --json`."""
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("question", "store", "filters")}
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
    span: tuple[int, int] = (0, 0)
    """The excerpt quoted for this sentence: the sentence with its whole quotation (see statements.whole_quotation)."""

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
    grouping: Grouping = field(default_factory=Grouping)
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
    r"what (percentage|percent|number|amount|date|century|decade|age|size)|the (?:final )?score)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# Questions that ask for a name, and the capitalized words that could answer them (not at a sentence start).
_ASKS_NAME = re.compile(r"^\s*(who|whom|whose)\b|\b(which|what) (person|man|woman|king|city|country|company)\b", re.I)
_NAME = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]+")


# Questions that ask for a time, and the words that could answer them: a year, a month, a weekday, a relative day.
_ASKS_TIME = re.compile(r"\b(when|what year|which year|what date|what time|since when)\b", re.IGNORECASE)
_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_TIME = re.compile(
    rf"\b(?:1[5-9]\d\d|20\d\d|{_MONTH}|"  # months capitalised: "may" and "march" are also verbs
    r"(?i:monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today|tomorrow|"
    r"(?:last|next|this|that|the following|the previous) (?:week|month|year|season|summer|winter|spring|autumn)|"
    r"\d+ (?:days|weeks|months|years) (?:ago|later|earlier|before|after)))\b"
)
# Questions that ask where, and the places that could answer them: a capitalised name after in, at, from, ...
_ASKS_PLACE = re.compile(r"\bwhere\b", re.IGNORECASE)
_PLACE = re.compile(rf"\b(?:in|at|from|to|near|outside|across)\s+(?:the\s+)?(?!{_MONTH}\b)[A-Z][\w'’-]+")


def answer_shape(query: str, *, fine: bool = False) -> re.Pattern | None:
    """Return the pattern of the kind of answer the question asks for (a number, a name), None if not known.

    `fine` tells times and places apart: a question asking when gets the pattern of times (a year, a month, a
    weekday) rather than of any number ("for almost 20 years" does not say when), one asking where that of places.
    """
    if fine and _ASKS_TIME.search(query):
        return _TIME
    if fine and _ASKS_PLACE.search(query):
        return _PLACE
    if _ASKS_NUMBER.search(query):
        return _NUMBER
    return _NAME if _ASKS_NAME.search(query) else None


def shape_words(query: str) -> list[str]:
    """Return the words of a question that ask for a kind of answer ("how much", "which year", "the score")."""
    return [m[0] for asks in (_ASKS_TIME, _ASKS_PLACE, _ASKS_NUMBER, _ASKS_NAME) for m in asks.finditer(query)]


def has_shape(shape: re.Pattern, sentence: str, query: str) -> bool:
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
        words = retriever.sentence_terms(text)
        shaped = shape is not None and has_shape(shape, text, query)
        candidates.append(Candidate(row, article_row, start, end, hits[rank_of[row]], similarity, words, shaped))
        found = words & wanted
        matched.append(found)
        for term in found:
            frequency[term] += 1
    # A term's weight times its BM25-style inverse frequency among the candidate sentences; numpy's per-call cost
    # outweighs its speed for the few dozen sentences here.
    total = len(rows)
    local = {t: w * _inverse_frequency(frequency[t], total) for t, w in weights.items()}
    local_total = sum(local.values()) or 1.0
    similarity_weight, coverage_weight = settings.similarity_weight, settings.coverage_weight
    rank_weight, shape_weight = settings.rank_weight, settings.shape_weight
    for candidate, found in zip(candidates, matched):
        candidate.coverage = sum([local[t] for t in found]) / local_total
        candidate.score = (
            similarity_weight * candidate.similarity
            + coverage_weight * candidate.coverage
            + rank_weight / (1 + rank_of[candidate.row])
            + shape_weight * candidate.has_shape
        )
    return sorted(candidates, key=lambda c: -c.score)


def _select(
    retriever: Retriever, candidates: list[Candidate], others: list[int], settings: AnswerSettings
) -> list[Candidate]:
    """Return the statements to quote: the best candidates, each with the sentences of other articles that carry the
    same statement attached as its versions (one per article); no two quoted excerpts overlap.

    `others` are sentence rows that may be versions but not statements (see _other_sentences).
    """
    store = retriever.store
    rows = [c.row for c in candidates] + others
    vectors = retriever.sentence_vectors_of(rows)
    spans = store.sentence_table(rows)
    article_rows = spans[:, ARTICLE]
    spans = spans.tolist()
    pool: dict[int, Candidate] = dict(enumerate(candidates))
    claims: dict[int, Claim] = {}

    def candidate_of(j: int) -> Candidate:
        if j not in pool:
            pool[j] = _unscored(retriever, rows[j])
        return pool[j]

    def claim_of(j: int) -> Claim:
        if j not in claims:
            article_row, start, end = spans[j]
            claims[j] = claim(store.article(article_row).text[start:end], vectors[j])
        return claims[j]

    topic = topic_terms([c.terms for c in candidates], settings.grouping)
    chosen: list[int] = []
    used: dict[int, list[tuple[int, int]]] = {}  # article row -> quoted spans

    def free(j: int) -> bool:
        start, end = _excerpt_span(retriever, candidate_of(j))
        return not any(start < b and end > a for a, b in used.get(pool[j].article_row, []))

    def use(j: int) -> None:
        used.setdefault(pool[j].article_row, []).append(pool[j].span)

    for i, candidate in enumerate(candidates):
        if candidate.score < settings.min_relative_score * candidates[0].score or len(chosen) == settings.max_sentences:
            break  # candidates come best first
        if not free(i):
            continue
        chosen.append(i)
        use(i)
        similarities = vectors @ vectors[i]
        near = (similarities >= settings.grouping.related_vector) & (article_rows != candidate.article_row)
        cosines = similarities.tolist()
        mine = claim_of(i)
        clauses = {
            j: shared_clause(mine, claim_of(j), settings.grouping, cosines[j], topic) for j in np.flatnonzero(near)
        }
        matches = [(j, clause) for j, clause in clauses.items() if clause is not None and free(j)]
        # A sentence that makes two claims is one statement: the claim that most other articles carry.
        by_clause: dict[int, set[int]] = {}
        for j, clause in matches:
            if clause != WHOLE:
                by_clause.setdefault(clause, set()).add(int(article_rows[j]))
        carried = max(by_clause, key=lambda clause: len(by_clause[clause]), default=WHOLE)
        carriers = {candidate.article_row}
        for j, clause in matches:
            if clause in (WHOLE, carried) and int(article_rows[j]) not in carriers and free(j):
                candidate.corroborating.append(pool[j])
                carriers.add(pool[j].article_row)
                use(j)
    statements = [candidates[i] for i in chosen]
    # Read well: the best statement first, then the rest grouped by article, each article in its own order.
    first_seen = {}
    for position, statement in enumerate(statements):
        first_seen.setdefault(statement.article_row, position)
    return statements[:1] + sorted(statements[1:], key=lambda s: (first_seen[s.article_row], s.start))


def _other_sentences(retriever: Retriever, hits: list[Hit], candidates: list[Candidate]) -> list[int]:
    """Return the rows of the retrieved articles' sentences outside the retrieved passages: they can be versions of
    a statement (an outlet may carry it in a paragraph the question did not retrieve), never statements."""
    seen = {c.row for c in candidates}
    rows: list[int] = []
    article_rows = retriever.store.passage_table([hit.row for hit in hits])[:, ARTICLE].tolist()
    for article_row in dict.fromkeys(article_rows):
        rows += [row for row in retriever.article_sentences(article_row).rows if row not in seen]
    return rows


def _unscored(retriever: Retriever, row: int) -> Candidate:
    """Return sentence `row` as an unscored candidate, with the first passage that holds it."""
    store = retriever.store
    article_row, start, end = store.sentence_table([row])[0].tolist()
    passages = store.article_rows(article_row)[0]
    table = store.passage_table(np.arange(passages.start, passages.stop))
    passage = passages.start + int(np.argmax(table[:, SENTENCE_STOP] > row))
    passage_start, passage_end = table[passage - passages.start, [START, END]].tolist()
    hit = Hit(passage, store.article(article_row), passage_start, passage_end, 0.0, 0.0)
    return Candidate(row, article_row, start, end, hit, 0.0, frozenset(), False)


def _excerpt_span(retriever: Retriever, candidate: Candidate, *, reach: int = 8) -> tuple[int, int]:
    """Return (and keep on the candidate) the span quoted for its sentence: with its whole quotation."""
    if candidate.span == (0, 0):
        around = retriever.article_sentences(candidate.article_row).around(candidate.row, before=reach, after=reach)
        text = retriever.store.article(candidate.article_row).text
        candidate.span = whole_quotation(text, candidate.start, candidate.end, list(around))
    return candidate.span


def _citation(retriever: Retriever, candidate: Candidate, n: int) -> Citation:
    article = retriever.store.article(candidate.article_row)
    start, end = _excerpt_span(retriever, candidate)
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
    focus: Focus | None = None,
) -> Answer:
    """Return a cited, extractive answer to `question`, or a declined one when the articles don't cover it.

    Args:
        question: the question as asked.
        retriever: search over the index.
        query: the text to search with, when it differs from the question (a follow-up made self-contained).
        filters: restrict the sources by outlet or date.
        settings: retrieval depth, answer length and decline thresholds.
        focus: how the question's reading searches and picks what to quote (assistant/question.py); the decline
            sees the candidates before it picks.
    """
    query = query or question
    store = retriever.store  # another thread may swap the retriever's index; the answer keeps the one it used
    query_vector = retriever.encode_query(query)
    search = retriever.search if focus is None else partial(focus.search, retriever)
    hits = search(query, k=settings.passages, filters=filters, query_vector=query_vector)
    weights = _term_weights(retriever, set(terms(query)))
    shape = answer_shape(query)
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
    if focus is not None:
        candidates = focus.choose(retriever, candidates, settings)
    return quote(question, retriever, candidates, settings, hits=hits, query=query, evidence=judged, store=store)


def quote(
    question: str,
    retriever: Retriever,
    candidates: list[Candidate],
    settings: AnswerSettings,
    *,
    hits: list[Hit],
    query: str,
    evidence: dict,
    store: Reader,
) -> Answer:
    """Return the answer quoting the best of `candidates` (best first), each statement with its versions' citations.

    Other sentences of the `hits`' articles may join a statement as versions.
    """
    citations: list[Citation] = []
    statements: list[Statement] = []
    compare = is_comparison(question)
    selected = _select(retriever, candidates, _other_sentences(retriever, hits, candidates), settings)
    if compare:  # statements that several outlets carry first: they are what a comparison is about
        selected.sort(key=lambda chosen: -len(chosen.versions))
    for chosen in selected:
        versions = [_citation(retriever, source, len(citations) + n) for n, source in enumerate(chosen.versions, 1)]
        citations += versions
        texts = {v.article_id: store.article(source.article_row).text for v, source in zip(versions, chosen.versions)}
        statements.append(_statement(texts, versions, compare=compare))
    return Answer(question, False, statements, citations, query, evidence, store)


def _statement(texts: dict[str, str], versions: list[Citation], *, compare: bool) -> Statement:
    """Return the statement carried by `versions` (its first version quoted as its text), given their articles'
    `texts` by id; `compare`: mark where the versions' wording differs."""
    outlets = list(dict.fromkeys(v.outlet for v in versions if v.outlet))
    dates = [v.date for v in versions if v.date]
    speakers = [speaker(texts[v.article_id], v.start, v.end) for v in versions]
    named = [s for s in speakers if s]
    return Statement(
        text=versions[0].excerpt,
        citations=[v.n for v in versions],
        outlets=outlets,
        independent_sources=len(set(source_groups(texts).values())),
        first_date=min(dates) if dates else None,
        speaker=max(named, key=lambda s: (named.count(s), len(s))) if named else None,
        versions=_versions(versions, compare=compare),
    )


def _versions(versions: list[Citation], *, compare: bool) -> list[Version]:
    """Return each version, with the spans of its words that differ when `compare` (and there are several)."""
    if not compare or len(versions) == 1:
        return [Version(v.n, v.label, []) for v in versions]
    spans = differing_spans([v.excerpt for v in versions])
    return [Version(v.n, v.label, [(v.start + a, v.start + b) for a, b in d]) for v, d in zip(versions, spans)]
