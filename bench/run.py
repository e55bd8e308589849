"""Benchmark: encoding throughput, re-indexing, answer latency, cold start, memory and disk, from seeds to 1M passages.

Run from the repository root:  python bench/run.py [--sizes seeds,10k,100k,1m] [--repeat N] [--quick]

Every figure is a median over --repeat runs, with min and max. Latencies are also given as a ratio to the bare cost of
encoding one question, measured in the same process: that ratio is stable on a noisy machine. Corpora:
- throughput: real BBC News and Reuters-21578 articles (../shared/data), chunked and embedded as the indexer does;
- seeds: the five seed articles, embedded for real;
- 10k, 100k, 1m: BBC+Reuters articles repeated under new ids (bench/ingest.py copies), indexed by the real indexer
  (update_index) with an encoder stand-in: real vectors of sampled passages plus noise of norm 0.3 (cosine about
  0.96 to the original); BM25 over their real terms.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import CORPUS, ReusedVectors, copies  # noqa: E402
from embeddings import store as index_store  # noqa: E402
from embeddings import vector_index  # noqa: E402
from embeddings.articles import read_articles  # noqa: E402
from embeddings.encoder import Encoder  # noqa: E402
from embeddings.indexer import embedding_texts, update_index  # noqa: E402
from embeddings.passages import CHUNKING, chunk_article  # noqa: E402

SIZES = {"seeds": 0, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}
QUESTIONS = [
    "What weapons will the US station in Germany?",
    "Who did Belousov call?",
    "How much Ukrainian territory does Russia control?",
    "What did Peskov say about China?",
    "Has Macron asked for a call with Putin?",
    "When was the Peskov interview recorded?",
    "What did the central bank say about interest rates?",
    "How did the company's profits change last year?",
]


def spread(values: list[float]) -> tuple[float, float, float]:
    """Return the median, min and max of `values`."""
    return statistics.median(values), min(values), max(values)


def show(values: list[float], unit: str = "", digits: int = 1) -> str:
    """Return 'median (min-max) unit' for `values`."""
    middle, low, high = spread(values)
    return f"{middle:,.{digits}f} ({low:,.{digits}f}-{high:,.{digits}f}){unit}"


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def peak_rss_mb() -> float:
    """Return this process's peak resident memory in MB (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def encode_question_ms(encoder: Encoder, repeat: int) -> list[float]:
    """Return the median time, per run, to encode one question alone, in ms."""
    runs = []
    for _ in range(repeat):
        times = []
        for question in QUESTIONS:
            started = time.perf_counter()
            encoder.encode([question])
            times.append((time.perf_counter() - started) * 1000)
        runs.append(statistics.median(times))
    return runs


