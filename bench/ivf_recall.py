"""Recall@10 of the approximate (IVF) tier on real, distinct vectors: an index's sentence vectors stand in for passages.

bench/run.py's 100k-1M corpora repeat the 31,774 BBC+Reuters passages with noise, so a question's nearest
neighbours are copies of one passage and its recall@10 says little about an archive of distinct texts. This script
builds the IVF tier over the real sentence vectors of an index (the BBC+Reuters index holds 142,184), as one index
and as five segments (60, 25, 10, 3.5 and 1.5% of them), each built alone (as the store did before) or the way the
store builds them now (the first trains its lists, the later ones use its centroids), and prints recall@10 against
exact search and the median search time, for SQuAD questions and for points near real sentences (cosine about 0.6).

Run from the repository root, on an index of at least 100,000 sentences:

    python -m assistant index ../shared/data/bbc_news/bbc_news.jsonl \
        ../shared/data/reuters21578/reuters21578.jsonl --index-dir /tmp/bbc-reuters
    python bench/ivf_recall.py --index-dir /tmp/bbc-reuters --squad ../shared/data/squad_v2_dev_cs224n/dev-v2.0.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from embeddings import store as index_store
from embeddings import vector_index
from embeddings.encoder import encoder_for_index

SHARES = (0.6, 0.25, 0.1, 0.035, 0.015)
QUERIES = 300


def real_vectors(index_dir: Path) -> np.ndarray:
    """Return the index's sentence vectors as float32 unit rows, shuffled."""
    store = index_store.load(index_dir)
    vectors = np.concatenate([np.asarray(s.sentence_vectors, dtype=np.float32) for s in store.segments])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors[np.random.default_rng(0).permutation(len(vectors))]


def queries(index_dir: Path, squad: Path, vectors: np.ndarray) -> dict[str, np.ndarray]:
    """Return SQuAD questions encoded by the index's model, and points near real sentences."""
    rng = np.random.default_rng(1)
    data = json.loads(squad.read_text(encoding="utf-8"))["data"]
    asked = [q["question"] for article in data for p in article["paragraphs"] for q in p["qas"]]
    asked = [asked[i] for i in rng.choice(len(asked), QUERIES, replace=False)]
    encoder = encoder_for_index(index_store.read_manifest(index_dir))
    near = vectors[rng.integers(0, len(vectors), QUERIES)]
    near = near + rng.normal(0, 0.068, near.shape).astype(np.float32)
    return {"SQuAD questions": encoder.encode(asked), "near sentences": near / np.linalg.norm(near, axis=1)[:, None]}


def segments(vectors: np.ndarray, *, shared: bool) -> list[tuple[int, faiss.Index]]:
    """Return (first row, index) of each segment: the first trains its lists; the others use its centroids if
    `shared`, else each is built alone (its own lists above EXACT_LIMIT, exact below: the store before sharing)."""
    bounds = np.concatenate([[0], (np.cumsum(SHARES) * len(vectors)).astype(int)])
    bounds[-1] = len(vectors)
    first = vector_index.build(vectors[: bounds[1]])
    lists = vector_index.centroids(first) if shared else None
    rest = [vector_index.build(vectors[a:b], centroids=lists) for a, b in itertools.pairwise(bounds[1:])]
    return list(zip(bounds[:-1].tolist(), [first, *rest]))


def search(parts: list[tuple[int, faiss.Index]], query: np.ndarray) -> np.ndarray:
    """Return the rows of the 10 best vectors over all `parts`."""
    scores, rows = [], []
    for offset, index in parts:
        found_scores, found = vector_index.search(index, query.reshape(1, -1), 10)
        scores.append(found_scores[0])
        rows.append(found[0] + offset)
    scores, rows = np.concatenate(scores), np.concatenate(rows)
    return rows[np.argsort(-scores, kind="stable")[:10]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-dir", type=Path, required=True)
    parser.add_argument("--squad", type=Path, required=True, help="SQuAD 2.0 JSON: its questions are the queries")
    args = parser.parse_args()
    vectors = real_vectors(args.index_dir)
    if len(vectors) * SHARES[0] <= vector_index.EXACT_LIMIT:
        sys.exit(
            f"{args.index_dir} holds {len(vectors):,} sentences: too few for an IVF first segment (over "
            f"{vector_index.EXACT_LIMIT:,}, {SHARES[0]:.0%} of them); index the BBC and Reuters files, see --help"
        )
    sets = queries(args.index_dir, args.squad, vectors)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    layouts = {
        "one index": [(0, vector_index.build(vectors))],
        "five segments, each alone": segments(vectors, shared=False),
        "five segments, shared lists": segments(vectors, shared=True),
    }
    print(f"{len(vectors):,} real sentence vectors; IVF probes {vector_index.NPROBE} lists; {QUERIES} queries a set")
    for name, parts in layouts.items():
        lists = [vector_index.centroids(index) for _, index in parts]
        shape = ", ".join(f"{i.ntotal:,}" + (f" ({len(c)} lists)" if c is not None else " (exact)")
                          for (_, i), c in zip(parts, lists))  # fmt: skip
        print(f"\n{name}: {shape}")
        for label, found_for in sets.items():
            truth = exact.search(found_for, 10)[1]
            seconds, found = [], []
            for query in found_for:
                started = time.perf_counter()
                found.append(search(parts, query))
                seconds.append(time.perf_counter() - started)
            recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
            print(f"  {label:16s} recall@10 {recall:.3f}   search p50 {1000 * statistics.median(seconds):.2f} ms")


if __name__ == "__main__":
    main()
