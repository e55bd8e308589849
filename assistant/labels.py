"""How the page and the export name things: dates, file paths, counts, filters."""

from __future__ import annotations

from datetime import date
from pathlib import PurePath

from assistant.retrieval import Filters

UNKNOWN_OUTLET = "Unknown outlet"


def readable_date(day: str | None) -> str:
    """Return a YYYY-MM-DD date as "14 Jul 2024" (anything else as it is, None as "")."""
    if not day:
        return ""
    try:
        return date.fromisoformat(day).strftime("%-d %b %Y")
    except ValueError:
        return day


def shown_path(path: str) -> str:
    """Return an article's path as a reader may see it: a relative path as it is, an absolute one by its file name."""
    pure = PurePath(path)
    return pure.name if pure.is_absolute() else path


def plural(count: int, noun: str) -> str:
    """Return "1 file", "2 files"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def filters_label(filters: Filters | None) -> str:
    """Return what a search was limited to ("outlets TASS, Unknown outlet · 1 Jul 2024 to 31 Jul 2024"), "" if not."""
    if filters is None or not filters.active:
        return ""
    parts = []
    if filters.outlets is not None:
        names = sorted(outlet or UNKNOWN_OUTLET for outlet in filters.outlets)
        parts.append(f"{'outlet' if len(names) == 1 else 'outlets'} {', '.join(names)}")
    if filters.date_from or filters.date_to:
        start, end = readable_date(filters.date_from), readable_date(filters.date_to)
        if start and end:
            parts.append(start if start == end else f"{start} to {end}")
        else:
            parts.append(f"from {start}" if start else f"until {end}")
    return " · ".join(parts)
