"""Corpus overview: what the index covers (articles, outlets, dates, passages), for a page or a declined answer."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass

from embeddings.store import Store


@dataclass(frozen=True)
class CorpusOverview:
    """Counts of an index: articles, passages, articles per outlet, and the first and last article dates."""

    articles: int
    passages: int
    outlets: dict[str, int]
    first_date: str | None
    last_date: str | None
    dates: tuple[str, ...] = ()
    """Every article date, sorted (an article without a date has none here)."""

    def has_dates_in(self, first: str | None, last: str | None) -> bool:
        """Return True if some article is dated from `first` to `last` (inclusive; None leaves that end open)."""
        at = bisect.bisect_left(self.dates, first or "")
        return at < len(self.dates) and (last is None or self.dates[at] <= last)

    def summary(self) -> str:
        """Return a sentence saying what the corpus covers: articles, outlets and dates."""
        if not self.articles:
            return "The corpus is empty: add articles first."
        outlets = ", ".join(sorted(self.outlets)) or "unknown outlets"
        dates = f" dated {self.first_date} to {self.last_date}" if self.first_date else ""
        return f"The corpus holds {self.articles} articles from {outlets}{dates}."

    def hint(self) -> str:
        """Return what the corpus covers and how to rephrase, for a declined question."""
        return self.summary() + " Try naming a person, place or event from them, or widen the filters."


def corpus_overview(store: Store) -> CorpusOverview:
    """Return the overview of a loaded index."""
    outlets = Counter(a.outlet for a in store.articles if a.outlet)
    dates = sorted(a.date for a in store.articles if a.date)
    return CorpusOverview(
        articles=len(store.articles),
        passages=len(store.passages),
        outlets=dict(sorted(outlets.items(), key=lambda item: (-item[1], item[0]))),
        first_date=dates[0] if dates else None,
        last_date=dates[-1] if dates else None,
        dates=tuple(dates),
    )
