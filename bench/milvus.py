"""Benchmark: search latency and recall@10 against exact search on Milvus Lite, beside the local backend.

Run from the repository root:  python bench/milvus.py [--passages 100000] [--queries 200]

Both backends get the same corpus through the storage seam (embeddings/backend.py): real passages of BBC News and
Reuters-21578 articles (../shared/data), embedded for real, repeated as one-passage articles whose vectors are the
real ones plus noise of norm 0.3 (cosine about 0.96 to the original), with their real BM25 terms. Each article gets
one of 100 outlets in turn and one of 3,650 days, so that a filter on one outlet admits 1% of the passages, on ten
outlets 10%, and on a year about 10%. Questions are new points near real passages. Recall@10 is measured against an
exact inner-product search over the same vectors (numpy), restricted to the filter. Answers are timed on questions made
of the first ten words of real passages: the retrieval an answer starts with (Retriever.search: dense, BM25 and
sentence rankings fused) and a whole answer (Assistant.ask, the question's encoding included).
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.service import Assistant  # noqa: E402
from embeddings import backend  # noqa: E402
from embeddings.articles import Article, read_articles  # noqa: E402
from embeddings.backend import Change, Embedded, Filters  # noqa: E402
from embeddings.encoder import Encoder  # noqa: E402
from embeddings.indexer import CHUNKING, embedding_texts  # noqa: E402
from embeddings.milvus_store import MilvusLocation  # noqa: E402
from embeddings.passages import Passage, chunk_article, passage_document  # noqa: E402
from embeddings.terms import terms  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CORPUS = ["bbc_news/bbc_news.jsonl", "reuters21578/reuters21578.jsonl"]
FIRST_DAY = datetime.date(2000, 1, 1)
FILTERS = {
    "none": None,
    "1 outlet (1%)": Filters(outlets=frozenset({"Outlet 07"})),
    "10 outlets (10%)": Filters(outlets=frozenset(f"Outlet {n:02d}" for n in range(10))),
    "a year (10%)": Filters(date_from="2003-01-01", date_to="2003-12-31"),
}
COMMIT = 10_000
"""Articles per commit, as the indexer commits batches."""


def real_passages(encoder: Encoder, articles_per_file: int) -> tuple[list[str], list[list[str]], np.ndarray]:
    """Return the texts, BM25 terms and unit vectors of the passages of real BBC and Reuters articles."""
    articles: list[Article] = []
    for name in CORPUS:
        with open(DATA / name, "rb") as handle:
            lines = b"".join(line for line in islice(handle, articles_per_file * 2) if len(line.split()) > 60)
        articles += read_articles(Path(name), lines, display_path=name)[0][:articles_per_file]
    texts, passage_terms = [], []
    for article in articles:
        sentences, passages = chunk_article(article, **CHUNKING)
        texts += embedding_texts(article, sentences, passages)[: len(passages)]
        passage_terms += [terms(passage_document(article, sentences[p.first_sentence : p.sentence_stop])) or [""]
                          for p in passages]  # fmt: skip
    return texts, passage_terms, encoder.encode(texts)


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def corpus(count: int, texts: list[str], passage_terms: list[list[str]], pool: np.ndarray, rng) -> tuple:
    """Return `count` one-passage articles made of the real passages (cycled) and their noisy vectors."""
    rows = np.arange(count) % len(pool)
    vectors = unit(pool[rows] + 0.3 * unit(rng.standard_normal(pool[rows].shape)))
    embedded = []
    for i, row in enumerate(rows.tolist()):
        text = texts[row]
        day = FIRST_DAY + datetime.timedelta(days=i % 3650)
        article = Article(f"b{i:07d}", text, f"bench/{i // COMMIT}.jsonl", outlet=f"Outlet {i % 100:02d}",
                          date=day.isoformat(), blocks=((0, len(text)),))  # fmt: skip
        one = [Passage(0, len(text), 0, 1)]
        embedded.append(Embedded(article, [(0, len(text))], one, vectors[i : i + 1], vectors[i : i + 1],
                                 [passage_terms[row]]))  # fmt: skip
    return embedded, vectors


def build(location, embedded: list[Embedded], model: dict) -> float:
    """Write the corpus to `location` in commits of COMMIT articles; return the seconds taken (indexes included)."""
    started = time.perf_counter()
    with backend.open_writer(location, rebuild=True) as writer:
        for first in range(0, len(embedded), COMMIT):
            writer.commit(Change(upserts=embedded[first : first + COMMIT]), model=model, chunking=CHUNKING)
    return time.perf_counter() - started


def segments_indexed(location: MilvusLocation) -> str:
    """Return how many of Milvus Lite's segments of passages and sentences have their vector index attached.

    Read from the engine running in this process: a segment without one is searched by brute force.
    """
    import os

    from milvus_lite import server_manager_instance

    database = server_manager_instance._servers[os.path.abspath(location.uri)][1]
    segments = [
        segment
        for name in (f"{location.prefix}_passages", f"{location.prefix}_sentences")
        for segment in database.get_collection(name)._segment_cache.values()
        if segment.num_rows
    ]
    return f"{sum('vector' in s.indexes for s in segments)} of {len(segments)} segments indexed"


def measure(reader, probes, vectors, embedded, filters) -> tuple[list[float], float]:
    """Return the dense search latencies (ms) and the recall@10 against exact search under `filters`."""
    admitted = np.array([filters is None or filters.admits(e.article) for e in embedded])
    latencies, recalls = [], []
    for probe in probes:
        started = time.perf_counter()
        _, rows = reader.dense(probe, k=10, filters=filters)
        latencies.append((time.perf_counter() - started) * 1000)
        scores = np.where(admitted, vectors @ probe, -np.inf)
        truth = {f"b{i:07d}" for i in np.argsort(-scores)[:10]}
        found = {reader.article(a).id for a in reader.passage_table(rows)[:, 0].tolist()}
        recalls.append(len(found & truth) / 10)
    return latencies, float(np.mean(recalls))


def timed(call, queries) -> list[float]:
    """Return the latencies (ms) of `call(query)` over `queries`."""
    latencies = []
    for query in queries:
        started = time.perf_counter()
        call(query)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def line(name: str, latencies: list[float], recall: float | None = None) -> str:
    p50, p95 = np.percentile(latencies, 50), np.percentile(latencies, 95)
    return f"  {name:34} p50 {p50:8.2f} ms   p95 {p95:8.2f} ms" + (
        f"   recall@10 {recall:.3f}" if recall is not None else ""
    )


def report(reader, probes, questions, vectors, embedded) -> None:
    """Print the latencies of dense search (with recall@10) under each filter, of BM25 and of the two fused (Milvus
    fuses them in the engine, with hybrid_search)."""
    for label, filters in FILTERS.items():
        latencies, recall = measure(reader, probes, vectors, embedded, filters)
        print(line(f"dense, filter {label}", latencies, recall), flush=True)
    print(line("BM25", timed(lambda q: reader.lexical(q, k=10), questions)))
    ten = FILTERS["10 outlets (10%)"]
    print(line("BM25, filter 10 outlets", timed(lambda q: reader.lexical(q, k=10, filters=ten), questions)))
    pairs = list(zip(probes, questions))
    print(line("dense + BM25 fused (hybrid)", timed(lambda p: reader.fused(p[0], p[1], k=10), pairs)))


def report_answers(location, encoder: Encoder, asked: list[str], answered: list[str]) -> None:
    """Print the latencies of an answer's retrieval (Retriever.search) and of whole answers (Assistant.ask)."""
    assistant = Assistant(location, encoder=encoder)
    pairs = list(zip(asked, encoder.encode(asked)))
    search = assistant.retriever.search
    print(line("answer retrieval (Retriever.search)", timed(lambda p: search(p[0], query_vector=p[1]), pairs)))
    print(line(f"answer (Assistant.ask, {len(answered)} questions)", timed(assistant.ask, answered)))


