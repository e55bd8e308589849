"""Export: answers split into quoted statements with their markers, and a conversation as Markdown."""

from __future__ import annotations

import re

from assistant.answer import Answer, Citation

# Characters that Markdown (and Streamlit's Markdown: $math$, :colour[...]) could read as syntax.
_MARKDOWN_SYNTAX = re.compile(r"([\\`*_{}\[\]<>()#|~$&!:])")
_LINE_START_MARKER = re.compile(r"^(\s*)([-+=]|\d+(?=[.)]))", re.MULTILINE)


def escape_markdown(text: str) -> str:
    """Return `text` with every Markdown syntax character backslash-escaped, so it renders as itself."""
    return _LINE_START_MARKER.sub(r"\1\\\2", _MARKDOWN_SYNTAX.sub(r"\\\1", text))


def answer_segments(answer: Answer) -> list[tuple[str, list[int]]]:
    """Return the answer as (statement text, citation numbers) pairs, in order; a declined answer has no numbers."""
    if answer.abstained:
        return [(answer.answer, [])]
    return [(statement.text, statement.citations) for statement in answer.statements]


def _markers(numbers: list[int]) -> str:
    return "".join(f"[{n}]" for n in numbers)


def source_line(citation: Citation) -> str:
    """Return a citation's source as plain text: outlet, date and title, or the article id."""
    title = citation.title and f"“{citation.title}”"
    return ", ".join(part for part in (citation.outlet, citation.date, title) if part) or citation.article_id


def conversation_markdown(turns: list[tuple[str, Answer]]) -> str:
    """Return a conversation as Markdown: each question, its answer with [n] markers, and its cited excerpts."""
    lines = ["# Conversation with the news assistant", ""]
    for number, (question, answer) in enumerate(turns, start=1):
        lines += [f"## {number}. {escape_markdown(question)}", ""]
        if answer.abstained:
            lines += [f"*Declined:* {escape_markdown(answer.answer)}", ""]
            continue
        statements = [escape_markdown(f"{text} {_markers(ns)}") for text, ns in answer_segments(answer)]
        lines += [" ".join(statements), "", "Sources:", ""]
        for citation in answer.citations:
            lines.append(
                f"{citation.n}\\. {escape_markdown(source_line(citation))} "
                f"({escape_markdown(citation.path)}, characters {citation.start}-{citation.end})"
            )
            lines += [f"   > {escape_markdown(line)}" for line in citation.excerpt.splitlines() or [""]]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
