"""Wording: where versions of one statement differ, word by word."""

from __future__ import annotations

import difflib
import re
from collections import Counter

_WORD = re.compile(r"\w+(?:['’]\w+)*")


def _words(text: str) -> list[tuple[str, int, int]]:
    """Return each word of `text` lower-cased, with its span."""
    return [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(text)]


def differing_spans(texts: list[str]) -> list[list[tuple[int, int]]]:
    """Return, for each text, the (start, end) spans of its words that differ: for each other text, the words the
    first text does not have in that order.

    The first text is compared with each other one; its own spans mark the words that more than half of the other
    versions lack, so that one loose paraphrase among close versions does not mark the whole first version.
    """
    words = [_words(text) for text in texts]
    base = [w for w, _, _ in words[0]] if words else []
    marked: list[set[int]] = [set() for _ in texts]
    lacking = Counter()  # word of the first text -> how many other versions lack it
    for i, other in enumerate(words[1:], start=1):
        matcher = difflib.SequenceMatcher(a=base, b=[w for w, _, _ in other], autojunk=False)
        for tag, a0, a1, b0, b1 in matcher.get_opcodes():
            if tag != "equal":
                lacking.update(range(a0, a1))
                marked[i].update(range(b0, b1))
    marked[0] = {j for j, count in lacking.items() if 2 * count > len(texts) - 1}
    return [[(words[i][j][1], words[i][j][2]) for j in sorted(marked[i])] for i in range(len(texts))]