def sample_articles(count: int) -> list:
    """Return `count` real articles, half BBC and half Reuters, spread over the corpus."""
    chosen = []
    for path in CORPUS:
        articles = read_articles(path, path.read_bytes(), display_path=path.name)[0]
        step = max(1, len(articles) // (count // 2))
        chosen += articles[::step][: count // 2]
    return chosen


def throughput(fast: Encoder, baseline, articles: list, repeat: int) -> tuple[dict, np.ndarray]:
    """Return passages/s and words/s of plain sentence-transformers fp32 and of `fast`, and the fast vectors."""
    texts, passages = [], 0
    for article in articles:
        sentences, chunks = chunk_article(article, **CHUNKING)
        texts += embedding_texts(article, sentences, chunks)
        passages += len(chunks)
    words = sum(len(a.text.split()) for a in articles)
    seconds = {"fp32": [], "fast": []}
    for _ in range(repeat):
        started = time.perf_counter()
        baseline.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        seconds["fp32"].append(time.perf_counter() - started)
        started = time.perf_counter()
        vectors = fast.encode(texts)
        seconds["fast"].append(time.perf_counter() - started)
    result = {"articles": len(articles), "passages": passages, "texts": len(texts), "words": words}
    for name, runs in seconds.items():
        result[name] = {"passages_s": [passages / s for s in runs], "words_s": [words / s for s in runs]}
    result["ratio"] = [a / b for a, b in zip(seconds["fp32"], seconds["fast"])]
    return result, vectors


def scaled_index(work: Path, passages: int, stand_in: ReusedVectors) -> dict:
    """Build an index of about `passages` passages through the indexer; return its build facts and recall."""
    files = copies(work / f"copies-{passages}", passages, tag=f"c{passages}")
    started = time.perf_counter()
    report = update_index(files, index_dir=work / f"index-{passages}", encoder=stand_in, progress=False)
    facts = {"passages": report.passages, "write_s": time.perf_counter() - started}
    shutil.rmtree(work / f"copies-{passages}", ignore_errors=True)
    store = index_store.load(work / f"index-{passages}")
    if any(vector_index.centroids(segment.index) is not None for segment in store.segments):
        facts["recall@10"] = approximate_recall(store, stand_in)
    return facts


def approximate_recall(store: index_store.Store, stand_in: ReusedVectors, *, queries: int = 200) -> float:
    """Return the recall@10 of the store's dense search (every segment) against exact inner-product search over the
    same float vectors."""
    import faiss

    vectors = np.concatenate([segment.index.reconstruct_n(0, segment.index.ntotal) for segment in store.segments])
    rng = np.random.default_rng(1)
    probes = stand_in.perturbed(rng.integers(0, len(stand_in.pool), queries))  # new points near real passages
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    truth = exact.search(probes, 10)[1]
    found = [store.dense(probe, k=10)[1] for probe in probes]
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)]))


def query_worker(index_dir: Path, repeat: int) -> None:
    """Load the index as `assistant ask` does, answer the questions `repeat` times, print the figures as JSON."""
    from assistant import charts, render
    from assistant.answer import Answer
    from assistant.conversation import Conversation
    from assistant.export import Turn, turn_markdown
    from assistant.service import Assistant
    from embeddings.terms import terms

    def page_turn(question: str, history: list) -> Answer:
        """Answer one chat turn as app.py does, less Streamlit: reload check, overview, ask with history, render.

        Rendering covers the statements, source cards, compare view, timeline spec and the turn's Markdown.
        """
        assistant.reload_if_changed()
        render.overview_html(assistant.overview())
        answer = assistant.ask(question, history=history)
        turn_markdown(Turn(question, answer))
        if answer.abstained:
            return answer
        render.answer_html(answer)
        render.compare_html(answer)
        cited = render.sources(answer)
        for source in cited:
            render.source_html(source, 0)
        chart = charts.timeline(cited)
        if chart is not None:
            chart.to_dict()
        return answer

    started = time.perf_counter()
    assistant = Assistant(index_dir)
    assistant.ask(QUESTIONS[0])  # first answer: the model is loaded
    load_s = time.perf_counter() - started
    assistant.store.verify()  # warm figures: the checksum check started at load has finished (5 s of a core at 1M)
    verified_s = time.perf_counter() - started
    encode_ms = encode_question_ms(assistant.encoder, repeat)
    ask, page, dense, lexical = [], [], [], []
    retriever = assistant.retriever
    pool = min(retriever.candidates, retriever.store.passage_count)
    for _ in range(repeat):
        conversation = Conversation()  # the page keeps each turn's cited spans for the next one
        for question in QUESTIONS:
            started = time.perf_counter()
            assistant.ask(question)
            ask.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            conversation.add(question, page_turn(question, conversation.turns))
            page.append((time.perf_counter() - started) * 1000)
            vector = assistant.encoder.encode([question])[0]
            started = time.perf_counter()
            retriever.dense(vector, k=pool)
            dense.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            retriever.lexical(terms(question), k=pool)
            lexical.append((time.perf_counter() - started) * 1000)
    print(json.dumps({
        "load_s": load_s, "verified_s": verified_s, "encode_ms": encode_ms, "ask_ms": ask, "page_ms": page,
        "dense_ms": dense, "lexical_ms": lexical,
        "rss_mb": peak_rss_mb(), "backend": assistant.encoder.backend,
    }))  # fmt: skip


