"""Conversation: follow-up questions made self-contained with the earlier turns, and what those turns quoted."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from embeddings import settings
from embeddings.terms import terms

# Words that point back to something named in an earlier turn.
_ANAPHORA = re.compile(
    r"\b(he|she|him|her|his|hers|they|them|their|theirs|it|its|this|that|these|those|there|then|"
    r"the same|the other|other|else|also|too)\b",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"\b[A-Z][\w’'-]*")
_FULL_NAME = re.compile(r"\b[A-Z][a-z’'-]+(?:\s+[A-Z][a-z’'-]+)+")
"""Two or more capitalised words in a row: a person's full name ("Ray Mallon", "President Vladimir Putin")."""
_PERSON = re.compile(r"\b(he|she|him|her|his|hers|they|them|their|theirs)\b", re.IGNORECASE)
_TOPIC = re.compile(r"\b(it|its|this|that|these|those|there|then)\b", re.IGNORECASE)
_REPEAT = re.compile(r"\b(again|repeat|re-?quote|once more|exact (?:words|quote)|exactly)\b", re.IGNORECASE)
_CONTINUATION = re.compile(r"^\s*(and|but|so|what about|how about|why|why not|what else)\b", re.IGNORECASE)


def is_follow_up(question: str) -> bool:
    """Return True if the question leans on earlier turns: a pronoun, a continuation, or almost no content words."""
    return bool(_ANAPHORA.search(question) or _CONTINUATION.match(question)) or len(terms(question)) <= 1


def asks_to_repeat(question: str) -> bool:
    """Return True if the question asks for the earlier answer again ("Quote that again", "What exactly was said?")."""
    return bool(_REPEAT.search(question))


def new_terms(question: str, history: list[str], *, turns: int = 2) -> frozenset[str]:
    """Return the terms a follow-up adds to the recent questions: the new aspect it asks about."""
    earlier = {term for question in history[-turns:] for term in terms(question)}
    return frozenset(terms(question)) - earlier


def _named(earlier: str) -> list[str]:
    """Return the capitalised names in an earlier question or quote ("Defense Minister Andrey Belousov", "NATO")."""
    return [word for word in _CAPITALISED.findall(earlier) if terms(word)]


def contextual_query(
    question: str, history: list[str], *, turns: int = 2, follow_up: bool | None = None, quoted: str = ""
) -> str:
    """Return the text to search with: a follow-up question together with what it points back to.

    A question about a person ("What did he say about Macron?") carries over only the names in the recent
    questions and the full names in what the last answer `quoted` first ("Ray Mallon" for "What is he
    nicknamed?"), so that it keeps its own focus; one about a topic ("How did the Kremlin react to that?")
    carries over the recent questions whole.
    """
    if not history or not (is_follow_up(question) if follow_up is None else follow_up):
        return question
    if _PERSON.search(question) and not _TOPIC.search(question):
        names = [name for earlier in history[-turns:] for name in _named(earlier)] + _FULL_NAME.findall(quoted)
        if names:
            return " ".join([question, *dict.fromkeys(names)])
    return " ".join([*history[-turns:], question])


Span = tuple[str, int, int]
"""A cited span: article id, start, end."""


@dataclass(frozen=True)
class Turn:
    """One asked question and the spans its answer cited (None when only the question is known)."""

    question: str
    cited: frozenset[Span] | None = None
    lead: frozenset[Span] = frozenset()
    """The spans carrying the answer's first statement: what the answer was mostly about."""

    @classmethod
    def of(cls, question: str, answer=None) -> Turn:
        """Return the turn of `question` answered by `answer` (an Answer, or None if not known)."""
        if answer is None:
            return cls(question)
        first = set(answer.statements[0].citations) if answer.statements else set()
        return cls(
            question,
            frozenset((c.article_id, c.start, c.end) for c in answer.citations),
            frozenset((c.article_id, c.start, c.end) for c in answer.citations if c.n in first),
        )


@dataclass
class Conversation:
    """The turns of one chat so far, oldest first, bounded to the most recent `limit` (the history setting)."""

    turns: list[Turn] = field(default_factory=list)
    limit: int = field(default_factory=settings.history_turns)

    @property
    def questions(self) -> list[str]:
        """Return the questions asked so far, oldest first."""
        return [turn.question for turn in self.turns]

    def add(self, question: str, answer=None) -> None:
        """Record an asked question and, when given, its answer's cited spans (follow-ups leave them out)."""
        self.turns = [*self.turns, Turn.of(question, answer)][-self.limit :]