def main() -> None:
    parser = argparse.ArgumentParser(description="Milvus Lite beside the local backend: latency and recall@10.")
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--answers", type=int, default=20, help="questions answered whole (Assistant.ask)")
    parser.add_argument("--articles", type=int, default=150, help="real articles per source file for the vectors")
    args = parser.parse_args()

    encoder = Encoder()
    texts, passage_terms, pool = real_passages(encoder, args.articles)
    rng = np.random.default_rng(0)
    embedded, vectors = corpus(args.passages, texts, passage_terms, pool, rng)
    near = pool[rng.integers(0, len(pool), args.queries)]
    probes = unit(near + 0.3 * unit(rng.standard_normal(near.shape)))
    questions = [passage_terms[i][:6] for i in rng.integers(0, len(pool), args.queries)]
    asked = [" ".join(texts[i].split()[:10]) for i in np.random.default_rng(1).integers(0, len(pool), args.queries)]
    answered = asked[: args.answers]
    print(f"{len(pool)} real passages embedded; corpus of {args.passages:,} one-passage articles; "
          f"{args.queries} questions per figure.\n", flush=True)  # fmt: skip

    work = Path(tempfile.mkdtemp(prefix="milvus-bench-"))
    locations = {"Milvus Lite": MilvusLocation(str(work / "milvus.db")), "local files": work / "local"}
    for name, location in locations.items():
        seconds = build(location, embedded, encoder.describe())
        reader = backend.open_reader(location)
        state = f"; {segments_indexed(location)}" if isinstance(location, MilvusLocation) else ""
        print(f"{name}: written and indexed in {seconds:.0f} s ({args.passages // COMMIT or 1} commits{state})")
        report(reader, probes, questions, vectors, embedded)
        report_answers(location, encoder, asked, answered)
        if isinstance(location, MilvusLocation):
            print(f"  after the searches: {segments_indexed(location)}")
        print(flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
