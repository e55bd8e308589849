"""Corpus overview: what the index covers (articles, outlets, dates, passages), for a page or a declined answer."""

from __future__ import annotations

from dataclasses import dataclass

from embeddings.backend import Reader


@dataclass(frozen=True)
class CorpusOverview:
    """Counts of an index: articles, passages, articles per outlet, and the first and last article dates."""

    articles: int
    passages: int
    outlets: dict[str, int]
    first_date: str | None
    last_date: str | None

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


def corpus_overview(store: Reader) -> CorpusOverview:
    """Return the overview of a loaded index."""
    coverage = store.coverage()
    return CorpusOverview(
        articles=coverage.articles,
        passages=coverage.passages,
        outlets=dict(sorted(coverage.outlets.items(), key=lambda item: (-item[1], item[0]))),
        first_date=coverage.first_date,
        last_date=coverage.last_date,
    )
