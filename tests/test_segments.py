"""Segments: writes proportional to the change, results equal to a fresh build, streaming input, resumed runs."""

from __future__ import annotations

import itertools
import json
import shutil
import threading

import numpy as np
import pytest

from assistant import cli
from assistant.overview import corpus_overview
from assistant.question import lead_candidates
from assistant.retrieval import Filters, Retriever
from embeddings import articles as article_readers
from embeddings import store as index_store
from embeddings import vector_index
from embeddings.indexer import compact_index, update_index
from embeddings.settings import MAX_FILE_BYTES
from embeddings.terms import terms
from tests.conftest import SEEDS

QUESTIONS = [
    "What did Peskov say about China?",
    "What weapons will the US station in Germany?",
    "Who did Belousov call?",
    "How did Peskov describe the results of the NATO summit?",
    "Are there prerequisites for negotiations?",
]


def results(index_dir, encoder) -> list[dict]:
    """Return what each question finds: BM25, dense and sentence rankings with scores, fused hits, term counts."""
    store = index_store.load(index_dir, model_fingerprint=encoder.fingerprint)
    retriever = Retriever(store, encoder)

    def spans(rows) -> list[tuple]:
        return [(store.article(a).id, s, e) for a, s, e in store.passage_table(rows)[:, :3].tolist()]

    found = []
    for question in QUESTIONS:
        vector = encoder.encode([question])[0]
        lexical_scores, lexical = store.lexical(terms(question), k=12)
        dense_scores, dense = store.dense(vector, k=12)
        found.append(
            {
                "lexical": list(zip(spans(lexical), lexical_scores.tolist())),
                "dense": list(zip(spans(dense), np.round(dense_scores, 5).tolist())),
                "sentences": spans(store.sentence_dense(vector, k=12)),
                "hits": [(h.article.id, h.start, h.end, round(h.score, 6)) for h in retriever.search(question, k=8)],
                "frequency": [store.passage_frequency(t) for t in terms(question)],
            }
        )
    return found


def coverage(index_dir, encoder) -> tuple:
    """Return the corpus overview and the lead sentences of all articles and of those of unknown outlet."""
    retriever = Retriever(index_store.load(index_dir, model_fingerprint=encoder.fingerprint), encoder)
    leads = [
        [(c.hit.article.id, c.start, c.end) for c in lead_candidates(retriever, filters)]
        for filters in (Filters(), Filters(outlets=frozenset({None})))
    ]
    return corpus_overview(retriever.store), leads


def segment_files(index_dir) -> dict:
    """Return each segment file with its inode and modification time."""
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in index_dir.glob("s*/*")}


def segment_contents(index_dir) -> dict:
    """Return what a one-segment index holds, keyed by article id and span: each passage with its sentences, vector
    and term count, each sentence's vector, each term's postings."""
    store = index_store.load(index_dir)
    (segment,) = store.segments
    ids = [store.article(row).id for row in range(len(segment.articles))]
    passages = {
        (ids[a], start, end): (
            [tuple(span) for span in segment.sentences[first:stop, 1:].tolist()],
            segment.index.reconstruct(row).tobytes(),
            int(segment.lengths[row]),
        )
        for row, (a, start, end, first, stop) in enumerate(segment.passages.tolist())
    }
    sentences = {
        (ids[a], start, end): segment.sentence_vectors[row].tobytes()
        for row, (a, start, end) in enumerate(segment.sentences.tolist())
    }
    postings = {}
    for term, token in segment.query("SELECT term, id FROM vocabulary"):
        window = slice(segment.indptr[token], segment.indptr[token + 1])
        postings[term] = sorted(
            (ids[segment.passages[row, 0]], int(segment.passages[row, 1]), float(tf))
            for row, tf in zip(segment.rows[window], segment.tf[window])
        )
    return {"passages": passages, "sentences": sentences, "postings": postings}


