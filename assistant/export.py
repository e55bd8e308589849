"""Export: answers as Markdown that reads well raw and rendered, with article text kept inert."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from assistant.answer import Answer, Citation, Statement
from assistant.labels import filters_label, plural, readable_date, shown_path
from assistant.retrieval import Filters

# What would make article text into Markdown (CommonMark, GitHub's and Streamlit's additions), and nothing else:
# code, emphasis, HTML, entities, tables, escapes, and a bracket that would close a link, a reference or a directive.
_ALWAYS = re.compile(r"[`*|]|\\(?=[!-/:-@\[-`{-~])|_(?!\w)|(?<!\w)_|<(?=[A-Za-z/!?])|&(?=#?\w+;)|\](?=[(\[:])")
_DIRECTIVE = re.compile(r"(:\w+)\[")  # Streamlit's :red[...] and :material/icon:
_PAIRED = "$~"  # math and strikethrough need two: a lone "$5" stays as it is
_LINE_START = re.compile(r"^([#>=+-]|~~~)", re.MULTILINE)
_LIST_NUMBER = re.compile(r"^(\d+)([.)])", re.MULTILINE)


def inert_markdown(text: str) -> str:
    """Return `text` as Markdown that renders as the text itself, escaping only what Markdown would read as syntax."""
    text = _ALWAYS.sub(lambda m: "\\" + m.group(), text)
    text = _DIRECTIVE.sub(r"\1\\[", text)
    for mark in _PAIRED:
        if text.count(mark) > 1:
            text = text.replace(mark, "\\" + mark)
    return _LIST_NUMBER.sub(r"\1\\\2", _LINE_START.sub(r"\\\1", text))


def quoted(text: str, indent: str = "") -> list[str]:
    """Return article text as inert blockquote lines (leading spaces dropped: they would make code blocks)."""
    return [f"{indent}> {inert_markdown(line.strip())}".rstrip() for line in text.splitlines() or [""]]


def markers(numbers: list[int]) -> str:
    """Return citation markers: "[1][2]"."""
    return "".join(f"[{n}]" for n in numbers)


def badge(statement: Statement, citations: dict[int, Citation]) -> str:
    """Return who carries a statement: "Reported by TASS, Sputnik · 2 independent sources · first 14 Jul 2024"."""
    unknown = sum(1 for n in statement.citations if not citations[n].outlet)
    reporters = [*statement.outlets, *([plural(unknown, "unknown outlet")] if unknown else [])]
    parts = [f"Reported by {', '.join(reporters)}", plural(statement.independent_sources, "independent source")]
    if statement.first_date:
        parts.append(f"first {readable_date(statement.first_date)}")
    if statement.speaker:
        parts.append(f"said by {statement.speaker}")
    return " · ".join(parts)


def source_line(citation: Citation) -> str:
    """Return a citation's source as plain text: its label, date and title (never a server path)."""
    title = citation.title if citation.title and citation.title != citation.label else None
    parts = (citation.label, readable_date(citation.date), title and f"“{title}”")
    return ", ".join(part for part in parts if part)


@dataclass(frozen=True)
class Turn:
    """One asked question for the export: the question, its answer and the filters it was asked under."""

    question: str
    answer: Answer
    filters: Filters | None = None


def turn_markdown(turn: Turn, number: int | None = None) -> list[str]:
    """Return one turn as Markdown lines: the question (numbered), its filters, each statement quoted, its sources."""
    answer = turn.answer
    lines = [f"## {'' if number is None else f'{number}. '}{inert_markdown(turn.question)}", ""]
    if label := filters_label(turn.filters):
        lines += [f"Filters: {inert_markdown(label)}", ""]
    if answer.abstained:
        return [*lines, f"*Declined:* {answer.answer}", ""]
    citations = {c.n: c for c in answer.citations}
    for statement in answer.statements:
        body = quoted(statement.text)
        body[-1] += f" {markers(statement.citations)}"
        lines += [*body, ">", f"> {inert_markdown(badge(statement, citations))}", ""]
    lines += ["Sources:", ""]
    for citation in answer.citations:
        where = f"{shown_path(citation.path)}, characters {citation.start}-{citation.end}"
        lines += [f"{citation.n}. {inert_markdown(source_line(citation))} ({inert_markdown(where)})"]
        lines += [*quoted(citation.excerpt, indent="   "), ""]
    return lines


def conversation_markdown(turns: list[Turn], *, exported: datetime | None = None) -> str:
    """Return a conversation as Markdown: when it was exported, then each turn numbered."""
    exported = exported or datetime.now(UTC)
    lines = ["# Conversation with the news assistant", "", f"Exported {exported:%-d %b %Y, %H:%M} UTC.", ""]
    for number, turn in enumerate(turns, start=1):
        lines += turn_markdown(turn, number)
    return "\n".join(lines).rstrip() + "\n"
