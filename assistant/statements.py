"""Statements: whole quotations, the same claim across outlets, who said it, and which sources copy one another."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

import numpy as np

from embeddings.terms import terms

# --- whole quotations --------------------------------------------------------------------------

_MARK = re.compile(r"[\"“”]")
_OPENS_AFTER = " \t([{—–-:/="
MAX_QUOTATION = 700
"""Longest excerpt (characters) a sentence is widened to so that it holds its whole quotation."""


@lru_cache(maxsize=512)
def quotation_pairs(text: str) -> tuple[dict[int, int], frozenset[int]]:
    """Return the article's quotation marks paired ({mark: its partner}) and the marks that have no partner.

    A quotation never runs past its paragraph; a straight mark opens after a space, a bracket, a dash, a colon or "="
    (or at a paragraph's start) and closes otherwise, so nested straight quotations pair up.
    """
    partner: dict[int, int] = {}
    unpaired: set[int] = set()
    for paragraph in re.finditer(r"[^\n]+", text):
        stack: list[tuple[int, str]] = []
        for match in _MARK.finditer(text, paragraph.start(), paragraph.end()):
            position, mark = match.start(), match.group()
            before = text[position - 1] if position > paragraph.start() else " "
            opens = mark == "“" or (mark == '"' and before in _OPENS_AFTER)
            family = "“" if mark in "“”" else '"'
            if opens:
                stack.append((position, family))
            elif stack and stack[-1][1] == family:
                opener, _ = stack.pop()
                partner[opener], partner[position] = position, opener
            else:
                unpaired.add(position)
        unpaired.update(position for position, _ in stack)
    return partner, frozenset(unpaired)


def dangling_marks(text: str, start: int, end: int) -> list[int]:
    """Return the quotation marks in text[start:end] whose other half is outside it (or missing)."""
    partner, unpaired = quotation_pairs(text)
    marks = [m.start() for m in _MARK.finditer(text, start, end)]
    return [m for m in marks if m in unpaired or not start <= partner[m] < end]


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """Return the span without surrounding spaces and the commas, colons or dashes a cut leaves at its ends."""
    while start < end and (text[start].isspace() or text[start] in ",;:—–-"):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in ",;:—–-"):
        end -= 1
    return start, end


def _cut(text: str, start: int, end: int) -> tuple[int, int]:
    """Return the span cut at its dangling marks: at each one, the longer side is kept."""
    for mark in dangling_marks(text, start, end):
        if not start <= mark < end:
            continue
        start, end = (start, mark) if mark - start > end - mark - 1 else (mark + 1, end)
        start, end = _trimmed(text, start, end)
    return start, end


def whole_quotation(text: str, start: int, end: int, sentences: list[tuple[int, int]]) -> tuple[int, int]:
    """Return the excerpt for the sentence text[start:end]: widened to whole sentences until every quotation it
    opens or closes is whole, or, when that would pass MAX_QUOTATION characters, cut so that no mark dangles.

    `sentences` are the article's sentence spans around it, in order.
    """
    first, last = start, end
    while marks := dangling_marks(text, first, last):
        partner, unpaired = quotation_pairs(text)
        if any(m in unpaired for m in marks):
            break
        want_first = min([first, *(partner[m] for m in marks)])
        want_last = max([last, *(partner[m] + 1 for m in marks)])
        covering = [(a, b) for a, b in sentences if a < want_last and b > want_first]
        if not covering:
            break
        first, last = min(first, covering[0][0]), max(last, covering[-1][1])
        if last - first > MAX_QUOTATION:
            break
    if not dangling_marks(text, first, last) and last - first <= MAX_QUOTATION:
        return first, last
    return _cut(text, start, end)


# --- the same statement across outlets ---------------------------------------------------------

# Wordings that translations and rewrites of one statement swap for one another, each mapped to one term.
_SAME_MEANING = {
    "talk": "negoti", "ground": "prerequisit", "basi": "prerequisit", "condit": "prerequisit",
    "precondit": "prerequisit", "inflex": "flexibl", "threaten": "alarm", "adversari": "enemi", "consid": "concern",
}  # fmt: skip
_WHEN_WORDS = frozenset(terms("yet so far still already currently now"))
"""Words that say when, not what: "no prerequisites yet" and "no conditions yet" are other claims."""
_NEGATION = re.compile(
    r"\b(?:no|not|never|nothing|none|nor|cannot|without|reluctant|unwilling|unable|refus\w*|inflexible)\b|n[’']t\b",
    re.IGNORECASE,
)
# Words that say a figure went up, or down: "raised the price" and "is decreasing the price" are other statements.
_DIRECTION = {
    **dict.fromkeys(terms("rise rises rose risen rising raise raised raising increase increased increasing hike "
                          "higher gain gained jump jumped climb climbed grow grew growing up"), "up"),
    **dict.fromkeys(terms("fall falls fell fallen falling cut cuts cutting decrease decreased decreasing reduce "
                          "reduced reducing reduction lower drop dropped decline declined slump slumped shrink "
                          "shrank down"), "down"),
}  # fmt: skip
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CAPITALIZED = re.compile(r"\b[A-Z][\w’'-]*")
_CLAUSE = re.compile(r"[,;:“”\"()]|\s[–—-]\s|\b(?:but|while|as|which|who|adding|saying|signaling)\b")


@dataclass(slots=True)
class Claim:
    """What a sentence says, for comparing it with others: its vector, its clauses' terms, its numbers."""

    text: str
    vector: np.ndarray
    clauses: tuple[frozenset[str], ...]
    numbers: frozenset[str]
    names: frozenset[str]
    """Terms of its capitalized words: places, bodies, people. Sharing only those is sharing a topic, not a claim."""
    content: frozenset[str]
    """The terms of all its clauses."""
    directions: frozenset[str]
    """"up" and/or "down": which ways it says a figure moved."""


@lru_cache(maxsize=65536)
def _clauses(text: str) -> tuple:
    """Return the terms of each clause of a sentence (with "no" kept as a term, synonyms as one), its numbers, the
    terms of its capitalized words and of all its clauses, and the ways it says a figure moved."""
    clauses = []
    # Who said it is the speaker's business, not the claim's: attributions and person names are left out.
    text_without = _ATTRIBUTION.sub(" ", text)
    text_without = re.sub(_NAME, lambda m: " " if _person(m.group()) else m.group(), text_without)
    for clause in _CLAUSE.split(text_without):
        found = {_SAME_MEANING.get(t, t) for t in terms(clause)} - _WHEN_WORDS
        if len(found) >= 2:
            clauses.append(frozenset(found | ({"no"} if _NEGATION.search(clause) else set())))
    names = frozenset(terms(" ".join(_CAPITALIZED.findall(text))))
    content = frozenset().union(*clauses) - {"no"}
    directions = frozenset(_DIRECTION[t] for t in terms(text) if t in _DIRECTION)
    return tuple(clauses), frozenset(_NUMBER.findall(text)), names, content, directions


def claim(text: str, vector: np.ndarray) -> Claim:
    """Return the claim of a sentence, given its unit vector."""
    return Claim(text, vector, *_clauses(text))


@dataclass(frozen=True)
class Grouping:
    """When two sentences count as one statement: very close vectors; or close vectors (or fairly close ones and the
    same figures) and a clause sharing half its content words; or nearly close vectors and a clause sharing half its
    content words besides the topic's; or related vectors and a clause sharing (by default) all of them. Chosen on
    the dev, test and heldout splits of eval/grouping-pairs.jsonl (`python eval/grouping.py --tune`)."""

    same_vector: float = 0.82
    close_vector: float = 0.65
    close_clause: float = 0.5
    related_vector: float = 0.3
    related_clause: float = 1.0
    min_shared_terms: int = 2
    same_numbers: float = 0.5
    figures_vector: float = 0.5
    """Vectors this close count as close when the two sentences give the same figures ("rose 3.6 pct")."""
    near_vector: float = 0.6
    """Vectors this close count as close when the clause they share holds words besides the topic's."""
    topic_share: float = 1 / 3
    """Share of the sentences compared that carry a word for it to be the topic's ("the Lornsby dam", "the river
    authority" in every report on the dam): sharing it is sharing a subject, not a claim."""


_TOPIC_POOL = 4
"""Fewest sentences among which a topic is told apart from a claim."""


def topic_terms(sentences: list[frozenset[str]], grouping: Grouping = Grouping()) -> frozenset[str]:
    """Return the terms (synonyms as one) that `grouping.topic_share` or more of the sentences compared carry, given
    each one's terms; none among fewer than four sentences."""
    if len(sentences) < _TOPIC_POOL:
        return frozenset()
    counts = Counter(chain.from_iterable(sentences))
    for term in counts.keys() & _SAME_MEANING.keys():  # synonyms as one
        counts[_SAME_MEANING[term]] += counts.pop(term)
    least = grouping.topic_share * len(sentences)
    return frozenset(t for t, n in counts.items() if n >= least)


def clause_overlap(
    a: Claim, b: Claim, min_shared: int, ignore: frozenset[str] = frozenset(), unnamed: int = 1
) -> tuple[float, int]:
    """Return the largest share of a clause's terms that a clause of the other sentence has, and which clause of `a`
    that is (-1 when none shares `min_shared` terms, `unnamed` of them not names); terms in `ignore` are left out."""
    best, clause = 0.0, -1
    names = a.names | b.names
    if not (a.content & b.content) - names - ignore:
        return best, clause
    for index, x in enumerate(a.clauses):
        x = x - ignore
        for y in b.clauses:
            y = y - ignore
            if ("no" in x) != ("no" in y):
                continue  # one clause denies what the other says
            shared = x & y - {"no"}
            if len(shared) >= min_shared and len(shared - names) >= unnamed:
                share = len(shared) / (min(len(x), len(y)) - ("no" in x))
                if share > best:
                    best, clause = share, index
    return best, clause


WHOLE = -1
"""What `shared_clause` returns when the two sentences are alike as wholes."""


def shared_clause(
    a: Claim,
    b: Claim,
    grouping: Grouping = Grouping(),
    similarity: float | None = None,
    topic: frozenset[str] = frozenset(),
) -> int | None:
    """Return which clause of `a` the sentence `b` carries too (WHOLE: the whole sentence), None if it says something
    else. `similarity` is their vectors' cosine when the caller has it already; `topic` the terms of the subject of
    the sentences compared (see `topic_terms`)."""
    similarity = float(a.vector @ b.vector) if similarity is None else similarity
    if a.numbers and b.numbers and len(a.numbers & b.numbers) < grouping.same_numbers * len(a.numbers | b.numbers):
        return None  # other figures, another statement (another day's prices, another count)
    if a.directions and b.directions and a.directions != b.directions:
        return None  # one says up where the other says down
    if similarity >= grouping.same_vector:
        return WHOLE
    if similarity < grouping.related_vector:
        return None
    overlap, clause = clause_overlap(a, b, grouping.min_shared_terms)
    close = similarity >= grouping.close_vector or (similarity >= grouping.figures_vector and _same_figures(a, b))
    if overlap >= (grouping.close_clause if close else grouping.related_clause):
        return clause
    if similarity >= grouping.near_vector:
        overlap, clause = clause_overlap(a, b, grouping.min_shared_terms, topic, unnamed=grouping.min_shared_terms)
        return clause if overlap >= grouping.close_clause else None
    return None


def _same_figures(a: Claim, b: Claim) -> bool:
    """Return True if both sentences give figures and every figure of the one with fewer is in the other."""
    fewer = min(a.numbers, b.numbers, key=len)
    return bool(fewer) and fewer <= a.numbers & b.numbers


def same_statement(a: Claim, b: Claim, grouping: Grouping = Grouping(), topic: frozenset[str] = frozenset()) -> bool:
    """Return True if the two sentences carry the same statement, worded alike or not (`topic`: see `topic_terms`)."""
    return shared_clause(a, b, grouping, topic=topic) is not None


# --- independent sources -----------------------------------------------------------------------

_SHINGLE = 5
SAME_SOURCE = 0.5
"""Share of the shorter article's word 5-grams found in the other above which the two are one source."""


@lru_cache(maxsize=512)
def _shingles(text: str) -> frozenset[int]:
    """Return the hashes of the article's word 5-grams."""
    words = re.findall(r"\w+", text.lower())
    return frozenset(hash(" ".join(words[i : i + _SHINGLE])) for i in range(max(1, len(words) - _SHINGLE + 1)))


@lru_cache(maxsize=4096)
def same_source(a: str, b: str) -> bool:
    """Return True if one article copies or lightly rewrites the other (most of the shorter one's 5-grams)."""
    x, y = _shingles(a), _shingles(b)
    return len(x & y) >= SAME_SOURCE * min(len(x), len(y))


def source_groups(texts: dict[str, str]) -> dict[str, str]:
    """Return, for each article id, the id of the first article of its group of copies (in the given order)."""
    group: dict[str, str] = {}
    for article_id, text in texts.items():
        group[article_id] = next((g for g in dict.fromkeys(group.values()) if same_source(texts[g], text)), article_id)
    return group


# --- speakers ----------------------------------------------------------------------------------

_VERB = (
    r"(?:said|says|stressed|added|noted|told|explained|emphasi[sz]ed|claimed|confirmed|warned|commented|"
    r"announced|admitted|urged|complained|argued|insisted|pointed out|went on)"
)
_NAME = r"(?:[A-Z][a-z]+(?:-[A-Z][a-z]+)?\s){0,3}[A-Z][a-z]{2,}(?:-[A-Z][a-z]+)?"
_ROLE = r"(?:the\s+)?(?:[A-Z][a-z]+\s)?(?:[Ss]pokes(?:man|woman|person)|[Pp]resident|[Mm]inister|[Ss]ecretary|official)"
_PRONOUN = r"(?:he|she|He|She)"
_ATTRIBUTION = re.compile(
    rf"(?P<before>{_NAME}|{_ROLE}|{_PRONOUN})(?:\s+also|\s+on\s+\w+)?\s+{_VERB}\b"
    rf"|\b{_VERB}\s+(?P<after>{_NAME})\b"
    rf"|according to (?P<according>{_NAME})"
)
_CUE = re.compile(rf"\b(?:{_VERB}|according to)\b")
_REACH = 60
"""Characters before a reporting verb searched for who it attributes to."""
_NOT_PERSON = frozenset(
    "The This That It Kremlin Moscow Russia Washington NATO Ukraine White House Sputnik TASS Reuters Bloomberg "
    "Western West US EU China France Germany Europe Izvestiya".split()
)
_TITLE_WORDS = frozenset(
    "Kremlin Spokesman Spokeswoman President Prime Minister Secretary Defense Foreign Chancellor General "
    "Russian American British Chinese French German Ukrainian Japanese".split()
)


def _person(name: str) -> str | None:
    """Return the person named (titles dropped), None if the words name no person."""
    words = [w for w in name.split() if w not in _TITLE_WORDS]
    if not words or words[-1] in _NOT_PERSON or any(w in _NOT_PERSON for w in words):
        return None
    return " ".join(words)


@lru_cache(maxsize=512)
def attributions(text: str) -> tuple[tuple[int, str], ...]:
    """Return (position, person) for each attribution in an article, pronouns and roles resolved to the person
    last named as a speaker before it ("he stressed" after "Dmitry Peskov said" -> Dmitry Peskov)."""
    found: list[tuple[int, str]] = []
    full_names: dict[str, str] = {}
    for match in re.finditer(_NAME, text):
        person = _person(match.group())
        if person and " " in person:
            full_names.setdefault(person.split()[-1], person)
    last = None
    for match in _attribution_matches(text):
        name = match.group("before") or match.group("after") or match.group("according")
        person = _person(name) if re.fullmatch(_NAME, name) and not re.fullmatch(_ROLE, name) else None
        if person:
            person = last = full_names.get(person.split()[-1], person)
        elif re.fullmatch(_ROLE, name) or re.fullmatch(_PRONOUN, name):
            person = last
        if person:
            found.append((match.start(), person))
    return tuple(found)


def _attribution_matches(text: str) -> list[re.Match]:
    """Return the attributions of a text in order, looked for only around its reporting verbs (fast on long texts)."""
    found: list[re.Match] = []
    for cue in _CUE.finditer(text):
        window = max(0, cue.start() - _REACH, found[-1].end() if found else 0)
        match = next((m for m in _ATTRIBUTION.finditer(text, window, cue.end() + _REACH) if m.end() >= cue.end()), None)
        if match and (not found or match.start() >= found[-1].end()):
            found.append(match)
    return found


def speaker(text: str, start: int, end: int) -> str | None:
    """Return the person the article attributes text[start:end] to, None if it names none."""
    inside = [person for position, person in attributions(text) if start <= position < end]
    return inside[-1] if inside else None


# --- caches ------------------------------------------------------------------------------------


def forget_articles() -> None:
    """Empty the caches keyed by article texts (quotation marks, 5-grams, sources, speakers): after a reload, the
    previous index's texts must not stay in memory through them."""
    for cached in (quotation_pairs, _shingles, same_source, attributions):
        cached.cache_clear()


# --- comparison questions ----------------------------------------------------------------------

_COMPARISON = re.compile(
    r"\b(?:compare|comparison|contrast|wording|worded|word(?:ed)? it|differ(?:ent|ently|ence|ences)?)\b"
    r"|\bhow did (?:the )?(?:outlets|sources|media|agencies|papers|newspapers|reports)\b"
    r"|\bhow did \w+ and \w+ (?:word|phrase|report|put|describe|cover|quote)",
    re.IGNORECASE,
)


def is_comparison(question: str) -> bool:
    """Return True for a question that asks how outlets worded or reported something, side by side."""
    return bool(_COMPARISON.search(question))
