"""Timelines: an answer's statements in the order of their articles' dates, undated sources apart."""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass, replace

from assistant.answer import Answer, Statement


def in_time_order(answer: Answer) -> Answer:
    """Return the answer with its statements ordered by first date (undated last) and its citations renumbered."""
    ordered = sorted(answer.statements, key=lambda s: (s.first_date is None, s.first_date or ""))
    by_n = {c.n: c for c in answer.citations}
    renumbered = {old: new for new, old in enumerate((n for s in ordered for n in s.citations), start=1)}
    statements = [replace(s, citations=[renumbered[n] for n in s.citations]) for s in ordered]
    citations = [replace(by_n[old], n=new) for old, new in renumbered.items()]
    return replace(answer, statements=statements, citations=citations)


@dataclass(frozen=True)
class Entry:
    """One statement of a timeline: its first date, its text, the sources that carry it and their citations."""

    date: str | None
    text: str
    sources: list[str]
    speaker: str | None
    citations: list[int]


@dataclass(frozen=True)
class Timeline:
    """The statements answering a question in date order (`dated`), and those from undated sources (`undated`)."""

    answer: Answer

    def _entries(self) -> list[Entry]:
        labels = {c.n: c.label for c in self.answer.citations}
        return [_entry(s, labels) for s in self.answer.statements]

    @property
    def dated(self) -> list[Entry]:
        """Return the entries with a date, oldest first."""
        return [e for e in self._entries() if e.date]

    @property
    def undated(self) -> list[Entry]:
        """Return the entries whose sources have no date."""
        return [e for e in self._entries() if not e.date]

    def to_json(self) -> dict:
        """Return the timeline as the JSON contract of `assistant timeline --json`."""
        answer = self.answer
        return {
            "question": answer.question,
            "abstained": answer.abstained,
            "query": answer.query,
            "reading": answer.evidence.get("reading"),
            "dated": [asdict(e) for e in self.dated],
            "undated": [asdict(e) for e in self.undated],
            "citations": [asdict(c) for c in answer.citations],
        }

    def text(self) -> str:
        """Return the timeline for the terminal: each date with its statements, then the undated sources apart."""
        if self.answer.abstained:
            return self.answer.answer
        lines, day = [], None
        for entry in self.dated:
            if entry.date != day:
                lines.append(entry.date)
                day = entry.date
            lines += _entry_lines(entry)
        if self.undated:
            lines += ["Undated sources:", *(line for entry in self.undated for line in _entry_lines(entry))]
        return "\n".join(lines)


def _entry(statement: Statement, labels: dict[int, str]) -> Entry:
    sources = list(dict.fromkeys(labels[n] for n in statement.citations))
    return Entry(statement.first_date, statement.text, sources, statement.speaker, statement.citations)


def _entry_lines(entry: Entry) -> list[str]:
    markers = "".join(f"[{n}]" for n in entry.citations)
    text = f"{', '.join(entry.sources)}: {entry.text} {markers}"
    return textwrap.wrap(text, width=100, initial_indent="  ", subsequent_indent="    ")
