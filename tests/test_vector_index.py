"""Vector index tiers: the approximate tier is checked against an exact IndexFlatIP on the same vectors."""

from __future__ import annotations

import faiss
import numpy as np

from embeddings import vector_index


def clustered_unit_vectors(count: int, *, dimension: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((64, dimension))
    vectors = centers[rng.integers(0, 64, count)] + 0.5 * rng.standard_normal((count, dimension))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    return flat.search(queries, k)[1]


def test_small_collections_are_searched_exactly():
    vectors = clustered_unit_vectors(500)
    index = vector_index.build(vectors)
    assert isinstance(index, faiss.IndexFlatIP)
    assert (index.search(vectors[:20], 10)[1] == exact_top(vectors, vectors[:20], 10)).all()


def test_large_collections_get_an_approximate_index_close_to_exact(tmp_path):
    vectors, queries = clustered_unit_vectors(20_000), clustered_unit_vectors(100, seed=1)
    built = vector_index.build(vectors, exact_limit=5_000)
    faiss.write_index(built, str(tmp_path / "index.faiss"))
    index = faiss.read_index(str(tmp_path / "index.faiss"))
    assert faiss.try_extract_index_ivf(index) is not None and index.ntotal == len(vectors)
    found = vector_index.search(index, queries, 10)[1]
    truth = exact_top(vectors, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
    assert recall >= 0.95
    assert np.allclose(index.reconstruct(123), vectors[123], atol=1e-3)  # float16 codes, direct map kept


def test_search_restricts_both_tiers_to_admitted_rows():
    vectors = clustered_unit_vectors(8_000)
    admitted = np.zeros(8_000, dtype=bool)
    admitted[::7] = True
    for index in (vector_index.build(vectors), vector_index.build(vectors, exact_limit=1_000)):
        rows = vector_index.search(index, vectors[:5], 10, admitted=admitted)[1]
        assert rows.size and admitted[rows[rows >= 0]].all()


def test_searches_run_with_one_faiss_thread_on_every_thread():
    """FAISS's thread count is a setting of each thread: a search on a new thread (a chat session, the store's search
    threads) must not run with one thread per core."""
    from concurrent.futures import ThreadPoolExecutor

    vectors = clustered_unit_vectors(2000)
    index = vector_index.build(vectors, exact_limit=1000)  # builds may use every core, and set one thread back

    def search(i: int) -> tuple:
        return vector_index.search(index, vectors[i : i + 1], 5)[1], faiss.omp_get_max_threads()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(search, range(200)))
    assert all(threads == 1 for _, threads in results)
    assert all(rows[0][0] == i for i, (rows, _) in enumerate(results))  # each vector finds itself first


def test_a_filtered_approximate_search_finds_the_few_admitted_rows_exactly():
    vectors, queries = clustered_unit_vectors(20_000), clustered_unit_vectors(50, seed=1)
    index = vector_index.build(vectors, exact_limit=5_000)
    for count in (3, 30, 300):
        admitted = np.zeros(len(vectors), dtype=bool)
        admitted[np.random.default_rng(count).choice(len(vectors), count, replace=False)] = True
        rows = np.flatnonzero(admitted)
        truth = rows[exact_top(vectors[rows], queries, min(10, count))]
        found = vector_index.search(index, queries, min(10, count), admitted=admitted)[1]
        assert (found == truth).all()


def test_an_index_built_from_blocks_is_the_index_built_at_once():
    vectors = clustered_unit_vectors(6_000)
    for exact_limit in (10_000, 2_000):  # both tiers
        whole = vector_index.build(vectors, exact_limit=exact_limit)
        in_blocks = vector_index.build_from_blocks(
            len(vectors), vectors.shape[1], lambda rows: vectors[rows],
            lambda: (vectors[first : first + 700] for first in range(0, len(vectors), 700)), exact_limit=exact_limit,
        )  # fmt: skip
        assert type(in_blocks) is type(whole) and in_blocks.ntotal == len(vectors)
        assert np.array_equal(faiss.serialize_index(in_blocks), faiss.serialize_index(whole))


def test_an_index_shares_another_ones_lists_above_a_minimum_size():
    vectors = clustered_unit_vectors(6_000)
    lists = vector_index.centroids(vector_index.build(vectors, exact_limit=2_000))
    small, large = vectors[: vector_index.SHARED_LISTS_MINIMUM], vectors[: vector_index.SHARED_LISTS_MINIMUM + 1]
    assert vector_index.centroids(vector_index.build(small, centroids=lists)) is None  # exact, and no copy of lists
    assert np.array_equal(vector_index.centroids(vector_index.build(large, centroids=lists)), lists)
