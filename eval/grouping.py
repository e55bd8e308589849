"""Grouping: precision and recall of `same_statement` on labelled sentence pairs (eval/grouping-pairs.jsonl).

python eval/grouping.py            # figures for the dev, test and heldout splits with the default settings
python eval/grouping.py --tune     # also search the settings on dev, and show test and heldout with the best ones

The heldout split (201 pairs from article pairs and seed sentences that dev and test do not use) was labelled and
committed before any change was tuned; nothing is chosen looking at it. "reworded" is the recall on the same-statement
pairs that share less than half their terms (Jaccard), the paraphrases and translations.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from assistant.statements import Grouping, claim, same_statement
from embeddings.encoder import Encoder
from embeddings.terms import terms

PAIRS = Path(__file__).with_name("grouping-pairs.jsonl")
MIN_PRECISION = 0.95
"""Precision the settings search keeps on dev, above the 0.9 target: unseen pairs are grouped less precisely."""


def scores(pairs: list[dict], claims: dict, grouping: Grouping) -> dict:
    """Return precision, recall and counts of the grouping decision over labelled pairs."""
    said = [same_statement(claims[p["a"]], claims[p["b"]], grouping) for p in pairs]
    true_positive = sum(s and p["same"] for s, p in zip(said, pairs))
    predicted, actual = sum(said), sum(p["same"] for p in pairs)
    reworded = [s for s, p in zip(said, pairs) if p["same"] and _reworded(p)]
    return {
        "pairs": len(pairs),
        "same": actual,
        "precision": true_positive / predicted if predicted else 1.0,
        "recall": true_positive / actual if actual else 1.0,
        "reworded": len(reworded),
        "reworded_recall": sum(reworded) / len(reworded) if reworded else 1.0,
    }


def _reworded(pair: dict) -> bool:
    """Return True if the two sentences share less than half their terms (a paraphrase or a translation)."""
    a, b = set(terms(pair["a"])), set(terms(pair["b"]))
    return len(a & b) < 0.5 * len(a | b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", action="store_true", help="search the settings on the dev split")
    parser.add_argument("--errors", action="store_true", help="list the pairs of dev and test decided wrongly")
    args = parser.parse_args()
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = sorted({p["a"] for p in pairs} | {p["b"] for p in pairs})
    vectors = Encoder().encode(texts)
    claims = {text: claim(text, vector) for text, vector in zip(texts, vectors)}
    split = {name: [p for p in pairs if p["split"] == name] for name in ("dev", "test", "heldout")}
    settings = [Grouping()]
    if args.tune:
        grid = itertools.product(
            (0.82, 0.86),
            # Below 0.65 the close tier groups claims that share a two-word topic ("the crack in the dam" on two
            # days: tests/test_timeline.py; "the collective West" in two claims of the seeds), which dev misses.
            (0.65, 0.7),
            (0.34, 0.4, 0.5, 0.6),
            (0.3, 0.4),
            (0.67, 0.75, 1.0),
            (2, 3),
            (0.5,),
            (0.5, 0.55, 0.6),
        )
        settings = [Grouping(*values) for values in grid]
        best = max(settings, key=lambda g: _objective(scores(split["dev"], claims, g)))
        print(f"best on dev: {best}")
        settings = [best]
    for name, chosen in split.items():
        result = scores(chosen, claims, settings[0])
        print(
            f"{name}: {result['pairs']} pairs ({result['same']} same), "
            f"precision {result['precision']:.3f}, recall {result['recall']:.3f}, "
            f"reworded recall {result['reworded_recall']:.3f} ({result['reworded']} pairs)"
        )
        if args.errors and name != "heldout":  # heldout errors are never read: nothing is tuned on them
            for p in chosen:
                if same_statement(claims[p["a"]], claims[p["b"]], settings[0]) != p["same"]:
                    print(f"  {'missed' if p['same'] else 'wrongly grouped'}: {p['a'][:90]!r} | {p['b'][:90]!r}")


def _objective(result: dict) -> tuple:
    """Return what the search maximizes: precision of at least MIN_PRECISION first, then recall, then precision."""
    return result["precision"] >= MIN_PRECISION, result["recall"], result["precision"]


if __name__ == "__main__":
    main()
