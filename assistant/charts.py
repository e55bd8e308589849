"""Charts for the page, as Altair specs: an answer's sources on a timeline, and the corpus by outlet and by date."""

from __future__ import annotations

import altair as alt
import pandas  # noqa: F401 - Altair reads pandas from sys.modules: see the note below

from assistant.labels import UNKNOWN_OUTLET, readable_date
from assistant.overview import CorpusOverview
from assistant.render import Source

# Twenty sessions drawing their first charts at once, while another thread was still importing pandas, met a
# half-imported module in Altair ("pandas has no attribute Timestamp"). The page imports this module before it
# draws anything, so pandas is whole by then.

SELECTION = "source"
"""The name of the timeline's point selection: a selected point's `card` is the index of its source."""


def timeline(cited: list[Source]) -> alt.Chart | None:
    """Return the dated sources as points by date and label (a click selects one), None if none is dated."""
    rows = [
        {
            "card": index,
            "source": source.head.label,
            "date": source.head.date,
            "shown": readable_date(source.head.date),
            "title": source.head.title or "",
            "cited": " ".join(f"[{c.n}]" for c in source.citations),
        }
        for index, source in enumerate(cited)
        if source.head.date
    ]
    if not rows:
        return None
    pick = alt.selection_point(name=SELECTION, fields=["card"], on="click")
    return (
        alt.Chart(alt.Data(values=rows))
        .mark_circle(size=160)
        .encode(
            x=alt.X("date:T", title=None, axis=alt.Axis(format="%-d %b %Y", labelAngle=0, tickCount=4)),
            y=alt.Y("source:N", title=None, axis=alt.Axis(labelLimit=160)),
            color=alt.Color("source:N", legend=None),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.35)),
            tooltip=[
                alt.Tooltip("source:N", title="Source"),
                alt.Tooltip("shown:N", title="Date"),
                alt.Tooltip("title:N", title="Title"),
                alt.Tooltip("cited:N", title="Cited"),
            ],
        )
        .add_params(pick)
        .properties(height=max(90, 34 * len({row["source"] for row in rows})))
    )


def _outlet_bars(rows: list[dict]) -> alt.Chart:
    """Return horizontal bars: articles per outlet."""
    return (
        alt.Chart(alt.Data(values=rows), title=alt.Title("Articles by outlet", fontSize=12, anchor="start"))
        .mark_bar(color="#1a5fb4")
        .encode(
            y=alt.Y("outlet:N", title=None, sort=None, axis=alt.Axis(labelLimit=150)),
            x=alt.X("articles:Q", title=None, axis=alt.Axis(tickMinStep=1)),
            tooltip=[alt.Tooltip("outlet:N", title="Outlet"), alt.Tooltip("articles:Q", title="Articles")],
        )
        .properties(height=min(220, 22 * len(rows) + 10))
    )


def _date_bars(rows: list[dict]) -> alt.Chart:
    """Return vertical bars: articles per month."""
    return (
        alt.Chart(alt.Data(values=rows), title=alt.Title("Articles by month", fontSize=12, anchor="start"))
        .mark_bar(color="#1a5fb4")
        .encode(
            x=alt.X("yearmonth(day):O", title=None, axis=alt.Axis(format="%b %Y", formatType="time", labelAngle=0)),
            y=alt.Y("sum(articles):Q", title=None, axis=alt.Axis(tickMinStep=1)),
            tooltip=[
                alt.Tooltip("yearmonth(day):O", title="Month", format="%B %Y", formatType="time"),
                alt.Tooltip("sum(articles):Q", title="Articles"),
            ],
        )
        .properties(height=100)
    )


def corpus_charts(overview: CorpusOverview) -> alt.VConcatChart:
    """Return the corpus's articles by outlet (the unknown ones as one group) and by date, stacked."""
    outlets = [{"outlet": name, "articles": count} for name, count in overview.outlets.items()]
    if overview.unknown_outlet:
        outlets.append({"outlet": UNKNOWN_OUTLET, "articles": overview.unknown_outlet})
    days = [{"day": day, "articles": count} for day, count in (overview.days or {}).items()]
    charts = [_outlet_bars(outlets)]
    if days:
        charts.append(_date_bars(days))
    return alt.vconcat(*charts).configure_view(stroke=None)
