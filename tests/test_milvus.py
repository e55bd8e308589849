"""Milvus behind the storage seam: Milvus Lite in this process and a local `milvus-lite server` over the network,
checked against exact search (numpy) on the seeds' real vectors, and the Milvus Lite caveats, each handled."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from embeddings import backend
from embeddings import milvus_store as ms
from embeddings.articles import read_articles
from embeddings.backend import ARTICLE, END, START, Change, Embedded, Filters, StoreError
from embeddings.indexer import CHUNKING, embedding_texts
from embeddings.passages import chunk_article, passage_document
from embeddings.terms import terms

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "How did Peskov describe the results of the NATO summit?",
    "What weapons will the US station in Germany?",
    "Are there prerequisites for negotiations?",
    "Who did Belousov call?",
]
FILTERS = [
    None,
    Filters(outlets=frozenset({"TASS", "Bloomberg"})),
    Filters(date_from="2024-07-14", date_to="2024-07-14"),
]


def shortened(article, length: int):
    """Return `article` cut to its first `length` characters."""
    return dataclasses.replace(article, text=article.text[:length], blocks=((article.blocks[0][0], length),))


def embed(article, encoder) -> Embedded:
    """Return an article chunked, embedded and with its BM25 terms, as the indexer writes it."""
    sentences, passages = chunk_article(article, **CHUNKING)
    vectors = encoder.encode(embedding_texts(article, sentences, passages))
    passage_terms = [
        terms(passage_document(article, sentences[p.first_sentence : p.sentence_stop])) or [""] for p in passages
    ]
    return Embedded(article, sentences, passages, vectors[: len(passages)], vectors[len(passages) :], passage_terms)


@pytest.fixture(scope="module")
def seeds(encoder) -> list[Embedded]:
    """Return the five seed articles, embedded."""
    articles = []
    for path in sorted((ROOT / "seeds").glob("*.txt")):
        articles += read_articles(path, path.read_bytes(), display_path=f"seeds/{path.name}")[0]
    return [embed(article, encoder) for article in articles]


@pytest.fixture
def location(milvus_location) -> ms.MilvusLocation:
    """Return an empty Milvus location (Milvus Lite in this process, then the local server): Milvus only here."""
    return milvus_location


def write(location, change: Change, *, rebuild=False, model=None) -> None:
    """Commit `change` to the index at `location`."""
    model = model or {"name": "m", "path": "p", "fingerprint": "f", "dimension": 384}
    with backend.open_writer(location, rebuild=rebuild) as writer:
        writer.commit(change, model=model, chunking=CHUNKING)


def table(embedded: list[Embedded]) -> list[tuple]:
    """Return every passage of `embedded` as (article, start, end, vector, terms), in order."""
    return [
        (e.article, p.start, p.end, e.passage_vectors[n], e.passage_terms[n])
        for e in embedded
        for n, p in enumerate(e.passages)
    ]


def spans(reader, rows) -> list[tuple]:
    """Return (article id, start, end) of passage `rows` of a reader."""
    return [(reader.article(a).id, s, e) for a, s, e in reader.passage_table(rows)[:, [ARTICLE, START, END]].tolist()]


def exact_bm25(passages: list[tuple], query: list[str], *, k1=1.5, b=0.75) -> np.ndarray:
    """Return the BM25 score of every passage for `query` as Lucene computes it, here."""
    counts = [Counter(p[4]) for p in passages]
    lengths = np.array([len(p[4]) for p in passages], dtype=float)
    scores = np.zeros(len(passages))
    for term in set(query):
        frequency = sum(term in c for c in counts)
        if not frequency:
            continue
        idf = math.log(1 + (len(passages) - frequency + 0.5) / (frequency + 0.5))
        tf = np.array([c[term] for c in counts], dtype=float)
        scores += query.count(term) * idf * tf / (tf + k1 * (1 - b + b * lengths / lengths.mean()))
    return scores


@pytest.mark.parametrize("filters", FILTERS, ids=["all", "outlets", "date"])
def test_dense_search_equals_exact_search(location, seeds, encoder, filters):
    write(location, Change(upserts=seeds))
    reader = backend.open_reader(location)
    passages = table(seeds)
    for question in QUESTIONS:
        vector = encoder.encode([question])[0]
        scores = np.array([p[3] @ vector if filters is None or filters.admits(p[0]) else -np.inf for p in passages])
        order = [i for i in np.argsort(-scores)[:5] if np.isfinite(scores[i])]
        found_scores, rows = reader.dense(vector, k=5, filters=filters)
        assert spans(reader, rows) == [(passages[i][0].id, passages[i][1], passages[i][2]) for i in order]
        np.testing.assert_allclose(found_scores, scores[order], rtol=1e-5)
        np.testing.assert_allclose(reader.dense_scores(vector, rows), scores[order], rtol=1e-5)


@pytest.mark.parametrize("filters", FILTERS, ids=["all", "outlets", "date"])
def test_bm25_scores_are_positive_and_equal_exact_bm25(location, seeds, filters):
    """Milvus Lite returns BM25 scores negated; the reader gives them positive, equal to BM25 computed here."""
    write(location, Change(upserts=seeds))
    reader = backend.open_reader(location)
    passages = table(seeds)
    for question in QUESTIONS:
        query = terms(question)
        exact = exact_bm25(passages, query)
        admitted = [i for i, p in enumerate(passages) if exact[i] > 0 and (filters is None or filters.admits(p[0]))]
        best = sorted(admitted, key=lambda i: -exact[i])[:5]
        scores, rows = reader.lexical(query, k=5, filters=filters)
        assert (scores > 0).all()
        by_span = {(p[0].id, p[1], p[2]): exact[i] for i, p in enumerate(passages)}
        np.testing.assert_allclose(scores, [by_span[s] for s in spans(reader, rows)], rtol=1e-4)
        np.testing.assert_allclose(scores, exact[best], rtol=1e-4)  # the best ones, ties in any order
    raw = reader.milvus.client.search(reader.milvus.passages, ["peskov"], anns_field="sparse", limit=1)[0]
    assert raw[0]["distance"] < 0  # the caveat itself: if Milvus Lite stops negating, abs() still holds


@pytest.mark.parametrize("filters", FILTERS, ids=["all", "outlets", "date"])
def test_fused_search_is_milvus_rrf_of_exact_dense_and_bm25_rankings(location, seeds, encoder, filters):
    """Milvus fuses dense and BM25 search in the engine (hybrid_search, RRFRanker), in one request."""
    write(location, Change(upserts=seeds))
    reader = backend.open_reader(location)
    passages = table(seeds)
    admitted = [filters is None or filters.admits(p[0]) for p in passages]
    calls = []
    hybrid_search = reader.milvus.client.hybrid_search
    reader.milvus.client.hybrid_search = lambda *a, **kw: calls.append(a) or hybrid_search(*a, **kw)
    for question in QUESTIONS:
        vector, query = encoder.encode([question])[0], terms(question)
        similarity = np.array([p[3] @ vector if ok else -np.inf for p, ok in zip(passages, admitted)])
        bm25 = np.where(admitted, exact_bm25(passages, query), 0)
        nearest = [i for i in np.argsort(-similarity, kind="stable")[:5] if np.isfinite(similarity[i])]
        best = [i for i in np.argsort(-bm25, kind="stable")[:5] if bm25[i] > 0]
        fused = backend.reciprocal_rank_fusion([nearest, best])  # sums of 1 / (60 + rank): test_answers.py
        expected = {(passages[i][0].id, passages[i][1], passages[i][2]): score for i, score in fused.items()}
        scores, rows = reader.fused(vector, query, k=5, filters=filters)
        assert dict(zip(spans(reader, rows), scores.tolist())) == pytest.approx(expected, rel=1e-5)
        assert (np.diff(scores) <= 0).all()  # best first
    assert len(calls) == len(QUESTIONS)


def test_rows_tables_texts_and_coverage_match_what_was_written(location, seeds, encoder):
    write(location, Change(upserts=seeds))
    reader = backend.open_reader(location)
    assert (reader.article_count, reader.passage_count) == (5, sum(len(e.passages) for e in seeds))
    assert reader.sentence_count == sum(len(e.sentences) for e in seeds)
    by_id = {e.article.id: e for e in seeds}
    for row in reader.live_article_rows():
        article = reader.article(row)
        assert article == by_id[article.id].article and reader.article_row(article.id) == row
    sentence_rows = np.arange(reader.sentence_count)
    sentences = reader.sentence_table(sentence_rows)
    expected = [(by_id[reader.article(a).id].sentences) for a in sorted(set(sentences[:, 0].tolist()))]
    assert [tuple(s) for s in sentences[:, 1:].tolist()] == [tuple(s) for group in expected for s in group]
    vectors = np.concatenate([by_id[reader.article(a).id].sentence_vectors for a in reader.live_article_rows()])
    np.testing.assert_allclose(reader.sentence_vectors(sentence_rows), vectors, atol=1e-6)
    passages = reader.passage_table(np.arange(reader.passage_count))
    for article, start, end, first, stop in passages.tolist():  # a passage's sentences are its article's, in its span
        assert (sentences[first:stop, 0] == article).all()
        assert sentences[first, 1] == start and sentences[stop - 1, 2] == end
    coverage = reader.coverage()
    assert coverage.outlets == Counter(e.article.outlet for e in seeds if e.article.outlet)
    assert coverage.days == Counter(e.article.date for e in seeds if e.article.date)
    assert reader.passage_frequency("peskov") == sum("peskov" in p[4] for p in table(seeds))


def test_articles_in_many_parts_are_read_whole_and_a_missing_part_is_reported(location, seeds, monkeypatch):
    monkeypatch.setattr(ms, "PART_CHARS", 500)  # each seed's record in more parts than one read asks for
    write(location, Change(upserts=seeds))
    reader = backend.open_reader(location)
    assert {i: a.text for i, a in reader.article_by_id.items()} == {e.article.id: e.article.text for e in seeds}
    entry = reader.entries[0]
    assert len(ms._parts(json.dumps(ms.read_records(reader.milvus, [entry])[entry.id]))) > 2 * ms.PARTS_READ
    reader.milvus.client.delete(reader.milvus.articles, ids=[ms.key(entry.id, entry.generation, ms.PARTS_READ)])
    with pytest.raises(StoreError, match="lacks the text"):
        backend.open_reader(location).article(0)


def test_sentence_search_ranks_passages_by_their_best_sentence(location, seeds, encoder):
    write(location, Change(upserts=seeds))
    reader = backend.open_reader(location)
    vector = encoder.encode([QUESTIONS[0]])[0]
    best = {}  # passage span -> best similarity of a sentence it holds first
    for e in seeds:
        owner = {}
        for n, p in enumerate(e.passages):
            for s in range(p.first_sentence, p.sentence_stop):
                owner.setdefault(s, n)
        for s, n in owner.items():
            span = (e.article.id, e.passages[n].start, e.passages[n].end)
            best[span] = max(best.get(span, -1), float(e.sentence_vectors[s] @ vector))
    rows = reader.sentence_dense(vector, k=5)
    assert spans(reader, rows) == sorted(best, key=lambda s: -best[s])[:5]


def test_writing_an_article_again_replaces_it_and_deleting_removes_it(location, seeds, encoder):
    write(location, Change(upserts=seeds))
    before = backend.open_reader(location)
    shorter = shortened(seeds[0].article, 600)
    write(location, Change(upserts=[embed(shorter, encoder)], deletes=[seeds[4].article.id]))
    assert not before.is_current()
    after = backend.open_reader(location)
    assert after.is_current() and after.generation != before.generation
    assert after.article_by_id[shorter.id].text == shorter.text
    assert seeds[4].article.id not in after.article_by_id and after.article_count == 4
    live = [embed(shorter, encoder), *seeds[1:4]]
    assert after.passage_count == sum(len(e.passages) for e in live)
    vector = encoder.encode([QUESTIONS[1]])[0]  # the deleted Bloomberg article held its answer
    assert seeds[4].article.id not in {a for a, _, _ in spans(after, after.dense(vector, k=20)[1])}
    with backend.open_writer(location) as writer:
        writer.compact()
    assert set(backend.open_reader(location).article_by_id) == set(after.article_by_id)
    for name in after.milvus.names[2:]:  # the replaced and deleted rows are gone from the engine too
        count = after.milvus.client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]
        assert count == (after.passage_count if name.endswith("passages") else after.sentence_count)


def test_a_commit_is_seen_whole_or_not_at_all_and_the_next_writer_recovers(tmp_path, seeds, encoder, monkeypatch):
    location = ms.MilvusLocation(str(tmp_path / "index.db"))
    write(location, Change(upserts=seeds[:3]))

    def crash(self, what, *more, **named):
        if what:  # (a writer opening the index deletes no versions, [], since nothing was replaced)
            raise KeyboardInterrupt  # killed between two steps of a commit

    replaced = embed(shortened(seeds[0].article, 500), encoder)
    for step, switched in ((ms.MilvusWriter, "_switch"), (ms.MilvusWriter, "_delete_versions")):
        with monkeypatch.context() as patch:
            patch.setattr(step, switched, crash)  # before the state row switches to the commit, or after
            with pytest.raises(KeyboardInterrupt), backend.open_writer(location) as writer:
                writer.commit(Change(upserts=[replaced, seeds[3]]), model=writer.model, chunking=CHUNKING)
        reader = backend.open_reader(location)
        live = seeds[:3] if switched == "_switch" else [replaced, *seeds[1:4]]
        assert {i: a.text for i, a in reader.article_by_id.items()} == {e.article.id: e.article.text for e in live}
    write(location, Change(upserts=[seeds[4]]))  # the next writer deletes what the crashes left, then commits
    reader = backend.open_reader(location)
    assert reader.article_count == 5
    count = reader.milvus.client.query(reader.milvus.passages, filter="", output_fields=["count(*)"])[0]["count(*)"]
    assert count == reader.passage_count
    words = {t for e in seeds for text in ms._passage_texts(e) for t in text.split()}
    live = [replaced, *seeds[1:]]  # the passage frequencies count neither the crashed commit nor the replaced version
    assert reader.counted and {t: reader.passage_frequency(t) for t in words} == live_frequencies(live, words)


def test_sources_are_recorded_replaced_and_dropped(location, seeds):
    write(location, Change(upserts=seeds[:1], sources={"a.txt": backend.Source("1"), "b.jsonl": backend.Source("2")}))
    write(location, Change(sources={"b.jsonl": backend.Source("3", [["b.jsonl:4", "bad"]])}, dropped_sources=["a.txt"]))
    with backend.open_writer(location) as writer:
        assert writer.sources() == {"b.jsonl": backend.Source("3", [["b.jsonl:4", "bad"]])}
        assert writer.indexed(seeds[0].article.id).hash == seeds[0].article.hash
        assert writer.with_text(backend.text_key(seeds[0].article)).id == seeds[0].article.id
        assert writer.model["dimension"] == 384 and writer.chunking == CHUNKING


def test_a_bulk_write_is_searched_through_its_indexes_and_filtered_search_keeps_its_recall(tmp_path, seeds):
    """Milvus Lite searched rows written in bulk by brute force until the collection was released and loaded again;
    HNSW with a filter that admits 1% of the passages found a third of the true nearest ten at Milvus's ef."""
    from milvus_lite import server_manager_instance

    rng = np.random.default_rng(0)
    pool = np.concatenate([e.sentence_vectors for e in seeds])
    count, template = 4000, seeds[0]
    vectors = pool[rng.integers(0, len(pool), count)] + 0.3 * _unit(rng.standard_normal((count, pool.shape[1])))
    vectors = _unit(vectors).astype(np.float32)
    one = [dataclasses.replace(template.passages[0], first_sentence=0, sentence_stop=1)]
    upserts = [
        Embedded(dataclasses.replace(template.article, id=f"a{i}", outlet="Rare" if i % 100 == 0 else "Common"),
                 template.sentences[:1], one, vectors[i : i + 1], vectors[i : i + 1], [["word"]])
        for i in range(count)
    ]  # fmt: skip
    location = ms.MilvusLocation(str(tmp_path / "index.db"))
    write(location, Change(upserts=upserts))
    database = server_manager_instance._servers[os.path.abspath(location.uri)][1]
    for name in ("news_passages", "news_sentences"):  # BM25 is scored from posting lists made at search time
        collection = database.get_collection(name)
        assert collection._memtable.size() == 0  # nothing left to brute force in memory
        segments = [s for s in collection._segment_cache.values() if s.num_rows]
        assert segments and all("vector" in s.indexes for s in segments)
    reader = backend.open_reader(location)
    rare = Filters(outlets=frozenset({"Rare"}))
    recalls = []
    for query in _unit(pool[:20] + 0.3 * _unit(rng.standard_normal((20, pool.shape[1])))).astype(np.float32):
        scores = vectors @ query
        truth = {f"a{i}" for i in sorted(range(0, count, 100), key=lambda i: -scores[i])[:10]}
        found = {reader.article(a).id for a in reader.passage_table(reader.dense(query, k=10, filters=rare)[1])[:, 0]}
        recalls.append(len(found & truth) / 10)
    assert np.mean(recalls) >= 0.95


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_a_second_process_on_a_milvus_lite_folder_gets_a_clear_error(tmp_path, seeds):
    location = ms.MilvusLocation(str(tmp_path / "index.db"))
    write(location, Change(upserts=seeds[:1]))
    backend.open_reader(location)  # this process holds the folder
    script = (
        "import sys; from embeddings import backend, milvus_store as ms\n"
        "try:\n    backend.open_reader(ms.MilvusLocation(sys.argv[1]))\n"
        "except backend.StoreError as error:\n    print(error); sys.exit(2)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, location.uri], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "open in another process" in done.stdout and "milvus-lite server --data-dir" in done.stdout


def test_an_empty_location_and_another_model_are_refused(location, seeds):
    with pytest.raises(StoreError, match="No index in Milvus"):
        backend.open_reader(location)
    write(location, Change(upserts=seeds[:1]))
    with pytest.raises(StoreError, match="built with the model"):
        backend.open_reader(location, model_fingerprint="another")
    assert backend.recorded_model(location)["fingerprint"] == "f"


def live_frequencies(live: list[Embedded], words: set[str]) -> dict[str, int]:
    """Return how many passages of `live` hold each of `words` in their stored BM25 text."""
    texts = [set(text.split()) for e in live for text in ms._passage_texts(e)]
    return {word: sum(word in text for text in texts) for word in words}


def test_passage_frequencies_are_counted_at_each_commit_and_read_by_key(location, seeds, encoder, monkeypatch):
    write(location, Change(upserts=seeds[:3]))
    write(location, Change(upserts=seeds[3:]))
    before = backend.open_reader(location)  # a reader of an earlier generation reads the counts before the change
    shorter = embed(shortened(seeds[0].article, 600), encoder)
    write(location, Change(upserts=[shorter], deletes=[seeds[4].article.id]))
    live = [shorter, *seeds[1:4]]
    words = {t for e in seeds for text in ms._passage_texts(e) for t in text.split()} | {"nowhere"}
    reader = backend.open_reader(location)
    assert reader.counted and before.counted
    for one in (reader, before):  # read by key: a text match would answer -1 here
        monkeypatch.setattr(one, "_matched_frequency", lambda term: -1)
    assert {t: reader.passage_frequency(t) for t in words} == live_frequencies(live, words)
    assert {t: before.passage_frequency(t) for t in words} == live_frequencies(seeds, words)


def test_a_count_that_fell_behind_is_matched_by_text_until_compaction_counts_again(location, seeds):
    write(location, Change(upserts=seeds))
    with backend.open_writer(location) as writer:  # as if a run had stopped between its commit and its count
        writer._switch(writer.number, writer.model, writer.chunking, frequencies=None)
    reader = backend.open_reader(location)
    assert not reader.counted and reader.passage_frequency("peskov") == live_frequencies(seeds, {"peskov"})["peskov"]
    with backend.open_writer(location) as writer:
        writer.compact()
    words = {t for e in seeds for text in ms._passage_texts(e) for t in text.split()}
    reader = backend.open_reader(location)
    assert reader.counted
    assert {t: reader.passage_frequency(t) for t in words} == live_frequencies(seeds, words)
