"""Reading a question: the outlets and dates it names, whether it asks for a time order or a reason, what to search.

Dates a question can name (a day without a year takes the year of the corpus's latest article date, or the year
before when that day would come after it; "today" is the corpus's latest article date):

- a day: "July 14", "14 July", "July 14, 2024", "2024-07-14"; a run of days: "July 9-11"
- a month: "July 2024", "in July"; a year: "in 2024"
- relative: "today", "yesterday", "this week", "last week" (the seven days before today), "this month",
  "last month", "in the last N days"
- how it relates: "on"/"in"/"during" (that range), "after" (from the day after), "since"/"from" (from its first
  day), "before" (until the day before), "until"/"till"/"by" (until its last day), "between X and Y"/"from X to Y"
- an event: "after the summit", "before the vote": the event is searched in the articles and dated by the first
  sentence that names it with a date ("the NATO summit held in Washington from July 9-11")

A named range filters the articles by their date only when some article is dated in it: otherwise the date is left
in the query, as it may be a date mentioned in the text ("What happened on February 24, 2022?").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from assistant.followup import follows_cited
from assistant.retrieval import Filters, Hit, Retriever
from embeddings.backend import ARTICLE, FIRST_SENTENCE, SENTENCE_STOP
from embeddings.terms import term_set, terms

if TYPE_CHECKING:
    from assistant.answer import AnswerSettings, Candidate  # answer imports this module

_MONTHS = {
    name: number
    for number, names in enumerate(
        [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
         ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"),
         ("november", "nov"), ("december", "dec")],
        start=1,
    )
    for name in names
}  # fmt: skip
_MONTH = r"(?P<{}>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<{}>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?P<{}>(?:19|20)\d\d)"
# A month or year alone counts only after a preposition ("in May", not "May"); lookbehinds have a fixed width.
_AFTER_PREPOSITION = (
    "(?:"
    + "|".join(
        rf"(?<=\b{word} )" for word in ("in", "of", "during", "since", "after", "before", "until", "till", "by", "from")
    )
    + ")"
)
# One date expression; each alternative names its groups with a suffix, so that they can be told apart.
_DATE_FORMS = [
    r"(?P<iy>\d{4})-(?P<im>\d\d)-(?P<id>\d\d)",
    rf"{_MONTH.format('am')} {_DAY.format('ad')}(?:\s*(?:-|–|to|and)\s*{_DAY.format('ad2')})?"
    rf"(?:,? {_YEAR.format('ay')})?(?![\d:])",
    rf"{_DAY.format('bd')}(?:\s*(?:-|–)\s*{_DAY.format('bd2')})? (?:of )?{_MONTH.format('bm')}"
    rf"(?:,? {_YEAR.format('by')})?",
    rf"{_MONTH.format('cm')},? {_YEAR.format('cy')}",
    rf"{_AFTER_PREPOSITION}(?:early |late |mid-)?{_MONTH.format('dm')}(?! \d)",
    rf"{_AFTER_PREPOSITION}{_YEAR.format('ey')}(?![\d-])",
    r"(?P<rel>today|yesterday|this week|last week|this month|last month|in the (?:last|past) (?P<n>\d+) days)",
]
DATE = re.compile(r"\b(?:" + "|".join(_DATE_FORMS) + r")\b", re.IGNORECASE)
"""A date expression: a day, a run of days, a month, a year, or a day relative to the corpus's latest date."""
_RELATION = r"(?P<rel_word>on|in|during|after|since|from|before|until|till|by|between|as of)\s+(?:the\s+)?"
# An event a time is relative to: "after the summit", "before the vote" (up to the next comma, question mark or
# conjunction); only these relations, only when no date follows.
_EVENT = re.compile(
    r"\b(?P<rel>after|before|since|following)\s+(?P<event>(?:the|a|an|his|her|their|its|last week's|last)\s+[^,?;.]+?)"
    r"(?=\s*(?:[,?;.]|$|\band\b|\bor\b|\bwhen\b))",
    re.IGNORECASE,
)
_MAYBE_DATE = re.compile(r"\d|today|yesterday|week|month|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec", re.I)
"""A cheap test before the date patterns: a question without any of these names no date."""
_RELATION_WORD = re.compile(r"\b(after|before|since|until|between|following)\b", re.IGNORECASE)
_TIME_ORDER = re.compile(r"\b(timeline|chronolog\w*|in (?:date|time) order|over time|evolv\w*|sequence)\b", re.I)
REASON = re.compile(
    r"\b(because|since(?! \d)|due to|owing to|as a result|the result of|resulted from|reasons?|(?:main|key|chief|"
    r"principal|primary|biggest|major|security) concerns?|concerns? (?:about|regarding)|in order to|so that|"
    r"in light of|caused by|triggered by|prompted by|came after|in the wake of|blamed|as this is|that is why|"
    r"which means|(?:thought|said|believed|understood|likely|seen) to be behind|(?:is|was|were|are) behind|"
    r"after (?:learning|hearing|being told|discovering|realising|realizing|finding out))\b",
    re.IGNORECASE,
)
"""Words that give a reason: sentences holding them are preferred for "why" questions."""
# What a question asks for, and the words of the sentences that give it: (kind, question pattern, sentence pattern).
ASKS = (
    ("reason", re.compile(r"^\s*(?:and\s+|but\s+|so\s+)?why\b|\b(what was the reason|what were the reasons|"
                          r"what caused|how come|for what reason|what (?:is|was) behind)\b", re.I), REASON),
    ("reaction", re.compile(r"\b(react\w*|respond\w*|response)\b", re.I),
     re.compile(r"\b(in response|responded|responding|reacted|reaction|in reply|replied|retorted|dismissed|"
                r"condemned|denounced|welcomed|criticized|criticised)\b", re.I)),
    ("name", re.compile(r"\bwhat(?:'s| is| was| are| were) (?:it|they|this|that|the \w+) (?:called|named|known as)\b|"
                        r"\bwhat(?:'s| is| was) (?:its|their|the) name\b", re.I),
     re.compile(r"\b(known as|called|named|dubbed|stands for|branded|name)\b", re.I)),
)  # fmt: skip


