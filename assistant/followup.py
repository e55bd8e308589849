"""Follow-ups without a pronoun: whether a question stays on the articles the conversation has been quoting."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from assistant.conversation import Span, Turn
from assistant.retrieval import Filters, Retriever
from embeddings.backend import Reader
from embeddings.terms import terms

if TYPE_CHECKING:
    from assistant.question import DateRange  # the question's reading builds on this module

CONTEXT_TURNS = 2
"""A follow-up stays on the articles this many of the last answers were about (a reaction asked two turns later)."""
TOPIC_SIMILARITY = 0.15
"""The least cosine similarity between a question and a passage of the articles discussed for it to read as a
follow-up on them without a pronoun (off-topic questions stay below 0.11 on the seeds, follow-ups above 0.2)."""
FOLLOWING_SENTENCES = 1
"""A follow-up prefers the sentences up to this many after one the previous answer cited (the next one)."""
_NAME = re.compile(r"\b[A-Z][\w’'-]*")


def discussed(turns: list[Turn]) -> frozenset[str]:
    """Return the ids of the articles the last answers were about (those carrying each one's first statement)."""
    return frozenset(article_id for turn in turns[-CONTEXT_TURNS:] for article_id, _, _ in turn.lead)


def keeps_topic(retriever: Retriever, query: str, vector: np.ndarray, context: frozenset[str]) -> bool:
    """Return True if a question reads as a follow-up on the `context` articles although no pronoun says so.

    It does when every name it writes with a capital is in those articles and one of their passages is near it:
    "Who will host the ceremony?" names nothing else, "What did Yeo say about the plans?" names someone they
    mention, while "What did Peskov say about China?" after a question on BBC articles, or "How do I bake
    sourdough bread?", starts a new topic.
    """
    if not context:
        return False
    names = {term for word in _NAME.findall(query) for term in terms(word)}
    rows = [row for row in map(retriever.store.article_row, sorted(context)) if row is not None]
    known = frozenset().union(*(retriever.article_terms(row) for row in rows))
    if not all(_mentioned(name, known) for name in names):
        return False
    nearest, _ = retriever.dense(vector, k=1, filters=Filters(articles=context))
    return len(nearest) > 0 and float(nearest[0]) >= TOPIC_SIMILARITY


def _mentioned(name: str, known: frozenset[str]) -> bool:
    """Return True if a name's term, or a longer or shorter form of it ("Russian" for "Russia"), is `known`."""
    return name in known or any(term.startswith(name) or name.startswith(term) for term in known if len(term) > 3)


def follows_cited(
    retriever: Retriever, article_row: int, row: int, spans: frozenset[Span], *, reach: int = FOLLOWING_SENTENCES
) -> bool:
    """Return True if sentence `row` of the article at `article_row` comes within `reach` sentences after a cited
    span of its own article.

    News writes a claim's reason, the reply to it and what else happened right after it.
    """
    article_id = retriever.store.article(article_row).id
    own = [(start, end) for cited, start, end in spans if cited == article_id]
    earlier = retriever.article_sentences(article_row).around(row, before=reach, after=0)[:-1]
    return any(start < e and s < end for start, end in earlier for s, e in own)


def quoted_first(store: Reader, turn: Turn) -> str:
    """Return the text of the statement a turn's answer gave first (its versions' excerpts), empty if none."""
    return " ".join(store.article_by_id[article_id].text[start:end] for article_id, start, end in sorted(turn.lead))


def keeps_dates(store: Reader, dates: DateRange | None, lead: frozenset[str]) -> bool:
    """Return True if a follow-up's date range admits an article the conversation is about (or there is none)."""
    if dates is None or not lead:
        return True
    days = [store.article_by_id[article_id].date for article_id in lead]
    return any(day and (dates.first or day) <= day <= (dates.last or day) for day in days)