def test_changes_write_new_segments_only_and_search_equals_a_fresh_build(tmp_path, encoder, monkeypatch):
    monkeypatch.setattr(index_store, "MERGE_RATIO", 0)  # keep every segment apart, to test results across them
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    seeds = sorted(SEEDS.iterdir())
    for path in seeds[:3]:
        shutil.copy(path, corpus / path.name)
    update_index([corpus], index_dir=index_dir, encoder=encoder, progress=False)
    written = segment_files(index_dir)

    for path in seeds[3:]:  # two new articles
        shutil.copy(path, corpus / path.name)
    report = update_index([corpus], index_dir=index_dir, encoder=encoder, progress=False)
    assert sorted(report.added) == [p.stem for p in seeds[3:]]
    assert all(segment_files(index_dir)[p] == stamp for p, stamp in written.items())  # old files untouched
    manifest = index_store.read_manifest(index_dir)
    assert [s["counts"]["articles"] for s in manifest["segments"]] == [3, 2]

    changed = corpus / seeds[0].name  # one article updated, one deleted
    changed.write_text(changed.read_text() + "\nThe Kremlin later said a new round of talks was scheduled.\n")
    (corpus / seeds[1].name).unlink()
    report = update_index([corpus], index_dir=index_dir, encoder=encoder, progress=False)
    assert report.updated == [seeds[0].stem] and report.removed == [seeds[1].stem]
    manifest = index_store.read_manifest(index_dir)
    assert len(manifest["segments"]) == 3 and sorted(manifest["segments"][0]["deleted"]) == [0, 1]
    assert manifest["counts"]["articles"] == 4

    fresh = tmp_path / "fresh"
    update_index([corpus], index_dir=fresh, encoder=encoder, progress=False)
    assert len(index_store.read_manifest(fresh)["segments"]) == 1
    expected = results(fresh, encoder)
    assert results(index_dir, encoder) == expected  # BM25 statistics, rankings and scores across segments
    assert coverage(index_dir, encoder) == coverage(fresh, encoder)  # outlets, dates, leads: deleted rows left out

    compact_index(index_dir)
    manifest = index_store.read_manifest(index_dir)
    assert len(manifest["segments"]) == 1 and not manifest["segments"][0]["deleted"]
    assert manifest["counts"] == index_store.read_manifest(fresh)["counts"]
    assert results(index_dir, encoder) == expected


def test_compaction_streams_in_blocks_and_writes_what_a_fresh_build_writes(tmp_path, encoder, monkeypatch):
    monkeypatch.setattr(index_store, "MERGE_RATIO", 0)  # keep every segment apart until the compaction
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    seeds = sorted(SEEDS.iterdir())
    for part in (seeds[:2], seeds[2:]):
        for path in part:
            shutil.copy(path, corpus / path.name)
        update_index([corpus], index_dir=index_dir, encoder=encoder, progress=False)
    changed = corpus / seeds[0].name  # one article updated, one deleted: their old rows and terms must go
    changed.write_text(changed.read_text() + "\nZelenograd officials later confirmed the schedule.\n")
    (corpus / seeds[3].name).unlink()
    update_index([corpus], index_dir=index_dir, encoder=encoder, progress=False)
    assert len(index_store.read_manifest(index_dir)["segments"]) == 3

    monkeypatch.setattr(index_store, "MERGE_ROWS", 3)  # every table, vector file and posting list read in blocks
    compact_index(index_dir)
    fresh = tmp_path / "fresh"
    update_index([corpus], index_dir=fresh, encoder=encoder, progress=False)
    merged, expected = segment_contents(index_dir), segment_contents(fresh)
    assert merged["postings"] == expected["postings"]  # the vocabulary too: no term of a deleted article is left
    assert merged == expected
    assert index_store.read_manifest(index_dir)["counts"] == index_store.read_manifest(fresh)["counts"]


def test_small_segments_are_merged_as_they_come(tmp_path, encoder):
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    for path in sorted(SEEDS.iterdir()):
        shutil.copy(path, corpus / path.name)
        update_index([corpus], index_dir=index_dir, encoder=encoder, progress=False)
    manifest = index_store.read_manifest(index_dir)
    sizes = [s["counts"]["passages"] for s in manifest["segments"]]
    assert all(later * index_store.MERGE_RATIO < earlier for earlier, later in itertools.pairwise(sizes))
    assert {p.name for p in index_dir.glob("s*")} <= {s["name"] for s in manifest["segments"]} | set(
        manifest["retired"]
    )
    fresh = tmp_path / "fresh"
    update_index([corpus], index_dir=fresh, encoder=encoder, progress=False)
    assert results(index_dir, encoder) == results(fresh, encoder)