def run_worker(index_dir: Path, repeat: int) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--worker", str(index_dir), "--repeat", str(repeat)],
        check=True, capture_output=True, text=True, cwd=ROOT,
    ).stdout  # fmt: skip
    return json.loads(output.strip().splitlines()[-1])


def cold_start(index_dir: Path, repeat: int) -> list[float]:
    """Return the wall time of `python -m assistant ask` on the seeds, from process start to answer, in s."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "assistant", "ask", QUESTIONS[1], "--index-dir", str(index_dir)],
            check=True, capture_output=True, cwd=ROOT,
        )  # fmt: skip
        runs.append(time.perf_counter() - started)
    return runs


def disk_bytes(index_dir: Path) -> int:
    manifest = index_store.read_manifest(index_dir)
    return sum(sum(segment["files"].values()) for segment in manifest["segments"])


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def arguments() -> argparse.Namespace:
    """Return the command line's options, with --quick and the sizes resolved."""
    parser = argparse.ArgumentParser(description="Benchmark the assistant: speed, memory and disk by corpus size.")
    parser.add_argument("--sizes", default="seeds,10k,100k,1m", help="comma-separated: seeds,10k,100k,1m")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median, min, max)")
    parser.add_argument("--quick", action="store_true", help="sizes seeds,10k, 3 runs, fewer articles")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeat = "seeds,10k", 3
    args.sizes = [s.strip().lower() for s in args.sizes.split(",")]
    unknown = [s for s in args.sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown size {unknown[0]!r}; use {', '.join(SIZES)}")
    return args


def report_throughput(fast: Encoder, articles: int, repeat: int) -> np.ndarray:
    """Print encoding throughput of both backends on real articles; return the fast vectors (the stand-in's pool)."""
    baseline = Encoder(fast.path, backend="torch").model
    through, pool = throughput(fast, baseline, sample_articles(articles), repeat)
    ratio = spread(through["ratio"])[0]
    print(f"Indexing throughput: {through['articles']} real BBC+Reuters articles, {through['passages']} passages, "
          f"{through['texts']} texts embedded (passages and their sentences), {through['words']:,} words")  # fmt: skip
    for name, label in (("fp32", "sentence-transformers fp32"), ("fast", f"{fast.backend} (this project)")):
        print(f"  {label:32} {show(through[name]['passages_s'], ' passages/s')}   "
              f"{show(through[name]['words_s'], ' words/s', 0)}")  # fmt: skip
    print(f"  ratio fast/fp32: {show(through['ratio'], 'x', 2)}   target >= 2x: {verdict(ratio >= 2)}\n", flush=True)
    return pool


def report_reindex(base_dir: Path, stand_in: ReusedVectors, repeat: int) -> None:
    """Print the BBC+Reuters build (vectors reused) and the time of a re-index that changes nothing."""
    started = time.perf_counter()
    report = update_index(CORPUS, index_dir=base_dir, encoder=stand_in, progress=False)
    print(f"BBC+Reuters index: {report.articles:,} articles, {report.passages:,} passages, built in "
          f"{time.perf_counter() - started:.0f} s (vectors reused, see above).")  # fmt: skip
    reindex = []
    for _ in range(repeat):
        started = time.perf_counter()
        again = update_index(CORPUS, index_dir=base_dir, progress=False)
        reindex.append(time.perf_counter() - started)
        assert not again.changed
    print(f"  re-index, nothing changed (in process, model identity included): {show(reindex, ' s', 2)}   "
          f"target < 2 s: {verdict(spread(reindex)[0] < 2)}\n", flush=True)  # fmt: skip


def measure_sizes(sizes: list[str], work: Path, fast: Encoder, stand_in: ReusedVectors, repeat: int) -> list[tuple]:
    """Build each corpus size and measure its questions in a fresh process; return one row of figures per size."""
    rows = []
    for size in sizes:
        index_dir = work / size
        if size == "seeds":
            facts = {
                "passages": update_index([ROOT / "seeds"], index_dir=index_dir, encoder=fast, progress=False).passages
            }
        else:
            facts = scaled_index(work, SIZES[size], stand_in)
            index_dir = work / f"index-{SIZES[size]}"
        figures = run_worker(index_dir, repeat)
        encode = statistics.median(figures["encode_ms"])
        p50, p95 = percentile(figures["ask_ms"], 50), percentile(figures["ask_ms"], 95)
        rows.append((size, facts, figures, encode, p50, p95, disk_bytes(index_dir)))
        print(f"{size}: {facts['passages']:,} passages; {json.dumps({k: round(v, 3) for k, v in facts.items()})}",
              flush=True)  # fmt: skip
    return rows


def print_latency_table(rows: list[tuple]) -> None:
    """Print the warm latency, load, memory, disk and recall of each size, with the targets."""
    print("\nWarm question-to-answer latency. ask: Assistant.ask, the CLI path. page: a chat turn as app.py runs it")
    print("(reload check, corpus overview, the question with the earlier ones as history, answer and sources")
    print("rendered), less Streamlit itself. Timed after the checksum check that loading starts on a second thread")
    print('has finished ("checked": seconds from the start of loading); recall@10: the whole store\'s dense search.')
    print(f"{'corpus':>6} {'passages':>10} {'encode q':>9} {'ask p50':>9} {'ask p95':>9} {'p50/enc':>8} "
          f"{'page p50':>9} {'page p95':>9} {'page/enc':>8} {'dense p50':>9} {'bm25 p50':>9} {'load':>7} "
          f"{'checked':>7} {'peak RSS':>9} {'disk/pass':>10} {'recall@10':>9}  targets (on ask)")  # fmt: skip
    for size, facts, figures, encode, p50, p95, disk in rows:
        if size == "seeds":
            target = f"p50 <= 1.5x encode: {verdict(p50 <= 1.5 * encode)}"
        else:
            target = f"p50 <= 150 ms: {verdict(p50 <= 150)}; <= 10x encode: {verdict(p50 <= 10 * encode)}"
        if size == "1m":
            target += (
                f"; RSS <= 3 GB: {verdict(figures['rss_mb'] <= 3072)}; load <= 3 s: {verdict(figures['load_s'] <= 3)}"
            )
        if "recall@10" in facts:
            target += f"; recall@10 >= 0.95: {verdict(facts['recall@10'] >= 0.95)}"
        recall = f"{facts['recall@10']:.3f}" if "recall@10" in facts else "exact"
        page50, page95 = percentile(figures["page_ms"], 50), percentile(figures["page_ms"], 95)
        print(f"{size:>6} {facts['passages']:>10,} {encode:>7.2f}ms {p50:>7.2f}ms {p95:>7.2f}ms {p50 / encode:>7.2f}x "
              f"{page50:>7.2f}ms {page95:>7.2f}ms {page50 / encode:>7.2f}x "
              f"{percentile(figures['dense_ms'], 50):>7.2f}ms {percentile(figures['lexical_ms'], 50):>7.2f}ms "
              f"{figures['load_s']:>6.1f}s {figures['verified_s']:>6.1f}s {figures['rss_mb']:>7.0f}MB "
              f"{disk / max(facts['passages'], 1):>8,.0f} B "
              f"{recall:>9}  {target}")  # fmt: skip


def main() -> None:
    args = arguments()
    if args.worker:
        query_worker(args.worker, args.repeat)
        return
    fast = Encoder()
    print(f"Model {fast.name}; fast backend: {fast.backend}; {args.repeat} runs per figure: median (min-max).")
    print("CPU shared with other jobs: compare ratios measured within this run.\n", flush=True)
    work = Path(tempfile.mkdtemp(prefix="assistant-bench-"))
    try:
        stand_in = ReusedVectors(fast, report_throughput(fast, 24 if args.quick else 48, args.repeat))
        report_reindex(work / "bbc-reuters", stand_in, args.repeat)
        print_latency_table(measure_sizes(args.sizes, work, fast, stand_in, args.repeat))
        if "seeds" in args.sizes:
            cold = cold_start(work / "seeds", args.repeat)
            print(f"\nCold start, `python -m assistant ask` on the seeds, process start to answer: "
                  f"{show(cold, ' s', 2)}   target <= 8 s: {verdict(spread(cold)[0] <= 8)}")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
