"""HTML for the chat page: article text always escaped, cited spans highlighted with <mark>.

Article text is untrusted: every piece of it goes through `html.escape`, and nothing here is Markdown,
so neither tags nor links nor Markdown syntax inside an article can become markup.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from assistant.answer import Answer, Citation
from assistant.export import answer_segments, source_line
from assistant.overview import CorpusOverview
from embeddings.articles import Article

STYLE = """<style>
.na-answer { font-size: 1.02rem; line-height: 1.6; }
.na-cite { font-size: 0.72em; font-weight: 600; color: #1a5fb4; vertical-align: super; margin-left: 1px; }
.na-source { border-left: 3px solid #1a5fb4; padding: 0.1rem 0 0.1rem 0.7rem; margin: 0.2rem 0; }
.na-source-head { font-size: 0.9rem; margin-bottom: 0.25rem; }
.na-source-head b { color: #1a5fb4; }
.na-meta { color: #6b7280; }
.na-passage { font-size: 0.88rem; line-height: 1.5; color: #4b5563; white-space: pre-wrap; }
.na-passage mark, .na-answer mark { background: #fff3a3; color: #111827; padding: 0 2px; border-radius: 2px; }
.na-declined { color: #92400e; }
.na-overview td { padding: 0 0.6rem 0 0; border: none; font-size: 0.92rem; white-space: nowrap; }
.na-overview table { border: none; }
</style>"""


def highlighted(text: str, start: int, end: int, *, mark_id: str | None = None) -> str:
    """Return `text` escaped, with text[start:end] in a <mark> (with `mark_id` as its id, if given)."""
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    attribute = f' id="{escape(mark_id)}"' if mark_id else ""
    return f"{escape(text[:start])}<mark{attribute}>{escape(text[start:end])}</mark>{escape(text[end:])}"


def answer_html(answer: Answer) -> str:
    """Return an answer's statements, each followed by its citation numbers as superscripts."""
    if answer.abstained:
        return f'<div class="na-answer na-declined">{escape(answer.answer)}</div>'
    parts = []
    for text, numbers in answer_segments(answer):
        markers = "".join(f'<span class="na-cite">[{n}]</span>' for n in numbers)
        parts.append(f"{escape(text)}{markers}")
    return f'<div class="na-answer">{" ".join(parts)}</div>'


def source_html(citation: Citation, article: Article) -> str:
    """Return a cited source: its number, outlet, date and title, then its passage with the excerpt marked."""
    passage = article.text[citation.passage_start : citation.passage_end]
    start, end = citation.start - citation.passage_start, citation.end - citation.passage_start
    before = "… " if citation.passage_start > 0 else ""
    after = " …" if citation.passage_end < len(article.text) else ""
    title = f"“{citation.title}”" if citation.title else Path(citation.path).name
    meta = " · ".join(escape(part) for part in (citation.date, title) if part)
    outlet = escape(citation.outlet or "Unknown outlet")
    return (
        f'<div class="na-source"><div class="na-source-head"><b>[{citation.n}] {outlet}</b>'
        f'{" · " if meta else ""}<span class="na-meta">{meta}</span></div>'
        f'<div class="na-passage">{escape(before)}{highlighted(passage, start, end)}{escape(after)}</div></div>'
    )


def article_document(citation: Citation, article: Article) -> str:
    """Return a whole HTML document of the article, the cited span marked and scrolled into the middle of view."""
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ font-family: "Source Sans Pro", system-ui, sans-serif; margin: 0; color: #1f2937; }}
h3 {{ margin: 0.2rem 0; font-size: 1.05rem; }} p {{ margin: 0 0 0.5rem; color: #6b7280; font-size: 0.85rem; }}
#article {{ height: 430px; overflow-y: auto; white-space: pre-wrap; line-height: 1.6; font-size: 0.95rem;
  border: 1px solid #e5e7eb; border-radius: 6px; padding: 0.6rem 0.8rem; }}
mark {{ background: #fff3a3; color: #111827; padding: 0 2px; outline: 2px solid #f5c400; border-radius: 2px; }}
</style></head><body>
<h3>{escape(source_line(citation))}</h3>
<p>{escape(citation.path)} · characters {citation.start}–{citation.end}</p>
<div id="article">{highlighted(article.text, citation.start, citation.end, mark_id="cited")}</div>
<script>
const box = document.getElementById("article"), mark = document.getElementById("cited");
box.scrollTop = mark.offsetTop - box.offsetTop - (box.clientHeight - mark.offsetHeight) / 2;
</script></body></html>"""


def overview_html(overview: CorpusOverview) -> str:
    """Return the corpus overview as a small table: articles, passages, date range and articles per outlet."""
    dates = overview.first_date or "none"
    if overview.last_date != overview.first_date:
        dates = f"{overview.first_date} – {overview.last_date}"
    rows = [("Articles", str(overview.articles)), ("Passages", str(overview.passages)), ("Dates", dates)]
    rows += [(outlet, f"{count} article{'s' if count != 1 else ''}") for outlet, count in overview.outlets.items()]
    cells = "".join(f"<tr><td>{escape(name)}</td><td><b>{escape(value)}</b></td></tr>" for name, value in rows)
    return f'<div class="na-overview"><table>{cells}</table></div>'