def test_a_jsonl_file_is_read_as_a_stream_with_the_size_limit_per_article(tmp_path, encoder):
    feed = tmp_path / "feed.jsonl"
    with feed.open("w", encoding="utf-8") as handle:
        handle.write(
            json.dumps({"id": "first", "text": (SEEDS / sorted(p.name for p in SEEDS.iterdir())[0]).read_text()})
        )
        handle.write("\n" + json.dumps({"id": "huge", "text": "word " * (MAX_FILE_BYTES // 5 + 10)}) + "\n")
        handle.write((" " * (MAX_FILE_BYTES // 2) + "\n") * 3)  # blank lines: the file is over twice the limit
        handle.write(
            json.dumps({"id": "last", "text": (SEEDS / sorted(p.name for p in SEEDS.iterdir())[1]).read_text()})
        )
    assert feed.stat().st_size > 2 * MAX_FILE_BYTES
    report = update_index([feed], index_dir=tmp_path / "index", encoder=encoder, progress=False)
    assert sorted(report.added) == ["first", "last"]
    assert [(s.path, s.reason) for s in report.skipped] == [
        (f"{feed}:2", f"line is over {MAX_FILE_BYTES / 1e6:.0f} MB, the limit for one article")
    ]


def test_an_interrupted_run_resumes_without_embedding_again(tmp_path, encoder):
    index_dir = tmp_path / "index"
    batches = []

    def interrupt_in_third_batch(done: int, total: int) -> None:
        if total not in batches:
            batches.append(total)
        if len(batches) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        update_index(  # a batch of 10 texts: every seed article is committed on its own
            [SEEDS], index_dir=index_dir, encoder=encoder, progress=False, on_progress=interrupt_in_third_batch,
            batch_texts=10,
        )  # fmt: skip
    committed = index_store.read_manifest(index_dir)["counts"]
    assert committed["articles"] == 2

    report = update_index([SEEDS], index_dir=index_dir, encoder=encoder, progress=False)
    assert len(report.added) == 3 and report.articles == 5
    assert report.embedded_passages == report.passages - committed["passages"]  # the first two not embedded again
    again = update_index([SEEDS], index_dir=index_dir, encoder=encoder, progress=False)
    assert not again.changed and again.embedded_passages == 0


def test_an_unexpected_failure_reading_one_file_names_it_and_keeps_what_is_indexed(tmp_path, capsys, monkeypatch):
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    shutil.copy(sorted(SEEDS.iterdir())[0], corpus / "plain.txt")
    page = "<html><head><title>Grain exports</title></head><body><article><p>{}</p></article></body></html>"
    body = "The ministry said grain exports rose by a tenth in May. Traders expect more shipments in June."
    (corpus / "page.html").write_text(page.format(body), encoding="utf-8")
    assert cli.main(["index", str(corpus), "--index-dir", str(index_dir), "--quiet"]) == cli.OK
    capsys.readouterr()

    def broken_dependency(*args, **kwargs):
        raise ImportError("lxml.html.clean module is now a separate project lxml_html_clean")

    monkeypatch.setattr(article_readers, "_from_html", broken_dependency)
    (corpus / "page.html").write_text(page.format(body + " Prices fell."), encoding="utf-8")
    shutil.copy(sorted(SEEDS.iterdir())[1], corpus / "other.txt")
    code = cli.main(["index", str(corpus), "--index-dir", str(index_dir), "--quiet"])
    out, err = capsys.readouterr()
    assert code == cli.PARTIAL and "Traceback" not in out + err
    (line,) = [line for line in out.splitlines() if "page.html" in line]
    assert "could not be read (ImportError: lxml.html.clean module is now a separate project" in line
    assert line.endswith("; the version indexed earlier is kept")
    assert set(index_store.load(index_dir).article_by_id) == {"plain", "page", "other"}


def write_reports(feed, count: int, *, first: int = 0) -> None:
    """Write `count` one-sentence price reports as a JSONL feed, numbered from `first`."""
    places, things = ["Oslo", "Lima", "Hanoi", "Accra", "Quito", "Riga"], ["wheat", "steel", "rents", "fares", "wages"]
    pairs = itertools.islice(itertools.cycle(itertools.product(places, things)), first, first + count)
    with feed.open("w", encoding="utf-8") as handle:
        for n, (place, thing) in enumerate(pairs, first):
            text = f"In {place}, the price of {thing} rose by {n % 37 + 2} percent in week {n}, officials said."
            handle.write(json.dumps({"id": f"report-{n}", "text": text}) + "\n")


def test_segments_written_beside_an_approximate_one_share_its_lists(tmp_path, encoder, monkeypatch):
    """A question visits the same share of every segment's vectors: small segments are not scanned whole."""
    monkeypatch.setattr(vector_index, "EXACT_LIMIT", 300)
    monkeypatch.setattr(vector_index, "SHARED_LISTS_MINIMUM", 2)  # the seeds' segments hold 4-19 passages
    feed, index_dir = tmp_path / "reports.jsonl", tmp_path / "index"
    write_reports(feed, 400)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    update_index([feed], index_dir=index_dir, encoder=encoder, progress=False)
    for path in sorted(SEEDS.iterdir()):  # new segments, and merges of them (tests/test_segments.py above)
        shutil.copy(path, corpus / path.name)
        update_index([corpus], index_dir=index_dir, encoder=encoder, progress=False)
    store = index_store.load(index_dir)
    large, *small = store.segments
    assert small and all(s.index.ntotal < vector_index.EXACT_LIMIT < large.index.ntotal for s in small)
    assert index_store.read_manifest(index_dir)["generation"] > "g000006"  # a merge wrote a segment
    for segment in small:
        assert np.array_equal(vector_index.centroids(segment.index), vector_index.centroids(large.index))
        rows = np.arange(segment.passage_offset, segment.passage_offset + segment.index.ntotal)
        vectors = segment.index.reconstruct_n(0, segment.index.ntotal)
        assert [int(store.dense(vector, k=1)[1][0]) for vector in vectors] == rows.tolist()


def test_a_large_index_searches_on_two_threads_with_the_same_results(tmp_path, encoder, monkeypatch):
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    *first, last = sorted(SEEDS.iterdir())
    for paths in (first, [last]):  # two segments
        for path in paths:
            shutil.copy(path, corpus / path.name)
        update_index([corpus], index_dir=index_dir, encoder=encoder, progress=False)
    assert len(index_store.load(index_dir).segments) == 2
    serial = results(index_dir, encoder)
    monkeypatch.setattr(index_store, "PARALLEL_PASSAGES", 0)
    threads, lexical_threads = [], []
    search, lexical = vector_index.search, index_store.Store.lexical
    monkeypatch.setattr(
        vector_index, "search", lambda *a, **k: threads.append(threading.current_thread().name) or search(*a, **k)
    )
    monkeypatch.setattr(
        index_store.Store,
        "lexical",
        lambda *a, **k: lexical_threads.append(threading.current_thread().name) or lexical(*a, **k),
    )
    assert results(index_dir, encoder) == serial
    assert threads and all(name.startswith("index-searches") for name in threads)
    assert any(name.startswith("index-searches") for name in lexical_threads)  # BM25 beside FAISS in a question


def test_a_store_left_small_by_a_change_is_searched_exactly_again(tmp_path, encoder, monkeypatch):
    monkeypatch.setattr(vector_index, "EXACT_LIMIT", 300)
    monkeypatch.setattr(vector_index, "SHARED_LISTS_MINIMUM", 2)
    feed, index_dir = tmp_path / "reports.jsonl", tmp_path / "index"
    write_reports(feed, 400)
    update_index([feed], index_dir=index_dir, encoder=encoder, progress=False)
    assert vector_index.centroids(index_store.load(index_dir).segments[0].index) is not None
    write_reports(feed, 20, first=1000)  # the feed replaced: its 400 reports are deleted
    update_index([feed], index_dir=index_dir, encoder=encoder, progress=False)
    store = index_store.load(index_dir)
    assert len(store.segments) == 1 and vector_index.centroids(store.segments[0].index) is None
    vectors = store.segments[0].index.reconstruct_n(0, 20)
    assert [len(store.dense(vector, k=10)[1]) for vector in vectors] == [10] * 20