def asking_terms(question: str) -> frozenset[str]:
    """Return the terms of the words saying what a question asks for ("called" in "What is it called?", "react",
    "year" in "From which year?", "score" in "What was the score?"): they name the kind of answer, not its topic."""
    from assistant.answer import shape_words  # answer imports this module's Focus for its type only

    words = [match[0] for _, asking, _ in ASKS for match in asking.finditer(question)] + shape_words(question)
    return frozenset(term for word in words for term in terms(word))


def wanted_pattern(asks: str, words: str = "") -> re.Pattern:
    """Return the pattern of sentences giving what a question asks for (a reason, a reaction, a name).

    For a reason, a purpose after the question's own `words` counts too ("Why did he call him?": "call ... to
    discuss").
    """
    pattern = next(sentence for kind, _, sentence in ASKS if kind == asks)
    terms_ = "|".join(re.escape(term) for term in terms(words)) if asks == "reason" else ""
    purpose = rf"|\b(?:{terms_})\w*(?:\W+\w+){{0,8}}?\W+to \w+" if terms_ else ""
    return re.compile(pattern.pattern + purpose, re.IGNORECASE)


_COMPARE = re.compile(r"^\s*(?:please\s+)?(?:compare|contrast)\b\s*|\bcompared?\b", re.IGNORECASE)
# Words that say nothing of a topic once the dates are taken out ("What was reported on July 14?").
_GENERIC = frozenset(
    terms("what happened happen happens report reported reports news was were going on occurred publish published "
          "write wrote written story stories article articles outlet outlets media cover covered there anything")
)  # fmt: skip
# Other names outlets go by, matched when the corpus knows the outlet under the key.
ALIASES = {
    "Associated Press": ("AP",),
    "AP": ("Associated Press",),
    "Agence France-Presse": ("AFP",),
    "AFP": ("Agence France-Presse",),
    "RIA Novosti": ("RIA",),
    "BBC News": ("BBC",),
    "Al Jazeera": ("Al-Jazeera", "Aljazeera"),
    "Reuters": ("Thomson Reuters",),
    "Bloomberg": ("Bloomberg News",),
}

# Outlets named by an ordinary word: a question must write them with a capital to name them.
_ORDINARY_WORD_OUTLETS = frozenset(
    "time times sun mirror express independent guardian post star daily nation observer economist hill atlantic "
    "verge register telegraph standard globe age world herald tribune record mail journal sentinel"
    .split()
)  # fmt: skip


