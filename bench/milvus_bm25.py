"""Benchmark: Milvus Lite's BM25 after separate indexing runs, against the same articles on local files.

Run from the repository root:  python bench/milvus_bm25.py

Milvus Lite scores BM25 with the statistics (passage count, mean length, document frequencies) of each segment
alone, and every indexing run ends with a flush that writes new segments. The seed files are indexed in 1 to 5
separate runs (`assistant index FILE ...`, through the real indexer), then once more with one article shortened.
For each, the script prints the passage segments (rows each), the largest relative difference of the top 10 BM25
scores from those of the local backend (global statistics, equal to a fresh build), and for how many questions the
top 10 differ, before and after `assistant index --compact` (Writer.compact: Milvus's compact).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from embeddings import backend  # noqa: E402
from embeddings.encoder import Encoder  # noqa: E402
from embeddings.indexer import update_index  # noqa: E402
from embeddings.milvus_store import MilvusLocation  # noqa: E402
from embeddings.terms import terms  # noqa: E402

QUESTIONS = [
    "How did Peskov describe the results of the NATO summit?",
    "What weapons will the US station in Germany?",
    "Are there prerequisites for negotiations?",
    "Who did Belousov call?",
    "What did Peskov say about China?",
    "Has Macron asked for a call with Putin?",
    "What does Article 5 of NATO's treaty say?",
    "Which countries does Peskov say are fighting against Russia?",
]


def segments(location: MilvusLocation) -> list[int]:
    """Return the rows of each segment of passages, read from the Milvus Lite engine running in this process."""
    from milvus_lite import server_manager_instance

    database = server_manager_instance._servers[os.path.abspath(location.uri)][1]
    collection = database.get_collection(f"{location.prefix}_passages")
    return [segment.num_rows for segment in collection._segment_cache.values() if segment.num_rows]


def top_bm25(reader) -> list[dict]:
    """Return, per question, {(article id, start, end): BM25 score} of the 10 best passages."""
    found = []
    for question in QUESTIONS:
        scores, rows = reader.lexical(terms(question), k=10)
        table = reader.passage_table(rows)
        spans = [(reader.article(a).id, s, e) for a, s, e in table[:, :3].tolist()]
        found.append(dict(zip(spans, scores.tolist())))
    return found


def difference(found: list[dict], truth: list[dict]) -> str:
    """Return the largest relative difference of the scores of passages both found, and how many top 10s differ."""
    worst = max(abs(f[s] - t[s]) / t[s] for f, t in zip(found, truth) for s in f.keys() & t.keys())
    differ = sum(list(f) != list(t) for f, t in zip(found, truth))
    return f"BM25 off by up to {worst:6.1%}, top 10 differs for {differ} of {len(truth)} questions"


def index_runs(groups: list[list[Path]], location, encoder: Encoder) -> None:
    """Index each group of files in a run of its own."""
    for files in groups:
        update_index(files, index_dir=location, encoder=encoder, progress=False)


def report(label: str, location: MilvusLocation, truth: list[dict]) -> None:
    """Print the segments and the BM25 differences from `truth`, before and after a compaction."""
    before = difference(top_bm25(backend.open_reader(location)), truth)
    print(f"{label:34} segments {segments(location)!s:14} {before}")
    with backend.open_writer(location) as writer:
        writer.compact()
    after = difference(top_bm25(backend.open_reader(location)), truth)
    print(f"{'  after --compact':34} segments {segments(location)!s:14} {after}", flush=True)


def main() -> None:
    encoder = Encoder()
    work = Path(tempfile.mkdtemp(prefix="milvus-bm25-"))
    files = sorted((ROOT / "seeds").glob("*.txt"))
    update_index(files, index_dir=work / "local", encoder=encoder, progress=False)
    truth = top_bm25(backend.open_reader(work / "local"))
    for runs in range(1, 6):
        location = MilvusLocation(str(work / f"runs{runs}.db"))
        index_runs([list(group) for group in np.array_split(np.array(files, dtype=object), runs)], location, encoder)
        report(f"{runs} run(s), {len(files)} files", location, truth)

    changed = work / "seeds"
    shutil.copytree(ROOT / "seeds", changed)
    copies = sorted(changed.glob("*.txt"))
    location = MilvusLocation(str(work / "changed.db"))
    index_runs([copies], location, encoder)
    copies[0].write_text(copies[0].read_text()[:600])  # the article shortened: its old passages deleted
    index_runs([copies], location, encoder)
    local = work / "changed-local"
    update_index(copies, index_dir=local, encoder=encoder, progress=False)
    report("1 run, then 1 article shortened", location, top_bm25(backend.open_reader(local)))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
