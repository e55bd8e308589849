"""Conversation: follow-up questions made self-contained with the earlier turns."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from embeddings.terms import terms

# Words that point back to something named in an earlier turn.
_ANAPHORA = re.compile(
    r"\b(he|she|him|her|his|hers|they|them|their|theirs|it|its|this|that|these|those|there|then|"
    r"the same|the other|other|else|also|too)\b",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"\b[A-Z][\w’'-]*")
_PERSON = re.compile(r"\b(he|she|him|her|his|hers|they|them|their|theirs)\b", re.IGNORECASE)
_TOPIC = re.compile(r"\b(it|its|this|that|these|those|there|then)\b", re.IGNORECASE)
_CONTINUATION = re.compile(r"^\s*(and|but|so|what about|how about|why|why not|what else)\b", re.IGNORECASE)


def is_follow_up(question: str) -> bool:
    """Return True if the question leans on earlier turns: a pronoun, a continuation, or almost no content words."""
    return bool(_ANAPHORA.search(question) or _CONTINUATION.match(question)) or len(terms(question)) <= 1


def _named(earlier: str) -> list[str]:
    """Return the capitalised names in an earlier question ("Defense Minister Andrey Belousov", "NATO")."""
    return [word for word in _CAPITALISED.findall(earlier) if terms(word)]


def contextual_query(question: str, history: list[str], *, turns: int = 2) -> str:
    """Return the text to search with: a follow-up question together with what it points back to.

    A question about a person ("What did he say about Macron?") carries over only the names in the recent
    questions, so that it keeps its own focus; one about a topic ("How did the Kremlin react to that?")
    carries over the recent questions whole.
    """
    if not history or not is_follow_up(question):
        return question
    if _PERSON.search(question) and not _TOPIC.search(question):
        names = [name for earlier in history[-turns:] for name in _named(earlier)]
        if names:
            return " ".join([question, *dict.fromkeys(names)])
    return " ".join([*history[-turns:], question])


@dataclass
class Conversation:
    """The questions asked so far in one chat, oldest first, bounded to the most recent `limit`."""

    questions: list[str] = field(default_factory=list)
    limit: int = 50

    def add(self, question: str) -> None:
        """Record an asked question."""
        self.questions = [*self.questions, question][-self.limit :]
