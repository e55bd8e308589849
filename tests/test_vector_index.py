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