@dataclass(frozen=True)
class DateRange:
    """An inclusive range of days (ISO dates); an open end is None."""

    first: str | None
    last: str | None


@dataclass(frozen=True)
class Reading:
    """What a question names besides its topic: outlets, a date range, an event, a wish for time order, what it asks."""

    question: str
    query: str
    """The question without the outlet names, comparison words and dates it names: what is searched."""
    outlets: frozenset[str] | None = None
    dates: DateRange | None = None
    event: str | None = None
    """An event the question's time is relative to ("the summit" in "after the summit")."""
    relation: str | None = None
    """How the time asked about relates to the event: after, before, since or following."""
    time_order: bool = False
    asks: str | None = None
    """What the question asks for, when sentences show it by their words: "reason", "reaction" or "name"."""

    @property
    def only_dates(self) -> bool:
        """Return True if the question names dates and nothing else to search for ("What happened on July 14?")."""
        return self.dates is not None and not set(terms(self.query)) - _GENERIC

    def filters(self, base: Filters | None) -> Filters:
        """Return `base` narrowed by the outlets and dates the question names."""
        base = base or Filters()
        outlets = base.outlets
        if self.outlets is not None:
            outlets = self.outlets if outlets is None else self.outlets & outlets
        date_from, date_to = base.date_from, base.date_to
        if self.dates is not None:
            date_from = max(filter(None, [date_from, self.dates.first]), default=None)
            date_to = min(filter(None, [date_to, self.dates.last]), default=None)
        return Filters(outlets, date_from, date_to)

    def to_json(self) -> dict:
        """Return what was read from the question, for an answer's evidence."""
        return {
            "outlets": sorted(self.outlets) if self.outlets else None,
            "date_from": self.dates.first if self.dates else None,
            "date_to": self.dates.last if self.dates else None,
            "event": self.event,
            "time_order": self.time_order,
            "asks": self.asks,
        }


@lru_cache(maxsize=4096)
def _outlet_pattern(outlet: str) -> re.Pattern:
    """Return the pattern of an outlet's name or aliases in a question, with a possessive ("Reuters'", "TASS's").

    Any case matches ("tass"), except for outlets named by an ordinary word ("Time", "The Sun"), which need their
    capital.
    """
    names = sorted({outlet, *ALIASES.get(outlet, ())}, key=len, reverse=True)
    forms = []
    for name in names:
        words = re.escape(name).replace(r"\ ", r"\s+")
        ordinary = name.lower().removeprefix("the ") in _ORDINARY_WORD_OUTLETS
        forms.append(f"(?-i:{words[0]}){words[1:]}" if ordinary else words)
    return re.compile(r"\b(?:" + "|".join(forms) + r")(?:['’]s\b|['’](?!\w)|\b)", re.IGNORECASE)


def named_outlets(question: str, outlets) -> tuple[frozenset[str], list[tuple[int, int]]]:
    """Return the corpus outlets that `question` names, and the spans of their names in it."""
    found, spans = set(), []
    for outlet in outlets:
        for match in _outlet_pattern(outlet).finditer(question):
            found.add(outlet)
            spans.append(match.span())
    return frozenset(found), spans


