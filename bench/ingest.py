"""Benchmark: ingest through the real indexer. Bulk build from the JSONL files as given; adds at 10k, 100k, 1M passages.

Run from the repository root:
    python bench/ingest.py bulk [--limit-texts N]       # BBC + Reuters JSONL, embedded for real, one update_index call
    python bench/ingest.py scale [--sizes 10k,100k,1m]  # add 1 and 1,000 articles to indexes of each size
    python bench/ingest.py compact [--sizes 100k]       # peak RSS of `assistant index --compact` at each size

bulk: texts embedded per second and peak RSS of the whole build (model loading included).
scale: each index is built by the real indexer (update_index) from BBC+Reuters articles repeated under new ids, with
an Encoder stand-in giving each text a real vector of a BBC+Reuters passage plus noise (embedding 1M passages for real
is impossible here), in batches of 2,000,000 texts like a bulk import; then 1 article is added `repeat` times, then
1,000 articles `repeat` times, with the default batch size, and the time (embedding excluded: the stand-in's time
is measured and subtracted) and bytes written are printed, with the load time of each index and bench/run.py's
latency figures over it as the adds left it.
compact: each index is built like scale's, then 1,000 new articles are added and 1,000 of the base updated (their old
rows deleted), then `python -m assistant index --compact` runs in a child process: its time and its peak RSS (measured
by /usr/bin/time) are printed.
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

from embeddings import store as index_store  # noqa: E402
from embeddings.encoder import Encoder  # noqa: E402
from embeddings.indexer import update_index  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CORPUS = [DATA / "bbc_news" / "bbc_news.jsonl", DATA / "reuters21578" / "reuters21578.jsonl"]
SIZES = {"10k": 10_000, "100k": 100_000, "300k": 300_000, "1m": 1_000_000}


def peak_rss_mb() -> float:
    """Return this process's peak resident memory in MB."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


class Interrupted(Exception):
    """Raised from the progress callback once enough texts are embedded (a measured prefix)."""


def bulk(index_dir: Path, limit_texts: int | None) -> None:
    """Build an index from the two JSONL files in one update_index call; print texts/s and peak RSS."""
    started = time.perf_counter()
    encoder = Encoder()
    progress = {"texts": 0, "at": time.perf_counter()}

    def count(done: int, total: int) -> None:
        progress["texts"], progress["at"] = done, time.perf_counter()
        if limit_texts and done >= limit_texts:
            raise Interrupted

    try:
        report = update_index(CORPUS, index_dir=index_dir, encoder=encoder, progress=True, on_progress=count)
        print(report.summary().splitlines()[0])
    except Interrupted:
        print(f"Stopped after {progress['texts']:,} texts (--limit-texts); what was committed stays indexed.")
    seconds = progress["at"] - started
    counts = index_store.read_manifest(index_dir)["counts"]
    print(
        f"bulk: {progress['texts']:,} texts embedded in {seconds:,.0f} s: {progress['texts'] / seconds:.1f} texts/s "
        f"(model loading included); index {counts['articles']:,} articles, {counts['passages']:,} passages; "
        f"peak RSS {peak_rss_mb():,.0f} MB"
    )


class ReusedVectors:
    """Stands in for the encoder: each text gets a real passage vector plus noise; the time it takes is recorded."""

    def __init__(self, encoder: Encoder, pool: np.ndarray, *, noise: float = 0.3, seed: int = 0):
        self.name, self.fingerprint, self.pool, self.noise = encoder.name, encoder.fingerprint, pool, noise
        self.description = encoder.describe()
        self.rng = np.random.default_rng(seed)
        jitter = self.rng.standard_normal((8192, pool.shape[1])).astype(np.float32)
        self.jitter = noise * jitter / np.linalg.norm(jitter, axis=1, keepdims=True)  # drawn from, not redrawn
        self.seconds = 0.0

    def describe(self) -> dict:
        return self.description

    def perturbed(self, rows: np.ndarray) -> np.ndarray:
        """Return unit vectors: pool rows `rows` (cycled) plus random noise of norm `noise`."""
        vectors = self.pool[rows % len(self.pool)] + self.jitter[self.rng.integers(0, len(self.jitter), len(rows))]
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def encode(self, texts: list[str], *, progress=None) -> np.ndarray:
        started = time.perf_counter()
        vectors = self.perturbed(self.rng.integers(0, len(self.pool), len(texts)))
        self.seconds += time.perf_counter() - started
        if progress:
            progress(len(texts))
        return vectors


