"""Vector index tiers: exact inner-product search while it is fast enough, IVF with float16 codes above (or over the
inverted lists of a larger index of the same store, whatever the size).

Both tiers take unit vectors and return inner-product scores; row i is vector i in either.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable, Iterable

import faiss
import numpy as np

EXACT_LIMIT = 50_000
"""Largest number of vectors an index searches exactly (unless it shares the lists of a larger one): a flat scan of
100k took 20 ms on a busy 2-core machine, IVF 3 ms."""
SHARED_LISTS_MINIMUM = 1_024
"""Fewest vectors put in the inverted lists of another index: below, a flat scan (1.5 MB) costs less than probing
lists, and copying the lists' centroids (1.2 MB at 1M passages) into the index file would make small writes large
(adding 1 article to a 1M index wrote 2.7 MB with them, 139 KB without)."""
NPROBE = 64
"""Inverted lists visited per query in the approximate tier (the benchmark reports its recall@10 against exact)."""

# FAISS's OpenMP thread count is a setting of each thread: searches run with one thread, set once per thread that
# searches (for a question or two, threads cost more than they save: a 10k exact search took 20 ms with 2 threads on
# a busy 2-core machine and 0.6 ms with one). Only index builds, serialized by a lock, use every core for a while.
_searching = threading.local()
_building = threading.Lock()


def _one_thread() -> None:
    """Set FAISS to one thread in the calling thread, once."""
    if not getattr(_searching, "one_thread", False):
        faiss.omp_set_num_threads(1)
        _searching.one_thread = True


@contextlib.contextmanager
def _all_cores():
    """Let FAISS use every core for the `with` block, then one thread again."""
    with _building:
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        try:
            yield
        finally:
            faiss.omp_set_num_threads(1)


def build(
    vectors: np.ndarray, *, exact_limit: int | None = None, seed: int = 0, centroids: np.ndarray | None = None
) -> faiss.Index:
    """Return an index of `vectors` (unit rows): IndexFlatIP up to `exact_limit` rows (EXACT_LIMIT by default), IVF
    with float16 codes above, or IVF over given `centroids` (see `build_from_blocks`).

    8-bit codes (a quarter of float32) reordered near-tied neighbours in bench/run.py: recall@10 0.93 at 1M passages
    (32 lists probed) and at 100k (64 of 316 probed). float16 codes take half the memory of float32.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    count, dimension = vectors.shape
    return build_from_blocks(
        count,
        dimension,
        lambda rows: vectors[rows],
        lambda: [vectors],
        exact_limit=exact_limit,
        seed=seed,
        centroids=centroids,
    )


def build_from_blocks(
    count: int,
    dimension: int,
    sample: Callable[[np.ndarray], np.ndarray],
    blocks: Callable[[], Iterable[np.ndarray]],
    *,
    exact_limit: int | None = None,
    seed: int = 0,
    centroids: np.ndarray | None = None,
) -> faiss.Index:
    """Return the index `build` makes of `count` unit vectors given as consecutive `blocks()` of rows.

    `sample(rows)` returns the vectors of the sorted `rows` (IVF training); only a block is held besides the index.
    `centroids`: the inverted lists' centroids of another index of the same store. Given, the index is IVF over them,
    untrained, whatever its size above SHARED_LISTS_MINIMUM: a segment beside a large one then costs the same share
    of its vectors per search as the large one (NPROBE of the same lists), not a flat scan of all of them.
    """
    exact_limit = EXACT_LIMIT if exact_limit is None else exact_limit
    if not takes_shared_lists(count):
        centroids = None
    if count == 0 or (centroids is None and count <= exact_limit):
        index = faiss.IndexFlatIP(dimension)
        for block in blocks():
            index.add(np.ascontiguousarray(block, dtype=np.float32))
        return index
    quantizer = faiss.IndexFlatIP(dimension)
    if centroids is None:
        lists = max(256, int(math.sqrt(count)))
        chosen = np.sort(np.random.default_rng(seed).choice(count, size=min(count, 40 * lists), replace=False))
    else:
        quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))  # trained: the IVF training keeps it
        lists, chosen = len(centroids), np.arange(1)  # float16 codes need no training data
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, dimension, lists, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
    )
    with _all_cores():
        index.train(np.ascontiguousarray(sample(chosen), dtype=np.float32))
        for block in blocks():
            index.add(np.ascontiguousarray(block, dtype=np.float32))
    index.make_direct_map()  # reconstruct(row) for dense scores of lexical-only hits
    index.nprobe = NPROBE
    return index


def takes_shared_lists(count: int) -> bool:
    """Return True if an index of `count` vectors goes in another index's inverted lists when given their centroids."""
    return count > SHARED_LISTS_MINIMUM


def centroids(index: faiss.Index) -> np.ndarray | None:
    """Return the centroids of an IVF index's inverted lists, None for an exact index."""
    ivf = faiss.try_extract_index_ivf(index)
    return None if ivf is None else faiss.downcast_index(ivf.quantizer).reconstruct_n(0, ivf.nlist)


def search(index: faiss.Index, queries: np.ndarray, k: int, *, admitted: np.ndarray | None = None) -> tuple:
    """Return (scores, rows) of the k best rows per query (one thread: see the top of this module); only `admitted`
    rows (a boolean mask over the index's rows) if given.

    An IVF index visits more lists the fewer rows `admitted` leaves, so that it meets as many admitted rows as an
    unfiltered search meets rows (every list, an exact search, when few are admitted).
    """
    _one_thread()
    bits = np.packbits(admitted, bitorder="little") if admitted is not None else None  # alive during the search
    selector = faiss.IDSelectorBitmap(len(admitted), faiss.swig_ptr(bits)) if bits is not None else None
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        share = 1.0 if admitted is None else max(int(np.count_nonzero(admitted)), 1) / max(index.ntotal, 1)
        probes = min(ivf.nlist, math.ceil(NPROBE / share))
        parameters = faiss.SearchParametersIVF(sel=selector, nprobe=probes)
    else:
        parameters = faiss.SearchParameters(sel=selector) if selector is not None else None
    return index.search(queries, k, params=parameters)
