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
_WHO_ELSE = re.compile(
    r"\b(?:else|other|others|another|elsewhere)\b.*\b(?:report|say|said|carr|cover|wr[io]te|publish|mention|quot)\w*",
    re.IGNORECASE,
)
_BARE = re.compile(r"\W*(?:(?:and|but|so)\W+)?(?:why|when|where|how|who|what)(?:\W+not)?\W*", re.IGNORECASE)
_ASKING = re.compile(
    r"^\s*(?:(?:and|but|so)\s+)?(?!what about|how about)(?:what|who|whom|whose|when|where|why|which|how|is|are|was|"
    r"were|do|does|did|can|could|will|would|should|has|have|had)\b",
    re.IGNORECASE,
)
"""A question that asks in its own words: it opens with a question word ("And when did he leave?")."""


def is_follow_up(question: str) -> bool:
    """Return True if the question leans on earlier turns: a pronoun, a continuation, or almost no content words.

    Two content words and no name ("Who came second?") are too few to ask about anything by themselves.
    """
    if _ANAPHORA.search(question) or _CONTINUATION.match(question):
        return True
    words = len(terms(question))
    return words <= 1 or (words == 2 and not _named(question.split(None, 1)[-1]))


def asks_who_else(question: str) -> bool:
    """Return True if a follow-up asks which other sources carry what was quoted ("Who else reported it?")."""
    return bool(_WHO_ELSE.search(question))


def is_bare(question: str) -> bool:
    """Return True if a question is a question word alone ("Why?", "And when?"): it asks about the last question's
    subject."""
    return bool(_BARE.fullmatch(question))


def is_elliptical(question: str) -> bool:
    """Return True if a follow-up asks nothing in its own words ("And Biogen?", "What about 2014?"): it asks what
    the previous question asked, about something else."""
    return not _ASKING.match(question)


def topic_chain(history: list[str], *, turns: int = 2) -> list[str]:
    """Return the earlier questions a follow-up builds on: the last `turns`, after the last self-contained question
    before them when they are all follow-ups ("What is it called?", "When could it appear?" point back to it)."""
    recent = history[-turns:]
    if not all(is_follow_up(question) for question in recent):
        return recent
    anchor = next((question for question in reversed(history[:-turns]) if not is_follow_up(question)), None)
    return [anchor, *recent] if anchor else recent


def asks_to_repeat(question: str) -> bool:
    """Return True if the question asks for the earlier answer again ("Quote that again", "What exactly was said?")."""
    return bool(_REPEAT.search(question))


def new_terms(question: str, history: list[str], *, turns: int = 2) -> frozenset[str]:
    """Return the terms a follow-up adds to the recent questions: the new aspect it asks about (not the words that
    point back, such as "else")."""
    earlier = {term for question in history[-turns:] for term in terms(question)}
    pointing = {term for word in _ANAPHORA.findall(question) for term in terms(word)}
    return frozenset(terms(question)) - earlier - pointing


def _named(earlier: str) -> list[str]:
    """Return the capitalised names in an earlier question or quote ("Defense Minister Andrey Belousov", "NATO")."""
    return [word for word in _CAPITALISED.findall(earlier) if terms(word)]


def contextual_query(question: str, history: list[str], *, follow_up: bool | None = None, quoted: str = "") -> str:
    """Return the text to search with: a follow-up question together with what it points back to.

    `history` holds the questions it builds on (see topic_chain). A question about a person ("What did he say about
    Macron?") carries over only the names in those questions and the full names in what the last answers `quoted`
    first ("Ray Mallon" for "What is he nicknamed?"), so that it keeps its own focus; one about a topic ("How did
    the Kremlin react to that?") carries over those questions whole.
    """
    if not history or not (is_follow_up(question) if follow_up is None else follow_up):
        return question
    if _PERSON.search(question) and not _TOPIC.search(question):
        names = [name for earlier in history for name in _named(earlier)] + _FULL_NAME.findall(quoted)
        if names:
            return " ".join([question, *dict.fromkeys(names)])
    return " ".join([*history, question])


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
