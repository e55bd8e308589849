"""Follow-ups without a pronoun: whether a question stays on the articles the conversation has been quoting."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from assistant.conversation import Span, Turn
from assistant.retrieval import Retriever
from embeddings.store import ARTICLE, Store
from embeddings.terms import terms

if TYPE_CHECKING:
    from assistant.question import DateRange  # the question's reading builds on this module

CONTEXT_TURNS = 2
"""A follow-up stays on the articles this many of the last answers were about (a reaction asked two turns later)."""
FOLLOWING_SENTENCES = 1
"""A follow-up prefers the sentences up to this many after one the previous answer cited (the next one)."""
_NAME = re.compile(r"\b[A-Z][\w’'-]*")


def discussed(turns: list[Turn]) -> frozenset[str]:
    """Return the ids of the articles the last answers were about (those carrying each one's first statement)."""
    return frozenset(article_id for turn in turns[-CONTEXT_TURNS:] for article_id, _, _ in turn.lead)


def keeps_topic(retriever: Retriever, query: str, context: frozenset[str]) -> bool:
    """Return True if a question reads as a follow-up on the `context` articles although no pronoun says so.

    It does when every name it writes with a capital is in those articles: "Who will host the ceremony?" names
    nothing else, "What did Yeo say about the plans?" names someone they mention, while "What did Peskov say about
    China?" after a question on BBC articles starts a new topic.
    """
    if not context:
        return False
    names = {term for word in _NAME.findall(query) for term in terms(word)}
    rows = [row for row, article in enumerate(retriever.store.articles) if article.id in context]
    return names <= frozenset().union(*(retriever.article_terms(row) for row in rows))


def follows_cited(store: Store, row: int, spans: frozenset[Span], *, reach: int = FOLLOWING_SENTENCES) -> bool:
    """Return True if sentence `row` comes within `reach` sentences after a cited span of its own article.

    News writes a claim's reason, the reply to it and what else happened right after it.
    """
    article_row = int(store.sentences[row, ARTICLE])
    article_id = store.articles[article_row].id
    own = [(start, end) for cited, start, end in spans if cited == article_id]
    for before in range(row - 1, max(row - reach, 0) - 1, -1):
        other, start, end = store.sentences[before].tolist()
        if other != article_row:
            return False
        if any(start < e and s < end for s, e in own):
            return True
    return False


def quoted_first(store: Store, turn: Turn) -> str:
    """Return the text of the statement a turn's answer gave first (its versions' excerpts), empty if none."""
    return " ".join(store.article_by_id[article_id].text[start:end] for article_id, start, end in sorted(turn.lead))


def keeps_dates(store: Store, dates: DateRange | None, lead: frozenset[str]) -> bool:
    """Return True if a follow-up's date range admits an article the conversation is about (or there is none)."""
    if dates is None or not lead:
        return True
    days = [store.article_by_id[article_id].date for article_id in lead]
    return any(day and (dates.first or day) <= day <= (dates.last or day) for day in days)
