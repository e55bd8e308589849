"""Metadata in an article's text: outlets from datelines and credits, dates from datelines, lines and fields."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

# Each outlet's one canonical name, and the spellings that mean it.
OUTLETS: dict[str, tuple[str, ...]] = {
    "Reuters": ("Reuters", "Reuter", "Thomson Reuters"),
    "AP": ("AP", "Associated Press", "The Associated Press", "AP News"),
    "AFP": ("AFP", "Agence France-Presse", "Agence France Presse"),
    "Bloomberg": ("Bloomberg", "Bloomberg News", "Bloomberg L.P.", "Bloomberg LP"),
    "TASS": ("TASS", "ITAR-TASS"),
    "Sputnik": ("Sputnik", "Sputnik International", "Sputnik News"),
    "RIA Novosti": ("RIA Novosti", "RIA"),
    "Interfax": ("Interfax",),
    "Xinhua": ("Xinhua", "Xinhua News Agency"),
    "Anadolu": ("Anadolu", "Anadolu Agency", "AA"),
    "CNN": ("CNN",),
    "BBC": ("BBC", "BBC News"),
    "Al Jazeera": ("Al Jazeera", "Al-Jazeera", "Aljazeera", "Al Jazeera English"),
    "UPI": ("UPI", "United Press International"),
}
_CANONICAL = {alias.casefold(): name for name, aliases in OUTLETS.items() for alias in aliases}
# Short aliases (AP, AA, RIA) must match in capitals; longer ones in any case (TASS, Tass, REUTERS).
_KNOWN = (
    "(?:"
    + "|".join(
        re.escape(alias) if len(alias) <= 3 else f"(?i:{re.escape(alias)})"
        for alias in sorted((alias for aliases in OUTLETS.values() for alias in aliases), key=len, reverse=True)
    )
    + r")(?![\w-])"
)
# A name not in the list, as accepted where the shape of a dateline or credit leaves no doubt: capitalised words.
_NAMED = r"[A-Z][\w.&'’-]*(?:\s[A-Z&][\w.&'’-]*){0,2}"

_MONTH = (
    r"(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b"
)
_YEAR = r"(?:19|20)\d{2}(?!\d)"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?(?!\d)"
_FULL_DATE = re.compile(
    rf"(?<!\d)(?P<iy>{_YEAR})[-/](?P<im>\d{{1,2}})[-/](?P<id>\d{{1,2}})(?!\d)"  # 2024-07-15
    rf"|(?P<am>{_MONTH})\.?\s+(?P<ad>{_DAY}),?\s+(?P<ay>{_YEAR})"  # July 15, 2024
    rf"|(?<!\d)(?P<bd>{_DAY})[\s-]+(?P<bm>{_MONTH})\.?,?[\s-]+(?P<by>{_YEAR})"  # 15 Jul 2024, 31-MAR-1987
)
_MONTH_DAY = (
    rf"(?:(?P<m1>{_MONTH})\.?\s+(?P<d1>{_DAY})|(?P<d2>{_DAY})\s+(?P<m2>{_MONTH})\.?)(?:,?\s+(?P<year>{_YEAR}))?"
)

_PLACE = r"[A-ZÀ-Ý][\w'’.-]*(?:\s+[A-ZÀ-Ý][\w'’.-]*){0,3}"
_CAPITALS = r"[A-ZÀ-Ý][A-ZÀ-Ý'’.-]*(?:\s+[A-ZÀ-Ý][A-ZÀ-Ý'’.-]*){0,3}"
_REGION = r"(?:,\s+[A-Z][\w.]*(?:\s+[A-Z][\w.]*)?)?"  # PORTLAND, Ore.,   KYIV, Ukraine
_CITY, _CAPITAL_CITY = _PLACE + _REGION, _CAPITALS + _REGION
_DASH = r"\s*(?:--?|–|—)\s*"


def _credited_datelines(outlet: str, city: str) -> list[str]:
    """Return the dateline patterns that credit an outlet matched by `outlet` after a place matched by `city`."""
    return [
        # MOSCOW, July 14. /TASS/.
        rf"{city}[,.]\s+{_MONTH_DAY}\.?\s*/(?P<outlet>{outlet})/\.?\s*",
        # LONDON, July 15 (Reuters) -   WASHINGTON (AP) —   MOSCOW. July 15 (Interfax) -   (CNN) —
        rf"(?:{city}(?:[,.]\s+{_MONTH_DAY})?\s*)?\((?P<outlet>{outlet})\){_DASH}",
    ]


# Datelines looked for at the start of each of the first paragraphs: known outlets, or a place with a date.
_DATELINES = tuple(
    re.compile(pattern)
    for pattern in (
        *_credited_datelines(_KNOWN, _CITY),
        # Washington CNN —
        rf"{_CITY}(?:[,.]\s+{_MONTH_DAY})?\s+(?P<outlet>{_KNOWN}){_DASH}",
        # SAN FRANCISCO, March 3 -   MOSCOW, July 15 - RIA Novosti.
        rf"{_CITY}[,.]\s+{_MONTH_DAY}{_DASH}(?:(?P<outlet>{_KNOWN})\.\s*)?",
        # Moscow – (a place, then a spaced en or em dash before a capital)
        r"[A-ZÀ-Ý][\w'’.-]*(?:\s+[A-ZÀ-Ý][\w'’.-]*){0,2}\s+[–—]\s+(?=[A-Z\"“])",
    )
)
# Datelines of outlets not in the list, only at the start of the first paragraph: KYIV (Kyiv Independent) -
_NAMED_DATELINES = tuple(re.compile(pattern) for pattern in _credited_datelines(_NAMED, _CAPITAL_CITY))
# ©2024 Bloomberg L.P.   © Sputnik / Alexei Danichev   Copyright 2024 Reuters.
_COPYRIGHT_MARK = r"(?:©|\([cC]\)|[Cc]opyright)\s*"
_COPYRIGHT = re.compile(
    rf"\s*{_COPYRIGHT_MARK}(?:{_YEAR}\s*)?(?P<outlet>[A-Z][\w.&'’ -]{{0,40}}?)"
    r"(?:\s+(?:L\.P\.|Inc\.?|Ltd\.?|LLC|plc))?\s*(?:[/|.,]|$)"
)
# Source: Al Jazeera   *Reuters*   BBC News
_CREDIT = re.compile(
    rf"\s*(?:(?i:source)\s*:\s*)?[*_]*(?P<outlet>{_KNOWN})(?:\s+(?i:and\s+news\s+agencies))?[*_.]*\s*$"
)
# Published July 15, 2024   Published: 15 Jul 2024 10:02 GMT   Updated 2024-07-15   Published On 15 Jul 2024
STAMP_WORDS = 10
"""Most words after "Published"/"Updated" in a date-stamp line."""
_STAMP = re.compile(r"\s*(?P<kind>published|posted|updated|last updated)(?:\s+on)?\s*:?\s", re.IGNORECASE)
# The "date 2024-07-14 " that opens the seed files.
DATE_PREFIX = re.compile(r"\s*date\s+(\d{4}-\d{2}-\d{2})\b[ \t]*", re.IGNORECASE)


@dataclass(frozen=True)
class Dateline:
    """The dateline that opens a paragraph: where it ends, the outlet it names, and its month and day if any."""

    end: int
    outlet: str | None
    month_day: tuple[int, int] | None
    year: int | None


def canonical_outlet(name: str) -> str:
    """Return the canonical name of a known outlet ("Associated Press" -> "AP"), else the name as written."""
    name = " ".join(name.split()).strip(" .,")
    return _CANONICAL.get(name.casefold(), name)


def _month(name: str) -> int:
    return ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec").index(
        name[:3].lower()
    ) + 1


def _iso(year: int, month: int, day: int) -> str | None:
    try:
        return datetime.date(year, month, day).isoformat()
    except ValueError:
        return None


def _digits(day: str) -> int:
    return int(re.match(r"\d+", day).group())


def _full_date(match: re.Match) -> str | None:
    if match["iy"]:
        return _iso(int(match["iy"]), int(match["im"]), int(match["id"]))
    if match["ay"]:
        return _iso(int(match["ay"]), _month(match["am"]), _digits(match["ad"]))
    return _iso(int(match["by"]), _month(match["bm"]), _digits(match["bd"]))


def find_date(value: str) -> str | None:
    """Return the first full date in a string as YYYY-MM-DD ("Mon, 15 Jul 2024", "2024-07-15T10:02Z"), or None."""
    for match in _FULL_DATE.finditer(value):
        if date := _full_date(match):
            return date
    return None


def infer_year(text: str) -> int | None:
    """Return the year an article was written in, from its text: a copyright year, else the latest full date's
    year, else the only year it mentions; None when the text does not tell."""
    if match := re.search(rf"{_COPYRIGHT_MARK}({_YEAR})", text):
        return int(match.group(1))
    dates = [date for match in _FULL_DATE.finditer(text) if (date := _full_date(match))]
    if dates:
        return int(max(dates)[:4])
    years = set(re.findall(rf"(?<!\d){_YEAR}", text))
    return int(years.pop()) if len(years) == 1 else None


def read_dateline(text: str, start: int, end: int, *, first: bool) -> Dateline | None:
    """Return the dateline that opens a line ("LONDON, July 15 (Reuters) -"), or None.

    Args:
        first: the line opens the article's first paragraph, where an outlet not in OUTLETS is accepted too.
    """
    start += len(text[start:end]) - len(text[start:end].lstrip())
    for pattern in _DATELINES + (_NAMED_DATELINES if first else ()):
        match = pattern.match(text, start, end)
        if match:
            fields = match.groupdict()
            outlet = fields.get("outlet")
            month, day = fields.get("m1") or fields.get("m2"), fields.get("d1") or fields.get("d2")
            return Dateline(
                match.end(),
                canonical_outlet(outlet) if outlet else None,
                (_month(month), _digits(day)) if month else None,
                int(fields["year"]) if fields.get("year") else None,
            )
    return None


def dateline_date(dateline: Dateline, text: str) -> str | None:
    """Return the date of a dateline, its year taken from the rest of the text when it has none; None if unknown."""
    if dateline.month_day is None:
        return None
    year = dateline.year or infer_year(text)
    return _iso(year, *dateline.month_day) if year else None


def credited_outlet(text: str, start: int, end: int) -> str | None:
    """Return the outlet a credit line names ("©2024 Bloomberg L.P.", "Source: Al Jazeera", "*Reuters*"), or None."""
    match = _COPYRIGHT.match(text, start, end) or _CREDIT.match(text, start, end)
    return canonical_outlet(match["outlet"]) if match else None


def stamp_date(text: str, start: int, end: int) -> tuple[str, str] | None:
    """Return ("published" or "updated", date) for a line like "Published: 15 Jul 2024 10:02 GMT", or None.

    A stamp is a short line: a sentence that starts "Updated: …" and mentions a date later is content.
    """
    match = _STAMP.match(text, start, end)
    if not match or len(text[match.end() : end].split()) > STAMP_WORDS:
        return None
    date = find_date(text[match.end() : end])
    kind = "updated" if "updated" in match["kind"].lower() else "published"
    return (kind, date) if date else None
