"""Vector index tiers: exact inner-product search while it is fast enough, IVF with float16 codes above.

Both tiers take unit vectors and return inner-product scores; row i is vector i in either.
"""

from __future__ import annotations

import math

import faiss
import numpy as np

EXACT_LIMIT = 50_000
"""Largest number of vectors searched exactly: a flat scan of 100k took 20 ms on a busy 2-core machine, IVF 3 ms."""
NPROBE = 64
"""Inverted lists visited per query in the approximate tier (the benchmark reports its recall@10 against exact)."""


def build(vectors: np.ndarray, *, exact_limit: int = EXACT_LIMIT, seed: int = 0) -> faiss.Index:
    """Return an index of `vectors` (unit rows): IndexFlatIP up to `exact_limit` rows, IVF with float16 codes above.

    8-bit codes (a quarter of float32) reordered near-tied neighbours in bench/run.py: recall@10 0.93 at 1M passages
    (32 lists probed) and at 100k (64 of 316 probed). float16 codes take half the memory of float32.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    count, dimension = vectors.shape
    if count <= exact_limit:
        index = faiss.IndexFlatIP(dimension)
        index.add(vectors)
        return index
    lists = max(256, int(math.sqrt(count)))
    index = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(dimension), dimension, lists, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
    )
    sample = np.random.default_rng(seed).choice(count, size=min(count, 40 * lists), replace=False)
    index.train(vectors[np.sort(sample)])
    index.add(vectors)
    index.make_direct_map()  # reconstruct(row) for dense scores of lexical-only hits
    index.nprobe = NPROBE
    return index


def search(index: faiss.Index, queries: np.ndarray, k: int, *, admitted: np.ndarray | None = None) -> tuple:
    """Return (scores, rows) of the k best rows per query, searched with one thread; only `admitted` rows if given.

    `admitted` is a boolean mask over the index's rows. For a question or two, OpenMP threads cost more than they
    save: a 10k exact search took 20 ms with 2 threads on a busy 2-core machine and 0.6 ms with one.
    """
    bits = np.packbits(admitted, bitorder="little") if admitted is not None else None  # alive during the search
    selector = faiss.IDSelectorBitmap(len(admitted), faiss.swig_ptr(bits)) if bits is not None else None
    if faiss.try_extract_index_ivf(index) is not None:
        parameters = faiss.SearchParametersIVF(sel=selector, nprobe=NPROBE)
    else:
        parameters = faiss.SearchParameters(sel=selector) if selector is not None else None
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return index.search(queries, k, params=parameters)
    finally:
        faiss.omp_set_num_threads(threads)
