"""HTML for the chat page: article text always escaped, cited spans highlighted with <mark>.

Article text is untrusted: every piece of it goes through `html.escape`, and nothing here is Markdown,
so neither tags nor links nor Markdown syntax inside an article can become markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from assistant.answer import Answer, Citation
from assistant.export import badge
from assistant.labels import readable_date, shown_path
from assistant.overview import CorpusOverview
from assistant.wording import differing_spans
from embeddings.articles import Article, Skipped
from embeddings.uploads import UploadedFile

STYLE = """<style>
.na-answer { font-size: 1.02rem; line-height: 1.6; scroll-margin-top: 4.5rem; }
.na-statement { margin: 0 0 0.7rem; }
.na-statement p { margin: 0; }
.na-badge { font-size: 0.8rem; color: #4b5563; margin-top: 0.1rem; }
.na-badge b { color: #1f2937; font-weight: 600; }
a.na-cite { font-size: 0.72em; font-weight: 600; color: #1a5fb4; vertical-align: super; margin-left: 1px;
  text-decoration: none; }
a.na-cite:hover { text-decoration: underline; }
.na-cites { white-space: nowrap; }
.na-source { border-left: 3px solid #1a5fb4; padding: 0.1rem 0 0.1rem 0.7rem; margin: 0.2rem 0;
  scroll-margin-top: 4.5rem; }
.na-source-head { font-size: 0.9rem; margin-bottom: 0.25rem; }
.na-source-head b { color: #1a5fb4; }
.na-meta { color: #6b7280; font-size: 0.88rem; }
.na-excerpt { margin: 0.15rem 0; font-size: 0.92rem; line-height: 1.5; scroll-margin-top: 4.5rem; }
.na-excerpt .na-n { color: #1a5fb4; font-weight: 600; font-size: 0.8rem; margin-right: 0.25rem; }
.na-source details { margin-top: 0.2rem; }
.na-source summary { font-size: 0.8rem; color: #6b7280; cursor: pointer; }
.na-passage { font-size: 0.88rem; line-height: 1.5; color: #4b5563; white-space: pre-wrap; margin-top: 0.2rem; }
.na-source mark, .na-answer mark, .na-compare mark { background: #fff3a3; color: #111827; padding: 0 2px;
  border-radius: 2px; }
.na-compare { display: grid; grid-template-columns: repeat(auto-fit, minmax(15rem, 1fr)); gap: 0.6rem;
  margin-bottom: 0.8rem; }
.na-version { border: 1px solid #e5e7eb; border-radius: 6px; padding: 0.4rem 0.6rem; font-size: 0.9rem; }
.na-version-head { font-size: 0.8rem; color: #1a5fb4; font-weight: 600; margin-bottom: 0.2rem; }
.na-declined { color: #92400e; }
.na-overview td { padding: 0 0.6rem 0 0; border: none; font-size: 0.92rem; white-space: nowrap; }
.na-overview table { border: none; }
.na-added { font-size: 0.88rem; padding-left: 1.1rem; margin: 0; }
</style>"""


def highlighted(text: str, spans: list[tuple[int, int]], *, ids: list[str] | None = None, cls: str = "") -> str:
    """Return `text` escaped, each (start, end) span in a <mark> (with the matching `ids` entry as its id).

    Spans are clipped to the text; a span overlapping an earlier one is merged into it.
    """
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    parts, cursor = [], 0
    attribute = f' class="{cls}"' if cls else ""
    for i in order:
        start, end = (max(0, min(x, len(text))) for x in spans[i])
        start = max(start, cursor)
        if end <= start:
            continue
        mark_id = f' id="{escape(ids[i])}"' if ids and ids[i] else ""
        parts += [escape(text[cursor:start]), f"<mark{mark_id}{attribute}>{escape(text[start:end])}</mark>"]
        cursor = end
    return "".join(parts) + escape(text[cursor:])


def cite_id(turn: int, n: int) -> str:
    """Return the page id of citation `n`'s excerpt in turn `turn`'s sources."""
    return f"cite-{turn}-{n}"


def answer_html(answer: Answer, turn: int = 0) -> str:
    """Return an answer's statements: each one's text, its [n] links to its sources, and who reported it."""
    if answer.abstained:
        return f'<div class="na-answer na-declined">{escape(answer.answer)}</div>'
    citations = {c.n: c for c in answer.citations}
    parts = []
    for statement in answer.statements:
        links = "".join(f'<a class="na-cite" href="#{cite_id(turn, n)}">[{n}]</a>' for n in statement.citations)
        parts.append(
            f'<div class="na-statement"><p>{escape(statement.text)}<span class="na-cites">{links}</span></p>'
            f'<div class="na-badge">{escape(badge(statement, citations))}</div></div>'
        )
    return f'<div class="na-answer" id="answer-{turn}">{"".join(parts)}</div>'


@dataclass(frozen=True)
class Source:
    """One cited article of an answer, with the answer's citations of it in order."""

    article: Article
    citations: list[Citation]

    @property
    def head(self) -> Citation:
        """Return the first citation: it names the source (label, date, title)."""
        return self.citations[0]


def sources(answer: Answer) -> list[Source]:
    """Return the answer's cited articles in order of first citation, each with all its citations."""
    grouped: dict[str, list[Citation]] = {}
    for citation in answer.citations:
        grouped.setdefault(citation.article_id, []).append(citation)
    return [Source(answer.store.article_by_id[i], cited) for i, cited in grouped.items()]


def source_head_html(source: Source) -> str:
    """Return a source's heading: its markers and label, then date and title."""
    head = source.head
    title = f"“{head.title}”" if head.title and head.title != head.label else ""
    meta = " · ".join(escape(part) for part in (readable_date(head.date), title) if part)
    numbers = "".join(f"[{c.n}]" for c in source.citations)
    return (
        f'<div class="na-source-head"><b>{numbers} {escape(head.label)}</b>'
        f'{" · " if meta else ""}<span class="na-meta">{meta}</span></div>'
    )


def _passages(citations: list[Citation]) -> list[tuple[int, int]]:
    """Return the distinct passages around the citations, overlapping ones merged, in text order."""
    merged: list[list[int]] = []
    for start, end in sorted((c.passage_start, c.passage_end) for c in citations):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def source_html(source: Source, turn: int | None = None) -> str:
    """Return a source card: its heading, each excerpt marked, and the passages around them (collapsed).

    With `turn`, each excerpt carries the id that its [n] markers link to.
    """
    text = source.article.text
    excerpts = ""
    for c in source.citations:
        anchor = "" if turn is None else f' id="{cite_id(turn, c.n)}"'
        excerpts += f'<div class="na-excerpt"{anchor}><span class="na-n">[{c.n}]</span>'
        excerpts += f"<mark>{escape(c.excerpt)}</mark></div>"
    blocks = []
    for start, end in _passages(source.citations):
        spans = [(c.start - start, c.end - start) for c in source.citations if start <= c.start < end]
        before, after = "… " if start > 0 else "", " …" if end < len(text) else ""
        blocks.append(f'<div class="na-passage">{before}{highlighted(text[start:end], spans)}{after}</div>')
    label = "Passage" if len(blocks) == 1 else f"{len(blocks)} passages"
    return (
        f'<div class="na-source">{source_head_html(source)}{excerpts}'
        f"<details><summary>{label} around {'it' if len(source.citations) == 1 else 'them'}</summary>"
        f"{''.join(blocks)}</details></div>"
    )


def compare_html(answer: Answer) -> str:
    """Return each statement with several versions as its versions side by side, the differing words marked."""
    citations = {c.n: c for c in answer.citations}
    parts = []
    for statement in answer.statements:
        versions = [citations[n] for n in statement.citations]
        if len(versions) < 2:
            continue
        cards = []
        for version, spans in zip(versions, differing_spans([v.excerpt for v in versions])):
            head = " · ".join(part for part in (f"[{version.n}] {version.label}", readable_date(version.date)) if part)
            cards.append(
                f'<div class="na-version"><div class="na-version-head">{escape(head)}</div>'
                f"{highlighted(version.excerpt, spans, cls='na-diff')}</div>"
            )
        parts.append(f'<div class="na-compare">{"".join(cards)}</div>')
    return "".join(parts)


def article_document(source: Source) -> str:
    """Return a whole HTML document of the article, every cited span marked and the first scrolled into view."""
    head, article = source.head, source.article
    spans = [(c.start, c.end) for c in source.citations]
    ids = ["cited" if i == 0 else f"cited-{c.n}" for i, c in enumerate(source.citations)]
    title = f"“{head.title}”" if head.title and head.title != head.label else ""
    heading = " · ".join(part for part in (head.label, readable_date(head.date), title) if part)
    cited = ", ".join(f"[{c.n}]" for c in source.citations)
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ font-family: "Source Sans Pro", system-ui, sans-serif; margin: 0; color: #1f2937; }}
h3 {{ margin: 0.2rem 0; font-size: 1.05rem; }} p {{ margin: 0 0 0.5rem; color: #6b7280; font-size: 0.85rem; }}
#article {{ height: 430px; overflow-y: auto; white-space: pre-wrap; line-height: 1.6; font-size: 0.95rem;
  border: 1px solid #e5e7eb; border-radius: 6px; padding: 0.6rem 0.8rem; }}
mark {{ background: #fff3a3; color: #111827; padding: 0 2px; outline: 2px solid #f5c400; border-radius: 2px; }}
</style></head><body>
<h3>{escape(heading)}</h3>
<p>{escape(shown_path(article.path))} · cited {escape(cited)}</p>
<div id="article">{highlighted(article.text, spans, ids=ids)}</div>
<script>
const box = document.getElementById("article"), mark = document.getElementById("cited");
box.scrollTop = mark.offsetTop - box.offsetTop - (box.clientHeight - mark.offsetHeight) / 2;
</script></body></html>"""


def undated_html(undated: list[Source]) -> str:
    """Return the sources without a date as one line: "Undated: [2] Bloomberg; [4] …"."""
    names = "; ".join(f"{''.join(f'[{c.n}]' for c in s.citations)} {s.head.label}" for s in undated)
    return f'<div class="na-meta">Undated: {escape(names)}</div>'


def detected(article: Article) -> str:
    """Return what was found in an added article: its title, outlet and date, or that each was not found."""
    title = f"“{article.title}”" if article.title else "no title found"
    return f"{title} · {article.outlet or 'no outlet found'} · {readable_date(article.date) or 'no date found'}"


def added_html(files: list[UploadedFile], *, shown: int = 5) -> str:
    """Return the files an upload added, each with what was detected in its first `shown` articles."""
    items = []
    for file in files:
        found = "".join(f"<li>{escape(detected(article))}</li>" for article in file.articles[:shown])
        if len(file.articles) > shown:
            found += f"<li>and {len(file.articles) - shown} more</li>"
        items.append(f"<li><b>{escape(file.name)}</b> ({file.change})<ul>{found}</ul></li>")
    return f'<ul class="na-added">{"".join(items)}</ul>'


def refused_html(skipped: list[Skipped]) -> str:
    """Return the files and lines not added, each with its reason (file names, never server paths)."""
    items = "".join(f"<li><b>{escape(shown_path(s.path))}</b>: {escape(s.reason)}</li>" for s in skipped)
    return f'<ul class="na-rejected">{items}</ul>'


def overview_html(overview: CorpusOverview) -> str:
    """Return the corpus overview as a small table: articles, passages, date range."""
    dates = readable_date(overview.first_date) or "none"
    if overview.last_date != overview.first_date:
        dates = f"{readable_date(overview.first_date)} – {readable_date(overview.last_date)}"
    rows = [("Articles", str(overview.articles)), ("Passages", str(overview.passages)), ("Dates", dates)]
    cells = "".join(f"<tr><td>{escape(name)}</td><td><b>{escape(value)}</b></td></tr>" for name, value in rows)
    return f'<div class="na-overview"><table>{cells}</table></div>'
