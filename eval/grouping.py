"""Grouping: precision and recall of `same_statement` on labelled sentence pairs (eval/grouping-pairs.jsonl).

python eval/grouping.py                  # figures for the dev, test and heldout splits with the default settings
python eval/grouping.py --tune           # also search the settings on the tuning splits, and show them with the best
python eval/grouping.py --cv             # the search's precision and recall on tuning pairs it did not see
python eval/grouping.py --split heldout3 # a held-out split (scored once, with the final code)

The heldout split was labelled and committed before the round that tuned on it; heldout2 was labelled and committed
before the next round and scored once at its end, then read in the round after (it checked the candidates tried
there); heldout3 (259 pairs from article pairs no other split uses, and seed sentences) was labelled and committed
before that round changed or scored anything. "reworded" is the recall on the same-statement pairs that share less
than half their terms (Jaccard), the paraphrases and translations. The scoring itself is the library's
(`assistant.evaluate.score_grouping`, also printed by `assistant eval --grouping PAIRS`); this script adds the
settings search, its cross-validation and the list of wrong decisions.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from assistant.evaluate import SentencePair, pair_claims, pair_topics, read_pairs, score_grouping
from assistant.statements import Claim, Grouping, same_statement
from embeddings.encoder import Encoder

PAIRS = Path(__file__).with_name("grouping-pairs.jsonl")
TUNING_SPLITS = ("dev", "test", "heldout")
GRID = tuple(
    itertools.product(
        (0.82, 0.86),
        (0.65, 0.7),
        (0.4, 0.5, 0.6),
        (0.3,),
        (0.75, 1.0),
        (2, 3),
        (0.5,),
        (0.5, 0.55),
        (0.65, 0.6, 0.55),  # below the close tier, only with words besides the topic's; ties go to the first
        (0.25, 1 / 3, 0.4),
    )
)
"""The settings searched: each a value of every field of Grouping, in order (the last one is topic_share)."""
FOLDS = 5
MIN_PRECISION = 0.92
"""Precision the settings search keeps on the tuning splits, above the 0.9 target: unseen pairs are grouped less
precisely."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", action="store_true", help="search the settings on the tuning splits")
    parser.add_argument("--cv", action="store_true", help="cross-validate the settings search on the tuning splits")
    parser.add_argument("--errors", action="store_true", help="list the pairs of the tuning splits decided wrongly")
    parser.add_argument(
        "--split", action="append", metavar="NAME", help=f"score this split (default: {', '.join(TUNING_SPLITS)})"
    )
    args = parser.parse_args()
    pairs = read_pairs(PAIRS)
    claims = pair_claims(pairs, Encoder())
    split = {name: [p for p in pairs if p.split == name] for name in args.split or TUNING_SPLITS}
    settings = Grouping()
    if args.tune or args.cv:
        tuning = [p for p in pairs if p.split in TUNING_SPLITS]
        decided = grid_decisions(tuning, pairs, claims)
        same = np.array([p.same for p in tuning])
        if args.tune:
            settings = best_settings(decided, same, np.ones(len(tuning), dtype=bool))
            print(f"best on {', '.join(TUNING_SPLITS)}: {settings}")
        if args.cv:
            folds = np.random.default_rng(0).permutation(len(tuning)) % FOLDS  # a seeded shuffle
            precision, recall = cross_validated(decided, same, folds)
            print(f"settings search, {FOLDS}-fold cross-validated on {', '.join(TUNING_SPLITS)}: "
                  f"precision {precision:.3f}, recall {recall:.3f}")  # fmt: skip
    topics = pair_topics(pairs, settings)
    for name, chosen in split.items():
        result = score_grouping(chosen, claims, settings, topics)
        print(
            f"{name}: {result.pairs} pairs ({result.same} same), precision {result.precision:.3f}, "
            f"recall {result.recall:.3f}, reworded recall {result.reworded_recall:.3f} ({result.reworded} pairs)"
        )
        if args.errors and name in TUNING_SPLITS:  # held-out splits' errors are never listed
            for p in chosen:
                if same_statement(claims[p.a], claims[p.b], settings, topics[p.articles]) != p.same:
                    print(f"  {'missed' if p.same else 'wrongly grouped'}: {p.a[:90]!r} | {p.b[:90]!r}")


def grid_decisions(
    tuning: list[SentencePair], pairs: list[SentencePair], claims: dict[str, Claim]
) -> dict[Grouping, np.ndarray]:
    """Return, for each settings of the search, whether they group each tuning pair (topics told from all `pairs`)."""
    topics = {share: pair_topics(pairs, Grouping(topic_share=share)) for share in {values[-1] for values in GRID}}
    return {
        settings: np.array([same_statement(claims[p.a], claims[p.b], settings, topic[p.articles]) for p in tuning])
        for settings, topic in ((Grouping(*values), topics[values[-1]]) for values in GRID)
    }


def best_settings(decided: dict[Grouping, np.ndarray], same: np.ndarray, seen: np.ndarray) -> Grouping:
    """Return the settings the search chooses on the `seen` pairs: precision of at least MIN_PRECISION first, then
    recall, then precision (ties go to the first)."""

    def objective(settings: Grouping) -> tuple:
        precision, recall = precision_recall(decided[settings][seen], same[seen])
        return precision >= MIN_PRECISION, recall, precision

    return max(decided, key=objective)


def cross_validated(decided: dict[Grouping, np.ndarray], same: np.ndarray, folds: np.ndarray) -> tuple[float, float]:
    """Return the precision and recall of the settings search on pairs it did not see: each fold's pairs (`folds`:
    each pair's fold) grouped with the settings it chooses on the other folds."""
    said = np.zeros(len(same), dtype=bool)
    for fold in np.unique(folds):
        seen = folds != fold
        said[~seen] = decided[best_settings(decided, same, seen)][~seen]
    return precision_recall(said, same)


def precision_recall(said: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """Return the precision and recall of grouping decisions (1.0 when nothing is grouped or nothing is the same)."""
    found = int((said & same).sum())
    return found / said.sum() if said.any() else 1.0, found / same.sum() if same.any() else 1.0


if __name__ == "__main__":
    main()