def vector_pool(encoder: Encoder, count: int = 600) -> np.ndarray:
    """Return real vectors of `count` BBC+Reuters article openings, embedded once."""
    texts = []
    for path in CORPUS:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                text = json.loads(line).get("text") or ""
                if len(text.split()) >= 40:
                    texts.append(" ".join(text.split()[:120]))
                if len(texts) % (count // 2) == 0 and len(texts):
                    break
    return encoder.encode(texts[:count])


def copies(folder: Path, passages: int, *, tag: str, per_file: int = 20_000) -> list[Path]:
    """Write BBC+Reuters articles, repeated under new ids and with a line naming the copy, as JSONL files of
    `per_file` articles, until they hold about `passages` passages (2.1 passages an article); return the files."""
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for path in CORPUS:
        with path.open(encoding="utf-8") as handle:
            records += [r for r in map(json.loads, handle) if len((r.get("text") or "").split()) >= 20]
    wanted = max(1, int(passages / 2.1))
    files, handle = [], None
    for number in range(wanted):
        if number % per_file == 0:
            if handle:
                handle.close()
            files.append(folder / f"{tag}-{number // per_file:04d}.jsonl")
            handle = files[-1].open("w", encoding="utf-8")
        record = records[number % len(records)]
        copy = number // len(records)
        text = f"{record['text'].rstrip()}\n\nArchive copy {copy} of item {number} ({tag})."
        handle.write(json.dumps(dict(record, id=f"{record['id']}~{tag}{number}", text=text)) + "\n")
    if handle:
        handle.close()
    return files


def folder_bytes(index_dir: Path) -> dict[Path, int]:
    return {p: p.stat().st_size for p in index_dir.rglob("*") if p.is_file()}


def written_bytes(before: dict[Path, int], after: dict[Path, int]) -> int:
    """Return the bytes of files that are new or changed between two listings (what a write put on disk)."""
    return sum(size for path, size in after.items() if before.get(path) != size or path.name == "manifest.json")


def add(index_dir: Path, files: list[Path], stand_in: ReusedVectors) -> dict:
    """Add `files` to the index; return seconds (embedding excluded), bytes written and passages embedded."""
    before = folder_bytes(index_dir)
    embedding = stand_in.seconds
    started = time.perf_counter()
    report = update_index(files, index_dir=index_dir, encoder=stand_in, progress=False)
    seconds = time.perf_counter() - started - (stand_in.seconds - embedding)
    assert len(report.added) == sum(1 for file in files for _ in file.open()), report.summary()
    return {"s": seconds, "bytes": written_bytes(before, folder_bytes(index_dir)), "added": len(report.added)}


def load_seconds(index_dir: Path, repeat: int = 3) -> list[float]:
    """Return the time from loading the index to its first answer (the model loaded before), in fresh processes."""
    code = (
        "import time; from assistant.service import Assistant; from embeddings.encoder import Encoder; "
        "encoder = Encoder(); encoder.encode(['warm up']); started = time.perf_counter(); "
        f"a = Assistant({str(index_dir)!r}, encoder=encoder); "
        "a.ask('What did the central bank say about interest rates?'); print(time.perf_counter() - started)"
    )
    runs = []
    for _ in range(repeat):
        output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
        runs.append(float(output.stdout.split()[-1]))
    return runs


def print_latency(size: str, index_dir: Path, repeat: int) -> None:
    """Print bench/run.py's warm latency figures for the index as it stands after the adds (several segments)."""
    from bench.run import percentile, run_worker

    figures = run_worker(index_dir, repeat)
    encode = statistics.median(figures["encode_ms"])
    ask50 = percentile(figures["ask_ms"], 50)
    print(f"  {size} after the adds: encode q {encode:.2f} ms, ask p50 {ask50:.2f} ms ({ask50 / encode:.2f}x encode), "
          f"p95 {percentile(figures['ask_ms'], 95):.2f} ms, page p50 {percentile(figures['page_ms'], 50):.2f} ms, "
          f"dense p50 {percentile(figures['dense_ms'], 50):.2f} ms, "
          f"bm25 p50 {percentile(figures['lexical_ms'], 50):.2f} ms, load {figures['load_s']:.2f} s, "
          f"peak RSS {figures['rss_mb']:,.0f} MB", flush=True)  # fmt: skip


def scale(sizes: list[str], work: Path, repeat: int) -> None:
    """Build each size through the indexer, add 1 and 1,000 articles `repeat` times, print times and bytes."""
    encoder = Encoder()
    stand_in = ReusedVectors(encoder, vector_pool(encoder))
    rows = []
    for size in sizes:
        index_dir = work / f"index-{size}"
        started = time.perf_counter()
        base = copies(work / f"base-{size}", SIZES[size], tag=f"b{size}")
        update_index(base, index_dir=index_dir, encoder=stand_in, progress=False, batch_texts=2_000_000)
        build = time.perf_counter() - started
        counts = index_store.read_manifest(index_dir)["counts"]
        figures = {"one": [], "thousand": []}
        for name, count in (("one", 1), ("thousand", 1000)):  # each kind in a row: an add pays for its merges
            for run in range(repeat):
                files = copies(work / f"new-{size}-{name}-{run}", count * 2.1, tag=f"n{size}{name}{run}")
                figures[name].append(add(index_dir, files, stand_in))
        load = load_seconds(index_dir)
        rows.append((size, counts, build, figures, load))
        print_latency(size, index_dir, repeat)
        print(f"{size}: {counts['passages']:,} passages, {counts['articles']:,} articles, built in {build:,.0f} s;"
              f" segments now {len(index_store.read_manifest(index_dir)['segments'])}", flush=True)  # fmt: skip
        shutil.rmtree(work / f"base-{size}", ignore_errors=True)
    print("\nAdding articles through update_index (embedding excluded), median of runs; bytes written to disk:")
    header = f"{'index':>6} {'passages':>10} {'add 1':>9} {'bytes':>10} {'add 1,000':>10} {'bytes':>12}"
    print(f"{header} {'load+1st answer':>16}")
    base_one = None
    for size, counts, _build, figures, load in rows:
        one = statistics.median(f["s"] for f in figures["one"])
        thousand = statistics.median(f["s"] for f in figures["thousand"])
        base_one = base_one or one
        one_bytes = statistics.median(f["bytes"] for f in figures["one"])
        print(f"{size:>6} {counts['passages']:>10,} {one:>8.3f}s {one_bytes:>10,.0f} "
              f"{thousand:>9.2f}s {statistics.median(f['bytes'] for f in figures['thousand']):>12,.0f} "
              f"{statistics.median(load):>15.2f}s   add 1 vs 10k: {one / base_one:.2f}x")  # fmt: skip
    if len(rows) > 1:
        ratio = statistics.median(f["s"] for f in rows[-1][3]["one"]) / base_one
        print(f"target: adding 1 article at {rows[-1][0]} costs <= 1.5x what it costs at {rows[0][0]}: "
              f"{ratio:.2f}x, {'met' if ratio <= 1.5 else 'NOT met'}")  # fmt: skip
        load = statistics.median(rows[-1][4])
        print(f"target: load at {rows[-1][0]} (to the first answer) <= 3 s: {load:.2f} s, "
              f"{'met' if load <= 3 else 'NOT met'}")  # fmt: skip


def updated(file: Path, count: int) -> None:
    """Rewrite a JSONL file of `copies` with a sentence added to the text of its first `count` articles."""
    records = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines()]
    for record in records[:count]:
        record["text"] += "\nThe item was revised later."
    file.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")


