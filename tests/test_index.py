"""Index: plain files, one vector per passage row, and incremental updates that embed only what changed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

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


def vectors_by_article(index_dir) -> dict[str, np.ndarray]:
    store = index_store.load(index_dir)
    vectors = store.passage_index.reconstruct_n(0, store.passage_index.ntotal)
    rows = store.passages[:, index_store.ARTICLE]
    return {a.id: vectors[rows == i] for i, a in enumerate(store.articles)}


def test_index_folder_is_plain_files_with_rows_matching(seed_index, encoder):
    manifest = json.loads((seed_index / "manifest.json").read_text())
    assert manifest["model"]["fingerprint"] == encoder.fingerprint and manifest["model"]["dimension"] == 384
    assert manifest["normalized"] is True and set(manifest["articles"]) == {p.stem for p in SEEDS.iterdir()}
    generation = seed_index / manifest["generation"]
    assert not list(generation.rglob("*.pkl")) and not list(generation.rglob("*.pickle"))
    store = index_store.load(seed_index, model_fingerprint=encoder.fingerprint)
    assert store.passage_index.ntotal == len(store.passages) == manifest["counts"]["passages"]
    assert len(store.sentence_vectors) == len(store.sentences) == manifest["counts"]["sentences"]

    # Row i of FAISS is passage i: compare with a brute-force encoding of each passage's text.
    sentences = [(int(a), int(b)) for _, a, b in store.sentences]
    texts = [passage_document(store.articles[row[0]], sentences[row[3] : row[4]]) for row in store.passages.tolist()]
    expected = encoder.encode(texts)
    stored = store.passage_index.reconstruct_n(0, store.passage_index.ntotal)
    np.testing.assert_allclose(stored, expected, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(stored, axis=1), 1.0, atol=1e-5)
    # Exact search agrees with brute force.
    query = encoder.encode(["What weapons will the US station in Germany?"])
    _scores, rows = store.passage_index.search(query, 5)
    brute = np.argsort(-(stored @ query[0]))[:5]
    assert rows[0].tolist() == brute.tolist()


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
    assert "talks was scheduled" in index_store.load(index_dir).articles[0].text


def test_indexing_another_folder_keeps_what_is_indexed(corpus, tmp_path, encoder):
    index_dir = tmp_path / "index"
    update_index([corpus], index_dir=index_dir, encoder=encoder, progress=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "extra.md").write_text("# Extra\n\nA separate report on grain exports was published today.\n")
    report = update_index([other], index_dir=index_dir, encoder=encoder, progress=False)
    assert report.added == ["extra"] and not report.removed and report.articles == 4
    assert {a.id for a in index_store.load(index_dir).articles} == {p.stem for p in corpus.iterdir()} | {"extra"}


def test_duplicate_articles_are_skipped_with_reason(corpus, tmp_path, encoder):
    copy = tmp_path / "copy"
    copy.mkdir()
    source = next(corpus.iterdir())
    shutil.copy(source, copy / "same-text-other-name.txt")
    report = update_index([corpus, copy], index_dir=tmp_path / "index", encoder=encoder, progress=False)
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
    assert manifest["chunking"]["passage_words"] == 30 and "extra" in manifest["articles"]