def _day(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _month_end(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def _year_for(month: int, day: int, today: date) -> int:
    """Return the year of a day named without one: today's year, or the year before if the day would be later."""
    candidate = _day(today.year, month, day)
    return today.year if candidate is None or candidate <= today else today.year - 1


def date_range(match: re.Match, today: date) -> tuple[date, date] | None:
    """Return the first and last day a DATE match names (None if it names no real day)."""
    g = match.groupdict()
    if g["iy"]:
        day = _day(int(g["iy"]), int(g["im"]), int(g["id"]))
        return (day, day) if day else None
    for key in ("a", "b"):
        if g[f"{key}m"]:
            month, first = _MONTHS[g[f"{key}m"].lower()], int(g[f"{key}d"])
            last = int(g[f"{key}d2"] or first)
            year = int(g[f"{key}y"]) if g[f"{key}y"] else _year_for(month, last, today)
            start, end = _day(year, month, first), _day(year, month, last)
            return (start, end) if start and end and start <= end else None
    if g["cm"] or g["dm"]:
        month = _MONTHS[(g["cm"] or g["dm"]).lower()]
        year = int(g["cy"]) if g["cy"] else _year_for(month, 1, today)
        return date(year, month, 1), _month_end(year, month)
    if g["ey"]:
        return date(int(g["ey"]), 1, 1), date(int(g["ey"]), 12, 31)
    relative = g["rel"].lower()
    if relative == "today":
        return today, today
    if relative == "yesterday":
        return today - timedelta(days=1), today - timedelta(days=1)
    if relative in ("this week", "last week"):
        return today - timedelta(days=7), today
    if relative == "this month":
        return today.replace(day=1), today
    if relative == "last month":
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    return today - timedelta(days=int(g["n"])), today


def related(relation: str, first: date, last: date) -> DateRange:
    """Return the range a relation word makes of a named range ("after July 11" starts on July 12)."""
    relation = relation.lower()
    if relation in ("after", "following"):
        return DateRange((last + timedelta(days=1)).isoformat(), None)
    if relation in ("since", "from"):
        return DateRange(first.isoformat(), None)
    if relation == "before":
        return DateRange(None, (first - timedelta(days=1)).isoformat())
    if relation in ("until", "till", "by"):
        return DateRange(None, last.isoformat())
    return DateRange(first.isoformat(), last.isoformat())


_RELATED_DATE = re.compile(rf"(?:\b{_RELATION})?(?P<date>{DATE.pattern})", re.IGNORECASE)
_BETWEEN = re.compile(
    rf"\b(?:between|from)\s+(?:the\s+)?(?P<first>{DATE.pattern.replace('?P<', '?P<_')})"
    rf"\s+(?:and|to|until|till)\s+(?:the\s+)?(?P<second>{DATE.pattern})",
    re.IGNORECASE,
)


def named_dates(question: str, today: date) -> tuple[DateRange | None, list[tuple[int, int]]]:
    """Return the date range `question` names (relative to `today`, the corpus's latest date) and the spans naming it.

    Several dates narrow one another ("in July 2024, before July 14").
    """
    ranges, spans = [], []
    between = _BETWEEN.search(question)
    if between:
        a = date_range(DATE.match(question, between.start("first")), today)
        b = date_range(DATE.match(question, between.start("second")), today)
        if a and b:
            return DateRange(a[0].isoformat(), b[1].isoformat()), [between.span()]
    for match in _RELATED_DATE.finditer(question):
        named = date_range(match, today)
        if named:
            ranges.append(related(match["rel_word"] or "on", *named))
            spans.append(match.span())
    if not ranges:
        return None, []
    first = max((r.first for r in ranges if r.first), default=None)
    last = min((r.last for r in ranges if r.last), default=None)
    return DateRange(first, last), spans


_JOINING = re.compile(r"\s*(?:,\s*)?(?:and|or|&|vs\.?|versus|,)?\s*", re.IGNORECASE)
_LEADING = re.compile(r"\b(?:between|by|from|in|of|at|according to)\s+(?:the\s+)?$", re.IGNORECASE)


def _joined(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Return the spans with a list of names made one span ("TASS, Sputnik and Bloomberg"), with the preposition
    before it ("according to")."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and _JOINING.fullmatch(text[merged[-1][1] : start]):
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for span in merged:
        leading = _LEADING.search(text, 0, span[0])
        if leading and not re.search(r"['’]s?$", text[span[0] : span[1]]):  # "in Reuters' report" keeps its "in"
            span[0] = leading.start()
    return [(a, b) for a, b in merged]


def _without(text: str, spans: list[tuple[int, int]]) -> str:
    """Return `text` with the spans taken out and its spacing tidied (the text itself if nothing would be left)."""
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + " " + text[end:]
    tidy = re.sub(r"\s*,?\s*([,?.!])", r"\1", re.sub(r"\s+", " ", text)).strip(" ,")
    return tidy or text.strip()


def read_question(question: str, *, outlets=(), latest: str | None = None) -> Reading:
    """Return what `question` names: the corpus `outlets` it names, dates (relative to `latest`), the rest to search.

    Outlet names and comparison words are taken out of the query ("Compare what TASS and Bloomberg said about the
    US election" searches "what said about the US election" in TASS and Bloomberg); so are the dates.
    """
    today = date.fromisoformat(latest) if latest else date.today()
    found, outlet_spans = named_outlets(question, outlets)
    dates, date_spans = named_dates(question, today) if _MAYBE_DATE.search(question) else (None, [])
    event = None if dates else _EVENT.search(question)
    compare_spans = [m.span() for m in _COMPARE.finditer(question)] if found else []
    spans = [*_joined(question, outlet_spans), *date_spans, *compare_spans]
    query = _without(question, spans) if spans else question
    relation_words = (dates or event) and _RELATION_WORD.search(question)
    return Reading(
        question,
        query,
        outlets=found or None,
        dates=dates,
        event=event["event"] if event else None,
        relation=event["rel"].lower() if event else None,
        time_order=bool(_TIME_ORDER.search(question) or relation_words),
        asks=next((kind for kind, asking, _ in ASKS if asking.search(question)), None),
    )


# Irregular verbs: a follow-up asks in the present ("When did he leave?"), news tells in the past ("He left").
_IRREGULAR = (
    "arise arose arisen|beat beat beaten|become became|begin began begun|bid bid|break broke broken|bring brought|"
    "build built|buy bought|catch caught|choose chose chosen|come came|deal dealt|do did done|draw drew drawn|"
    "drive drove driven|eat ate eaten|fall fell fallen|feel felt|fight fought|find found|fly flew flown|"
    "forbid forbade forbidden|forget forgot forgotten|freeze froze frozen|get got gotten|give gave given|go went gone|"
    "grow grew grown|hang hung|have had|hear heard|hide hid hidden|hold held|keep kept|know knew known|lay laid|"
    "lead led|leave left|lend lent|lose lost|make made|mean meant|meet met|pay paid|ride rode ridden|ring rang rung|"
    "rise rose risen|run ran|say said|see saw seen|seek sought|sell sold|send sent|shake shook shaken|shoot shot|"
    "show showed shown|shrink shrank shrunk|sing sang sung|sink sank sunk|sit sat|sleep slept|speak spoke spoken|"
    "spend spent|stand stood|steal stole stolen|stick stuck|strike struck|swear swore sworn|swim swam swum|"
    "take took taken|teach taught|tear tore torn|tell told|think thought|throw threw thrown|understand understood|"
    "wake woke woken|wear wore worn|win won|withdraw withdrew withdrawn|write wrote written"
)
BASE_FORMS = {
    term: base
    for verb in _IRREGULAR.split("|")
    for base, *others in [[next(iter(terms(form)), form) for form in verb.split()]]
    for term in others
    if term != base
}
"""The term of each past form of an irregular verb, with the term of its base form ("left" -> "leav")."""


def with_base_forms(found: frozenset[str]) -> frozenset[str]:
    """Return the terms of a sentence with the base form of each irregular past form it holds added."""
    return found | {BASE_FORMS[term] for term in found if term in BASE_FORMS}


ASPECT_WEIGHT = 0.3
"""Added to a follow-up's candidate score for holding all of the terms that the follow-up adds to the earlier turns,
and again times its similarity to the follow-up question alone."""
CONTEXT_PASSAGES = 2
"""Passages searched in the articles the previous answer cited, added to a conversation's search."""
CONTEXT_WEIGHT = 0.15
"""Added to the score of a sentence from an article the previous answer cited: a chat stays on its articles."""
FOLLOW_UP_BLEND = 0.5
"""A follow-up's sentences keep this share of their score for the question searched with the earlier turns."""
NEXT_WEIGHT = 0.2
"""Added for a follow-up to a sentence right after one the previous answer cited (see followup.follows_cited)."""
FOLLOW_UP_PASSAGES = 4
"""Passages searched in the articles the previous answers cited for a follow-up, with it and with it alone."""
FOLLOW_UP_CONTEXT_WEIGHT = 0.5
"""Added for a follow-up to a sentence of its `lead` articles: it asks about the articles discussed, not their topic."""


@dataclass(frozen=True)
class Focus:
    """How a question's reading searches and what it quotes: each named outlet's own version, reasons for "why",
    the new aspect of a follow-up, and not what the previous answer quoted."""

    outlets: tuple[str, ...] = ()
    """Named outlets, each searched apart so that each gets its version."""
    prefer: re.Pattern | None = None
    """Sentences matching it are preferred (REASON for "why" questions, see ASKS)."""
    leave_out: frozenset[tuple[str, int, int]] = frozenset()
    """Spans (article id, start, end) the previous answer cited: they, and what says the same, are not quoted again
    unless they hold what the question asks for (a new term, a reason, a number or name asked for)."""
    aspect: frozenset[str] = frozenset()
    """Terms a follow-up adds to the earlier turns ("China" in "And about China?")."""
    own_vector: np.ndarray | None = field(default=None, compare=False)
    """A follow-up question's own vector, without the earlier turns its query carries."""
    context: frozenset[str] = frozenset()
    """The ids of the articles the previous answers cited (of a follow-up, the last two)."""
    own_query: str = ""
    """A follow-up question alone (its new aspect, without the earlier turns), searched in the `lead` articles too."""
    lead: frozenset[str] = frozenset()
    """A follow-up's articles: those the last answers were about (see assistant/followup.py)."""
    others: bool = False
    """The question asks beyond what was quoted ("Who else reported it?"): the same statement from an article the
    previous answer did not cite is new."""
    shape: re.Pattern | None = None
    """The kind of answer a follow-up asks for (see answer.answer_shape): its own, or an elliptical one's ("And
    Biogen?") that of the question before it."""
    said: str = ""
    """The earlier questions a follow-up builds on: a name or number they hold does not answer it ("Who scored?" is
    not answered by the "Forest" the question before it asked about)."""

    def search(self, retriever: Retriever, query: str, *, k: int, filters: Filters | None, query_vector) -> list[Hit]:
        """Return the best passages for `query`: with several named outlets, each outlet's best in turn; in a
        conversation, the best ones from the articles the previous answer cited after them."""
        if len(self.outlets) < 2 and not (self.context or self.lead):
            return retriever.search(query, k=k, filters=filters, query_vector=query_vector)
        filters = filters or Filters()
        each = [replace(filters, outlets=frozenset({outlet})) for outlet in self.outlets] or [filters]
        rankings = [retriever.search(query, k=k, filters=one, query_vector=query_vector) for one in each]
        merged: dict[int, Hit] = {}
        for rank in range(k):
            for ranking in rankings:
                if rank < len(ranking):
                    merged.setdefault(ranking[rank].row, ranking[rank])
        hits = list(merged.values())[:k]
        if self.context or self.lead:
            found = {hit.row for hit in hits}
            if self.lead:
                lead = replace(filters, articles=self.lead)
                more = retriever.search(query, k=FOLLOW_UP_PASSAGES, filters=lead, query_vector=query_vector)
                more += retriever.search(
                    self.own_query, k=FOLLOW_UP_PASSAGES, filters=lead, query_vector=self.own_vector
                )
            else:
                context = replace(filters, articles=self.context)
                more = retriever.search(query, k=CONTEXT_PASSAGES, filters=context, query_vector=query_vector)
            for hit in more:
                if hit.row not in found:
                    found.add(hit.row)
                    hits.append(hit)
        return hits

    def choose(self, retriever: Retriever, candidates: list[Candidate], settings: AnswerSettings) -> list[Candidate]:
        """Return the candidates rescored, best first: what the question asks for and the previous answer's articles
        up, what that answer quoted left out, and each named outlet's best sentence ahead of the rest."""
        if not (self.leave_out or self.prefer or self.aspect or self.own_vector is not None or len(self.outlets) > 1):
            return candidates  # a first question: nothing to rescore
        store = retriever.store
        repeated = _repeats(retriever, candidates, self.leave_out, settings.grouping.same_vector, others=self.others)
        own = [0.0] * len(candidates)
        if self.own_vector is not None:
            own = (retriever.sentence_vectors_of([c.row for c in candidates]) @ self.own_vector).tolist()
        from assistant.answer import has_shape  # answer imports this module's Focus for its type only

        own_terms = term_set(self.own_query) - asking_terms(self.own_query)
        stale = []
        for candidate, repeat, similarity in zip(candidates, repeated, own):
            article = store.article(candidate.article_row)
            text = article.text[candidate.start : candidate.end]
            reason = self.prefer is not None and bool(self.prefer.search(text))
            found = with_base_forms(candidate.terms) if self.own_query else candidate.terms
            new = len(found & self.aspect) / len(self.aspect) if self.aspect else 0.0
            if self.own_query:  # a follow-up: scored by its own words in the articles being discussed
                shaped = self.shape is not None and has_shape(self.shape, text, f"{self.own_query} {self.said}")
                covered = len(found & own_terms) / len(own_terms) if own_terms else 0.0
                candidate.score = (
                    FOLLOW_UP_BLEND * candidate.score
                    + settings.similarity_weight * similarity
                    + settings.coverage_weight * covered
                    + settings.shape_weight * shaped
                    + ASPECT_WEIGHT * (reason + new)
                    + NEXT_WEIGHT * follows_cited(retriever, candidate.article_row, candidate.row, self.leave_out)
                    + FOLLOW_UP_CONTEXT_WEIGHT * (article.id in self.lead)
                )
            else:
                shaped = candidate.has_shape
                candidate.score += ASPECT_WEIGHT * (reason + new + similarity)
            candidate.score += CONTEXT_WEIGHT * (article.id in self.context)
            stale.append(repeat and not (reason or new or shaped))
        fresh = [c for c, old in zip(candidates, stale) if not old]
        candidates = sorted(fresh or candidates, key=lambda c: -c.score)
        if len(self.outlets) >= 2:
            best = {}
            for candidate in candidates:
                best.setdefault(store.article(candidate.article_row).outlet, candidate)
            firsts = [best[outlet] for outlet in self.outlets if outlet in best]
            candidates = [*firsts, *(c for c in candidates if all(c is not f for f in firsts))]
        return candidates


def _repeats(retriever: Retriever, candidates: list, spans: frozenset, same: float, *, others: bool) -> list[bool]:
    """Return for each candidate whether it overlaps a quoted span or says the same as a candidate that does.

    With `others` (the question asks who else said it), saying the same in an article not quoted is no repeat.
    """
    store = retriever.store
    ids = [store.article(c.article_row).id for c in candidates]
    quoted = [
        i
        for i, c in enumerate(candidates)
        if any(a == ids[i] and c.start < end and start < c.end for a, start, end in spans)
    ]
    if not quoted:
        return [False] * len(candidates)
    vectors = retriever.sentence_vectors_of([c.row for c in candidates])
    same_as_quoted = ((vectors @ vectors[quoted].T).max(axis=1) >= same).tolist()
    cited = {a for a, _, _ in spans}
    return [repeat and (not others or article in cited) for repeat, article in zip(same_as_quoted, ids)]


def lead_candidates(retriever: Retriever, filters: Filters) -> list[Candidate]:
    """Return the lead sentence of each article that `filters` admit, oldest first: what a date-only question quotes."""
    from assistant.answer import Candidate  # answer imports this module's Focus for its type only

    store = retriever.store
    rows = store.admitted_passages(filters)
    table = store.passage_table(rows)
    first = np.unique(table[:, ARTICLE], return_index=True)[1]  # each article's first passage: its lead
    sentences = store.sentence_table(table[first, FIRST_SENTENCE]).tolist()
    leads = []
    for passage, (article_row, start, end, sentence, _), (_, s_start, s_end) in zip(
        rows[first].tolist(), table[first].tolist(), sentences
    ):
        article = store.article(article_row)
        hit = Hit(passage, article, start, end, 1.0, 1.0)
        text = article.text[s_start:s_end]
        leads.append(Candidate(sentence, article_row, s_start, s_end, hit, 1.0, term_set(text), False, 1.0, 1.0))
    return sorted(leads, key=lambda c: (c.hit.article.date or "", c.article_row))


def event_dates(retriever: Retriever, event: str, latest: str | None) -> tuple[date, date] | None:
    """Return the first and last day of an event, from the best passage sentence that names it with a date.

    A date without a year takes its article's year (or the corpus's latest date's); None if no sentence dates it.
    """
    needed = set(terms(event))
    if not needed:
        return None
    store = retriever.store
    for hit in retriever.search(event, k=5):
        today = date.fromisoformat(hit.article.date or latest or date.today().isoformat())
        first, stop = store.passage_table([hit.row])[0, [FIRST_SENTENCE, SENTENCE_STOP]].tolist()
        for _, start, end in store.sentence_table(np.arange(first, stop)).tolist():
            text = hit.article.text[start:end]
            if not needed <= term_set(text):
                continue
            for match in DATE.finditer(text):
                named = None if match["rel"] else date_range(match, today)
                if named:
                    return named
    return None