def compact(sizes: list[str], work: Path) -> None:
    """Build each size like `scale`, add and update 1,000 articles, then time `assistant index --compact`."""
    encoder = Encoder()
    stand_in = ReusedVectors(encoder, vector_pool(encoder))
    for size in sizes:
        index_dir = work / f"index-{size}"
        base = copies(work / f"base-{size}", SIZES[size], tag=f"b{size}")
        update_index(base, index_dir=index_dir, encoder=stand_in, progress=False, batch_texts=2_000_000)
        update_index(copies(work / f"new-{size}", 1000 * 2.1, tag=f"n{size}"), index_dir=index_dir,
                     encoder=stand_in, progress=False)  # fmt: skip
        updated(base[-1], 1000)
        update_index(base, index_dir=index_dir, encoder=stand_in, progress=False)
        manifest = index_store.read_manifest(index_dir)
        deleted = sum(len(s["deleted"]) for s in manifest["segments"])
        started = time.perf_counter()
        command = [sys.executable, "-m", "assistant", "index", "--compact", "--quiet", "--index-dir", str(index_dir)]
        # GNU time measures the command alone (this process's own rusage of children would count what a forked
        # child shares with this one before it runs the command).
        peak_file = work / "peak-rss-kb"
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(peak_file), *command], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        seconds = time.perf_counter() - started
        peak = int(peak_file.read_text().split()[-1]) / 1024
        print(f"compact {size}: {manifest['counts']['passages']:,} live passages in {len(manifest['segments'])} "
              f"segments, {deleted:,} deleted articles; compacted in {seconds:,.1f} s, peak RSS {peak:,.0f} MB; "
              f"index {sum(folder_bytes(index_dir).values()) / 1e6:,.0f} MB on disk", flush=True)  # fmt: skip
        shutil.rmtree(work / f"base-{size}", ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark ingest through the real indexer.")
    parser.add_argument("mode", choices=("bulk", "scale", "compact"))
    parser.add_argument("--limit-texts", type=int, help="bulk: stop after this many texts (a measured prefix)")
    parser.add_argument("--sizes", default="10k,100k,1m", help="scale, compact: comma-separated: 10k,100k,1m")
    parser.add_argument("--repeat", type=int, default=3, help="scale: adds per figure (median)")
    parser.add_argument("--work", type=Path, help="folder for the indexes (default: a temporary folder, removed)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="assistant-ingest-"))
    try:
        if args.mode == "bulk":
            bulk(work / "bulk-index", args.limit_texts)
        elif args.mode == "scale":
            scale([s.strip() for s in args.sizes.split(",")], work, args.repeat)
        else:
            compact([s.strip() for s in args.sizes.split(",")], work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
