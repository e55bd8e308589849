"""Corpus overview: what the index covers (articles, outlets, dates, passages, names), for a page or a decline."""

from __future__ import annotations

import bisect
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date

from assistant.labels import plural, readable_date
from embeddings.backend import Reader

NAME_SAMPLE = 300
"""Most articles read for the names the example questions use (spread over the corpus)."""
# A person quoted by full name ("Dmitry Peskov said"), and a capitalised word inside a sentence or an acronym ("NATO").
_SPEAKER = re.compile(
    r"\b(?!The\b)[A-Z][a-z]+ ([A-Z][a-z]{2,}),?(?: [^.,\n]{0,50},)? (?:said|says|told|stressed|added|noted)\b"
)
_NAME = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]{2,}\b(?! [A-Z])|\b[A-Z]{3,}\b")
_NOT_NAMES = {
    "The", "This", "That", "These", "Those", "President", "Minister", "Spokesman", "Secretary", "January", "February",
    "March", "April", "May", "June", "July", "August", "September", "October", "November", "December", "Monday",
    "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
}  # fmt: skip


@dataclass(frozen=True)
class CorpusOverview:
    """Counts of an index (articles, passages, articles per outlet and per day) and the names it mentions most."""

    articles: int
    passages: int
    outlets: dict[str, int]
    first_date: str | None
    last_date: str | None
    unknown_outlet: int = 0
    """Articles whose outlet is not known."""
    days: dict[str, int] | None = None
    """Articles per date (YYYY-MM-DD), in date order."""
    speakers: tuple[str, ...] = ()
    """Names the articles quote most ("Peskov said"), most frequent first."""
    names: tuple[str, ...] = ()
    """Other capitalised names the articles mention most, most frequent first."""

    @property
    def dates(self) -> list[str]:
        """Return the days that have articles (YYYY-MM-DD), in order."""
        return list(self.days or ())

    def has_dates_in(self, first: str | None, last: str | None) -> bool:
        """Return True if some article is dated from `first` to `last` (inclusive; None leaves that end open)."""
        at = bisect.bisect_left(self.dates, first or "")
        return at < len(self.dates) and (last is None or self.dates[at] <= last)

    def summary(self) -> str:
        """Return a sentence saying what the corpus covers: articles, outlets and dates."""
        if not self.articles:
            return "The corpus is empty: add articles first."
        sources = [", ".join(sorted(self.outlets))] if self.outlets else []
        if self.unknown_outlet:
            sources.append(f"{self.unknown_outlet} of unknown outlet" if self.outlets else "unknown outlets")
        dates = ""
        if self.first_date:
            first, last = readable_date(self.first_date), readable_date(self.last_date)
            dates = f" dated {first}" if first == last else f" dated {first} to {last}"
        return f"The corpus holds {plural(self.articles, 'article')} from {' and '.join(sources)}{dates}."

    def hint(self) -> str:
        """Return what the corpus covers and how to rephrase, for a declined question."""
        return self.summary() + " Try naming a person, place or event from them, or widen the filters."

    def example_questions(self) -> list[str]:
        """Return up to four questions made from the corpus's own speakers, names, outlets and dates."""
        names = [n for n in self.names if n not in self.speakers] or ["the news"]
        topic = (names * 3)[:3]
        speaker = self.speakers[0] if self.speakers else None
        questions = [f"What did {speaker} say about {topic[0]}?" if speaker else f"What happened with {topic[0]}?"]
        if self.outlets:
            questions.append(f"What did {next(iter(self.outlets))} report about {topic[1]}?")
        if self.last_date:
            day = date.fromisoformat(self.last_date)
            questions.append(f"What was said about {topic[2]} on {day:%-d %B %Y}?")
        if len(self.speakers) > 1:
            questions.append(f"What did {self.speakers[1]} say?")
        return list(dict.fromkeys(questions))


def _names(store: Reader, outlets: set[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the most quoted speakers and the most mentioned other names, from a sample of the articles."""
    rows = store.live_article_rows()
    speakers, names = Counter(), Counter()
    for row in rows[:: max(1, len(rows) // NAME_SAMPLE)].tolist():
        text = store.article(row).text
        speakers.update(set(_SPEAKER.findall(text)) - _NOT_NAMES)
        names.update({n for n in _NAME.findall(text) if n not in _NOT_NAMES and n.title() not in outlets})

    def top(counts: Counter, k: int) -> tuple[str, ...]:
        return tuple(sorted(counts, key=lambda name: (-counts[name], name))[:k])

    return top(speakers, 2), top(names, 6)


def corpus_overview(store: Reader) -> CorpusOverview:
    """Return the overview of a loaded index."""
    coverage = store.coverage()
    outlets, days = coverage.outlets, coverage.days
    speakers, names = _names(store, set(outlets))
    return CorpusOverview(
        articles=coverage.articles,
        passages=coverage.passages,
        outlets=dict(sorted(outlets.items(), key=lambda item: (-item[1], item[0]))),
        first_date=min(days) if days else None,
        last_date=max(days) if days else None,
        unknown_outlet=coverage.articles - sum(outlets.values()),
        days=dict(sorted(days.items())),
        speakers=speakers,
        names=names,
    )
