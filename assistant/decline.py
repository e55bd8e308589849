"""Decline: whether the retrieved sentences answer the question, judged from evidence by a calibrated model.

Similarity says a sentence is related, not that it answers. The evidence also asks whether the question's rare terms,
names and numbers are found together around one sentence, whether that sentence has the kind of answer asked for, and
whether the dense and lexical rankings agree. A logistic model weighs the evidence; `eval/calibrate_decline.py` fits
it (SQuAD questions over their own paragraphs against the same questions over news articles) and writes
`decline_model.json` beside this module.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.retrieval import RRF_K, Hit, Retriever
from embeddings.terms import terms

if TYPE_CHECKING:
    from assistant.answer import Candidate  # answer imports this module

MODEL_FILE = Path(__file__).with_name("decline_model.json")
FEATURES = (
    "similarity",
    "similarity_margin",
    "window_coverage",
    "similarity_and_coverage",
    "names_found",
    "numbers_found",
    "ranking_agreement",
    "passage_similarity",
    "answer_shape",
)
TOP = 5
"""Candidate sentences (best scored first) whose evidence is weighed."""
MARGIN_RANK = 10
"""The best sentence's similarity is compared with that of the sentence at this rank."""

_NAME_OR_NUMBER = re.compile(r"\b[A-Z][\w’'.-]*|\d[\d,.]*")
_NUMBER = re.compile(r"\d[\d,.]*\d|\d")


def term_share(weights: dict[str, float], found: set[str], keys=None, *, empty: float = 1.0) -> float:
    """Return the share of the weight of `keys` (all weighted terms by default) found in `found`; `empty` if none."""
    keys = list(weights) if keys is None else list(keys)
    total = sum(weights[t] for t in keys)
    return sum(weights[t] for t in keys if t in found) / total if total else empty


def _window_terms(retriever: Retriever, candidate: Candidate) -> frozenset[str]:
    """Return the terms of a sentence with its neighbours in the same article (they often name what it refers to)."""
    window = retriever.article_sentences(candidate.article_row).around(candidate.row, before=1, after=1)
    return retriever.sentence_terms(retriever.store.article(candidate.article_row).text[window[0][0] : window[-1][1]])


def evidence(
    retriever: Retriever,
    hits: list[Hit],
    candidates: list[Candidate],
    query: str,
    weights: dict[str, float],
    *,
    asks_kind: bool,
) -> dict[str, float]:
    """Return the evidence features (FEATURES) that the best candidate sentences answer `query`.

    `candidates` are sorted best first and non-empty; `weights` are the query terms' IDF weights; `asks_kind` says
    whether the question asks for a kind of answer (a number, a name) that the best sentence must hold.
    """
    store = retriever.store
    top = candidates[:TOP]
    similarities = sorted((c.similarity for c in candidates), reverse=True)
    names = set(terms(" ".join(_NAME_OR_NUMBER.findall(query)))) & set(weights)
    numbers = _NUMBER.findall(query)
    windows, names_found, numbers_found = [], [], []
    for candidate in top:
        article = store.article(candidate.article_row)
        title = retriever.sentence_terms(article.title or "")
        windows.append(term_share(weights, _window_terms(retriever, candidate) | title))
        # Only a question with names or numbers pays for reading the whole article.
        article_terms = retriever.article_terms(candidate.article_row) if names else frozenset()
        found = {name for name in names if name in article_terms or name in title}
        names_found.append(term_share(weights, found, names) if names else 1.0)
        numbers_found.append(all(n in article.text for n in numbers))
    best = max(range(len(top)), key=lambda i: top[i].similarity + windows[i])
    fused_best = sum(retriever.weights) / (RRF_K + 1)
    return {
        "similarity": similarities[0],
        "similarity_margin": similarities[0] - similarities[min(MARGIN_RANK - 1, len(similarities) - 1)],
        "window_coverage": max(windows),
        "similarity_and_coverage": top[best].similarity + windows[best],
        "names_found": max(names_found),
        "numbers_found": float(any(numbers_found)),
        "ranking_agreement": hits[0].score / fused_best,
        "passage_similarity": max(hit.dense_score for hit in hits),
        "answer_shape": float(top[best].has_shape or not asks_kind),
    }


@dataclass(frozen=True)
class DeclineModel:
    """A logistic model over the evidence features, and the least probability of an answer that is still given."""

    weights: dict[str, float]
    bias: float
    threshold: float

    def probability(self, features: dict[str, float]) -> float:
        """Return the modelled probability that the evidence answers the question."""
        z = self.bias + sum(self.weights[name] * features[name] for name in FEATURES)
        return 1.0 / (1.0 + math.exp(-z))

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> DeclineModel:
        """Return the model saved in `path` (JSON written by eval/calibrate_decline.py)."""
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls({name: float(data["weights"][name]) for name in FEATURES}, float(data["bias"]), data["threshold"])

    def save(self, path: Path, *, calibration: dict) -> None:
        """Write the model as JSON, with a record of how it was calibrated."""
        data = {"weights": self.weights, "bias": self.bias, "threshold": self.threshold, "calibration": calibration}
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
