"""Index: plain files, one vector per passage row, and incremental updates that embed only what changed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from embeddings import backend
from embeddings import store as index_store
from embeddings.indexer import update_index
from embeddings.passages import passage_document
from tests.conftest import SEEDS


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for path in sorted(SEEDS.iterdir())[:3]:
        shutil.copy(path, folder / path.name)
    return folder


def passage_vectors(store) -> np.ndarray:
    """Return every passage vector of a loaded store, in passage rows."""
    return np.vstack([s.index.reconstruct_n(0, s.index.ntotal) for s in store.segments])


def vectors_by_article(index_dir) -> dict[str, np.ndarray]:
    store = index_store.load(index_dir)
    vectors = passage_vectors(store)
    rows = store.passage_table(np.arange(store.passage_rows))[:, index_store.ARTICLE]
    return {store.article(i).id: vectors[rows == i] for i in store.live_article_rows().tolist()}


def test_index_folder_is_plain_files_with_rows_matching(seed_index, encoder):
    manifest = json.loads((seed_index / "manifest.json").read_text())
    assert manifest["model"]["fingerprint"] == encoder.fingerprint and manifest["model"]["dimension"] == 384
    assert not list(seed_index.rglob("*.pkl")) and not list(seed_index.rglob("*.pickle"))
    store = index_store.load(seed_index, model_fingerprint=encoder.fingerprint)
    store.verify()
    assert set(store.article_by_id) == {p.stem for p in SEEDS.iterdir()}
    assert store.passage_rows == store.passage_count == manifest["counts"]["passages"]
    assert store.sentence_rows == manifest["counts"]["sentences"]

    # Row i of FAISS is passage i: compare with a brute-force encoding of each passage's text.
    sentences = store.sentence_table(np.arange(store.sentence_rows))[:, 1:].tolist()
    table = store.passage_table(np.arange(store.passage_rows)).tolist()
    texts = [passage_document(store.article(row[0]), sentences[row[3] : row[4]]) for row in table]
    expected = encoder.encode(texts)
    stored = passage_vectors(store)
    np.testing.assert_allclose(stored, expected, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(stored, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(store.sentence_vectors(np.arange(store.sentence_rows)), encoder.encode(
        [store.article(a).text[start:end] for a, start, end in store.sentence_table(np.arange(store.sentence_rows))]
    ), atol=2e-3)  # fmt: skip
    # Exact search agrees with brute force.
    query = encoder.encode(["What weapons will the US station in Germany?"])[0]
    _scores, rows = store.dense(query, k=5)
    brute = np.argsort(-(stored @ query))[:5]
    assert rows.tolist() == brute.tolist()


def test_reindex_embeds_only_what_changed(corpus, tmp_path, encoder):
    index_dir = tmp_path / "index"
    first = update_index([corpus], index_dir=index_dir, encoder=encoder, progress=False)
    assert len(first.added) == 3 and first.embedded_passages == first.passages > 0
    before = vectors_by_article(index_dir)
    generation = index_store.read_manifest(index_dir)["generation"]

    again = update_index([corpus], index_dir=index_dir, encoder=encoder, progress=False)
    assert not again.changed and again.embedded_passages == 0
    assert index_store.read_manifest(index_dir)["generation"] == generation  # nothing written

    changed, kept, removed = sorted(corpus.iterdir())
    changed.write_text(changed.read_text() + "\nThe Kremlin later said a new round of talks was scheduled.\n")
    removed.unlink()
    (corpus / "new.txt").write_text("Reporters asked about sanctions. Officials declined to comment on them.\n")
    update = update_index([corpus], index_dir=index_dir, encoder=encoder, progress=False)
    assert update.updated == [changed.stem] and update.added == ["new"] and update.removed == [removed.stem]
    after = vectors_by_article(index_dir)
    np.testing.assert_array_equal(after[kept.stem], before[kept.stem])  # reused, not re-embedded
    assert update.embedded_passages == len(after[changed.stem]) + len(after["new"])
    assert set(after) == {changed.stem, kept.stem, "new"}
    assert "talks was scheduled" in index_store.load(index_dir).article_by_id[changed.stem].text


def test_indexing_another_folder_keeps_what_is_indexed(corpus, tmp_path, encoder, location):
    index_dir = location
    update_index([corpus], index_dir=index_dir, encoder=encoder, progress=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "extra.md").write_text("# Extra\n\nA separate report on grain exports was published today.\n")
    report = update_index([other], index_dir=index_dir, encoder=encoder, progress=False)
    assert report.added == ["extra"] and not report.removed and report.articles == 4
    assert set(backend.open_reader(index_dir).article_by_id) == {p.stem for p in corpus.iterdir()} | {"extra"}


def test_duplicate_articles_are_skipped_with_reason(corpus, tmp_path, encoder, location):
    copy = tmp_path / "copy"
    copy.mkdir()
    source = next(corpus.iterdir())
    shutil.copy(source, copy / "same-text-other-name.txt")
    report = update_index([corpus, copy], index_dir=location, encoder=encoder, progress=False)
    assert report.articles == 3
    (skip,) = report.skipped
    assert "same-text-other-name" in skip.path and f"same text as article {source.stem!r}" in skip.reason


def test_new_chunking_settings_re_embed_everything_and_keep_other_folders(corpus, tmp_path, encoder, monkeypatch):
    from embeddings import indexer

    index_dir = tmp_path / "index"
    other = tmp_path / "other"
    other.mkdir()
    (other / "extra.txt").write_text("A separate report on grain exports was published today. Prices rose.\n")
    update_index([corpus, other], index_dir=index_dir, encoder=encoder, progress=False)
    monkeypatch.setitem(indexer.CHUNKING, "passage_words", 30)
    report = update_index([corpus], index_dir=index_dir, encoder=encoder, progress=False)
    assert sorted(report.updated) == sorted([p.stem for p in corpus.iterdir()] + ["extra"]) and not report.removed
    assert report.embedded_passages == report.passages
    manifest = index_store.read_manifest(index_dir)
    assert manifest["chunking"]["passage_words"] == 30 and "extra" in index_store.load(index_dir).article_by_id
