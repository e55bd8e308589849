"""Local files behind the storage seam: immutable segments named by one manifest; every change is atomic.

Layout of an index folder:

    manifest.json            model, chunking, live counts, the segments in order (files, sizes, checksums, deleted
                             article rows, BM25 length total, outlets and dates), the source files indexed
    s000007/                 one segment: the articles one write added, never modified afterwards
        catalog.sqlite       articles (row, id, hashes, source, outlet, date, full record) and the BM25 vocabulary
        articles.npy         int64 rows: text length, first passage, first sentence
        passages.npy         int64 rows: article row, start, end, first sentence, sentence stop (segment rows)
        sentences.npy        int64 rows: article row, start, end
        passages.faiss       FAISS inner-product index, exact or IVF-fp16 by size (vector_index); row i is passage i
        sentences.f16.npy    float16 unit vectors; row i is sentence i
        bm25.indptr.npy, bm25.rows.npy, bm25.tf.npy, bm25.lengths.npy   term -> passages and counts; terms per passage

A write adds a segment and marks replaced or removed articles deleted in the manifest; the manifest is replaced
last, so a crash leaves the old index or the new one. Small trailing segments are merged as they come; `compact`
merges everything; a merge reads and writes a block of rows at a time. BM25 is scored at question time from the live
passages' counts, so it equals a fresh build.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import itertools
import json
import math
import os
import re
import shutil
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import quote

import faiss
import numpy as np

from embeddings import vector_index
from embeddings.articles import Article
from embeddings.backend import (
    ARTICLE,
    END,
    FIRST_SENTENCE,
    SENTENCE_STOP,
    START,
    ArticlesById,
    Change,
    Coverage,
    Embedded,
    Filters,
    Indexed,
    Source,
    StoreError,
    reciprocal_rank_fusion,
    text_key,
)
from embeddings.encoder import same_model_folder

__all__ = ["ARTICLE", "END", "FIRST_SENTENCE", "SENTENCE_STOP", "START", "Store", "StoreError"]

FORMAT = 2
MANIFEST = "manifest.json"
LOCK = ".lock"
CATALOG = "catalog.sqlite"
FILES = (
    CATALOG,
    "articles.npy",
    "passages.npy",
    "sentences.npy",
    "passages.faiss",
    "sentences.f16.npy",
    "bm25.indptr.npy",
    "bm25.rows.npy",
    "bm25.tf.npy",
    "bm25.lengths.npy",
)
BM25_K1, BM25_B = 1.5, 0.75
"""BM25 parameters (bm25s's defaults, Lucene's idf)."""
EXHAUSTIVE_SENTENCES = 10_000
"""Most sentences searched exhaustively (15 MB of float32 vectors); beyond, only the candidate passages' sentences,
which cost less: at 58,581 sentences a question took 6.6 ms exhaustively and 3.8 ms on candidates (bench worker),
on the seeds' 105 sentences 1.96 ms and 2.13 ms."""
PARALLEL_PASSAGES = 100_000
"""Above this many passages, a question's searches run on two threads (`_SEARCHES`); below, handing them over costs
about what it saves."""
MERGE_RATIO = 2
"""A segment is merged into the one before it once it holds at least 1/MERGE_RATIO of that one's passages."""

_GENERATION = re.compile(r"g\d{6}")
_SEGMENT = re.compile(r"s\d{6}")
_FIELDS = {"generation": str, "segments": list, "retired": list, "model": dict, "counts": dict, "sources": dict}
_UNREADABLE = (OSError, ValueError, TypeError, KeyError, RuntimeError, sqlite3.Error)


# --- manifest ---------------------------------------------------------------------------------------------------


def manifest_signature(index_dir: Path) -> tuple | None:
    """Return what identifies the manifest file's current version (inode, size, times), None if there is none.

    Each write renames a new file over the manifest, so a new version comes with another inode number or other
    times: a reader can tell that nothing changed without parsing it.
    """
    try:
        status = (Path(index_dir) / MANIFEST).stat()
    except FileNotFoundError:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns


def read_manifest(index_dir: Path) -> dict | None:
    """Return the manifest of an index folder, None if there is no index there yet."""
    path = Path(index_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise StoreError(_broken(index_dir, f"{MANIFEST} is unreadable ({error})")) from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise StoreError(_broken(index_dir, f"{MANIFEST} is not an index manifest of format {FORMAT}"))
    problem = _manifest_problem(manifest)
    if problem:
        raise StoreError(_broken(index_dir, f"{MANIFEST} {problem}"))
    return manifest


def _manifest_problem(manifest: dict) -> str | None:
    """Return what is wrong with a manifest's fields, None if nothing is."""
    for name, kind in _FIELDS.items():
        if not isinstance(manifest.get(name), kind):
            return f"lacks a valid {name!r} field"
    if not _GENERATION.fullmatch(manifest["generation"]):
        return f"names an invalid generation {manifest['generation']!r}"
    for segment in manifest["segments"]:
        problem = _segment_problem(segment)
        if problem:
            return problem
    model, counts = manifest["model"], manifest["counts"]
    if not all(isinstance(model.get(key), str) for key in ("name", "path", "fingerprint")):
        return "does not record the model's name, path and fingerprint"
    if not isinstance(model.get("dimension"), int) or model["dimension"] < 1:
        return "does not record the model's vector dimension"
    if not all(isinstance(counts.get(key), int) and counts[key] >= 0 for key in ("articles", "passages", "sentences")):
        return "does not record the article, passage and sentence counts"
    if manifest.get("normalized") is not True or manifest.get("metric") != "inner_product":
        return "does not record unit-length vectors compared by inner product"
    return None


def _segment_problem(segment: object) -> str | None:
    """Return what is wrong with a manifest's segment entry, None if nothing is."""
    if not isinstance(segment, dict) or not _SEGMENT.fullmatch(str(segment.get("name"))):
        return "names an invalid segment folder"
    files, checksums = segment.get("files"), segment.get("sha256")
    if not isinstance(files, dict) or not isinstance(checksums, dict) or set(files) != set(checksums):
        return f"does not list every file of {segment['name']} with its size and checksum"
    if set(files) != set(FILES) or not all(isinstance(size, int) for size in files.values()):
        return f"lists invalid files for {segment['name']}"
    counts = segment.get("counts")
    if not isinstance(counts, dict) or not all(isinstance(counts.get(k), int) for k in ("articles", "passages")):
        return f"does not record the counts of {segment['name']}"
    if not isinstance(segment.get("deleted"), list) or not isinstance(segment.get("terms"), int):
        return f"does not record the deleted articles and term total of {segment['name']}"
    return None


def _broken(index_dir: Path, what: str) -> str:
    return f"The index in {index_dir} is damaged: {what}. Rebuild it with: assistant index --rebuild PATH ..."


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):  # large reads: few waits for the GIL
            digest.update(block)
    return digest.hexdigest()


def _first_mismatch(index_dir: Path, segments: list[dict]) -> str | None:
    """Return what is wrong with the first file whose sha256 differs from the manifest's, None if all match."""
    for segment in segments:
        for name, digest in segment["sha256"].items():
            try:
                if _sha256(index_dir / segment["name"] / name) != digest:
                    return f"{segment['name']}/{name} does not match its checksum"
            except OSError as error:  # e.g. the folder was deleted while loading
                return f"{segment['name']}/{name} is unreadable ({error.strerror or error})"
    return None


# --- one segment, read ------------------------------------------------------------------------------------------


class Catalog:
    """A segment's catalog and article table, opened read-only: enough to look its articles up."""

    def __init__(self, index_dir: Path, entry: dict):
        self.entry, self.name = entry, entry["name"]
        folder = index_dir / self.name
        for name, size in entry["files"].items():
            file = folder / name
            if not file.is_file() or file.stat().st_size != size:
                raise StoreError(_broken(index_dir, f"{self.name}/{name} is missing or truncated"))
        try:
            self.articles = np.load(folder / "articles.npy", mmap_mode="r", allow_pickle=False)
            self.catalog = sqlite3.connect(
                f"file:{quote(str(folder / CATALOG))}?mode=ro&immutable=1", uri=True, check_same_thread=False
            )
        except _UNREADABLE as error:
            raise StoreError(_broken(index_dir, f"a file of {self.name} is unreadable ({error})")) from error
        self.index_dir = index_dir
        self.lock = threading.Lock()
        self.deleted = np.asarray(sorted(entry["deleted"]), dtype=np.int64)
        if self.articles.shape != (entry["counts"]["articles"], 3) or not len(self.articles):
            raise StoreError(_broken(index_dir, f"{self.name}: the article table has the wrong shape"))
        if len(self.deleted) and (self.deleted[0] < 0 or self.deleted[-1] >= len(self.articles)):
            raise StoreError(_broken(index_dir, f"{self.name}: the deleted articles are not articles of it"))

    def query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        """Return the rows of a query on the segment's catalog."""
        try:
            with self.lock:
                return self.catalog.execute(sql, parameters).fetchall()
        except sqlite3.Error as error:
            raise StoreError(_broken(self.index_dir, f"the catalog of {self.name} is unreadable ({error})")) from error

    def live_articles(self) -> np.ndarray:
        """Return the segment rows of its live articles."""
        return np.setdiff1d(np.arange(len(self.articles)), self.deleted, assume_unique=True)

    def live_counts(self) -> np.ndarray:
        """Return how many articles, passages and sentences of the segment are live."""
        counts = self.entry["counts"]
        live = np.array([len(self.articles), counts["passages"], counts["sentences"]])
        if not len(self.deleted):
            return live
        # A deleted article's passages and sentences run to the next article's first ones (or the segment's end).
        last = len(self.articles) - 1
        following = self.articles[np.minimum(self.deleted + 1, last), 1:]
        following[self.deleted == last] = (counts["passages"], counts["sentences"])
        gone = (following - self.articles[self.deleted, 1:]).sum(axis=0)
        return live - np.array([len(self.deleted), gone[0], gone[1]])


class Segment(Catalog):
    """One segment opened for questions: tables, vectors and postings memory-mapped, its FAISS index read."""

    def __init__(self, index_dir: Path, entry: dict, offsets: tuple[int, int, int], dimension: int):
        super().__init__(index_dir, entry)
        self.article_offset, self.passage_offset, self.sentence_offset = offsets
        folder = index_dir / self.name
        try:
            # Plain arrays over the memory maps: numpy's memmap class costs microseconds a slice.
            self.passages, self.sentences = (
                np.asarray(np.load(folder / f"{table}.npy", mmap_mode="r", allow_pickle=False))
                for table in ("passages", "sentences")
            )
            self.index = faiss.read_index(str(folder / "passages.faiss"))
            self.sentence_vectors = np.load(folder / "sentences.f16.npy", mmap_mode="r", allow_pickle=False)
            self.indptr, self.rows, self.tf, self.lengths = (
                np.asarray(np.load(folder / f"bm25.{part}.npy", mmap_mode="r", allow_pickle=False))
                for part in ("indptr", "rows", "tf", "lengths")
            )
            # Opened once: the descriptor keeps the vectors readable after a later write deletes this segment.
            self.sentence_file = os.open(folder / "sentences.f16.npy", os.O_RDONLY)
        except _UNREADABLE as error:
            raise StoreError(_broken(index_dir, f"a file of {self.name} is unreadable ({error})")) from error
        self.live: np.ndarray | None = None  # passages of live articles, None when nothing is deleted
        self._check(dimension)
        if len(self.deleted):
            self.live = ~np.isin(self.passages[:, ARTICLE], self.deleted)
        self.vocabulary: dict[str, int] = {}

    def _check(self, dimension: int) -> None:
        """Raise StoreError unless the segment's tables, vectors, postings and manifest entry agree row for row."""
        counts, problems = self.entry["counts"], []
        passages, sentences = counts["passages"], counts["sentences"]
        if self.passages.shape != (passages, 5):
            problems.append("the passage table has the wrong shape")
        elif self.sentences.shape != (sentences, 3) or self.sentence_vectors.shape != (sentences, dimension):
            problems.append("the sentence table or vectors do not have one row per sentence")
        elif self.index.ntotal != passages or self.index.d != dimension:
            problems.append("the FAISS index does not have one vector per passage")
        elif self.index.metric_type != faiss.METRIC_INNER_PRODUCT:
            problems.append("the FAISS index does not compare by inner product")
        elif len(self.lengths) != passages or len(self.rows) != len(self.tf) or self.indptr[-1] != len(self.rows):
            problems.append("the BM25 postings do not match the passages")
        elif passages:
            problems += _span_problems(self.articles[:, 0], self.passages, self.sentences)
        if problems:
            raise StoreError(_broken(self.index_dir, f"{self.name}: " + "; ".join(problems)))

    def term_id(self, term: str) -> int:
        """Return the segment's vocabulary id of `term`, -1 if no passage of it has the term."""
        token = self.vocabulary.get(term)
        if token is None:
            found = self.query("SELECT id FROM vocabulary WHERE term = ?", (term,))
            token = self.vocabulary[term] = found[0][0] if found else -1
        return token

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """Return the live passages (segment rows) holding `term`, and the term's count in each."""
        token = self.term_id(term)
        if token < 0:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        window = slice(self.indptr[token], self.indptr[token + 1])
        rows, tf = self.rows[window], self.tf[window]
        if self.live is not None:
            keep = self.live[rows]
            rows, tf = rows[keep], tf[keep]
        return rows, tf

    def admitted(self, filters: Filters) -> np.ndarray:
        """Return a mask over the segment's passages: live ones whose article passes `filters`."""
        clauses, parameters = [], []
        if filters.outlets is not None:
            known = "outlet IN (SELECT value FROM json_each(?))"
            clauses.append(f"({known} OR outlet IS NULL)" if None in filters.outlets else known)
            parameters.append(json.dumps(sorted(o for o in filters.outlets if o is not None)))
        if filters.articles is not None:
            clauses.append("id IN (SELECT value FROM json_each(?))")
            parameters.append(json.dumps(sorted(filters.articles)))
        if filters.date_from:
            clauses.append("date >= ?")
            parameters.append(filters.date_from)
        if filters.date_to:
            clauses.append("date <= ?")
            parameters.append(filters.date_to)
        where = " AND ".join(clauses) or "1"
        rows = [row for (row,) in self.query(f"SELECT row FROM articles WHERE {where}", tuple(parameters))]
        articles = np.zeros(len(self.articles), dtype=bool)
        articles[rows] = True
        mask = articles[self.passages[:, ARTICLE]]
        return mask & self.live if self.live is not None else mask


def _span_problems(lengths: np.ndarray, passages: np.ndarray, sentences: np.ndarray) -> list[str]:
    """Return what is wrong with passage and sentence spans against their articles' text lengths."""
    for table in (passages, sentences):
        rows = table[:, ARTICLE]
        if rows.min() < 0 or rows.max() >= len(lengths) or (table[:, START] >= table[:, END]).any():
            return ["a passage or sentence points outside its article"]
        if (table[:, END] > lengths[rows]).any():
            return ["a passage or sentence span runs past its article's end"]
    first, stop = passages[:, FIRST_SENTENCE], passages[:, SENTENCE_STOP]
    if first.min() < 0 or (first >= stop).any() or stop.max() > len(sentences):
        return ["a passage points at sentences that do not exist"]
    return []


# --- the reader -------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Store:
    """An index folder loaded for questions: its segments seen as one table of articles, passages and sentences."""

    path: Path
    manifest: dict
    segments: list[Segment]
    verification: Future | None = None
    signature: tuple | None = None
    """The manifest file's version (manifest_signature) read before loading it."""

    def __post_init__(self):
        self.passage_offsets = np.array([s.passage_offset for s in self.segments], dtype=np.int64)
        self.sentence_offsets = np.array([s.sentence_offset for s in self.segments], dtype=np.int64)
        self.article_offsets = np.array([s.article_offset for s in self.segments], dtype=np.int64)
        last = self.segments[-1] if self.segments else None
        self.passage_rows = last.passage_offset + len(last.passages) if last else 0
        self.sentence_rows = last.sentence_offset + len(last.sentences) if last else 0
        counts = self.manifest["counts"]
        self.article_count, self.passage_count, self.sentence_count = (
            counts["articles"],
            counts["passages"],
            counts["sentences"],
        )
        deleted_terms = sum(int(s.lengths[~s.live].sum()) for s in self.segments if s.live is not None)
        self.term_total = sum(s.entry["terms"] for s in self.segments) - deleted_terms
        self._articles: dict[int, Article] = {}

    @property
    def generation(self) -> str:
        """Return the name of the manifest version this store was loaded from."""
        return self.manifest["generation"]

    @property
    def model(self) -> dict:
        """Return the model that embedded the index."""
        return self.manifest["model"]

    @property
    def article_by_id(self) -> ArticlesById:
        """Return the live articles by id (a view made on each call: kept on the store, it would keep the store in a
        reference cycle after a reload)."""
        return ArticlesById(self)

    def _segment_of(self, offsets: np.ndarray, rows) -> np.ndarray:
        return np.searchsorted(offsets, np.asarray(rows, dtype=np.int64), side="right") - 1

    def article(self, row: int) -> Article:
        """Return the article at `row`, with its full text (the last 4,096 read are kept)."""
        row = int(row)
        article = self._articles.get(row)
        if article is None:
            segment = self.segments[int(self._segment_of(self.article_offsets, [row])[0])]
            found = segment.query("SELECT record FROM articles WHERE row = ?", (row - segment.article_offset,))
            article = Article.from_json(json.loads(found[0][0]))
            if len(self._articles) >= 4096:
                self._articles.pop(next(iter(self._articles), None), None)
            self._articles[row] = article
        return article

    def article_row(self, article_id: str) -> int | None:
        """Return the row of the live article with id `article_id`, None if there is none."""
        for segment in reversed(self.segments):
            for (row,) in segment.query("SELECT row FROM articles WHERE id = ?", (article_id,)):
                if row not in segment.deleted:
                    return segment.article_offset + row
        return None

    def article_rows(self, row: int) -> tuple[range, range]:
        """Return the passage rows and the sentence rows of the article at `row`."""
        segment = self.segments[int(self._segment_of(self.article_offsets, [row])[0])]
        local = int(row) - segment.article_offset
        _, first_passage, first_sentence = segment.articles[local].tolist()
        if local + 1 < len(segment.articles):
            _, passage_stop, sentence_stop = segment.articles[local + 1].tolist()
        else:
            passage_stop, sentence_stop = len(segment.passages), len(segment.sentences)
        passages, sentences = segment.passage_offset, segment.sentence_offset
        return range(passages + first_passage, passages + passage_stop), range(
            sentences + first_sentence, sentences + sentence_stop
        )

    def live_article_rows(self) -> np.ndarray:
        """Return the rows of the live articles."""
        parts = [s.article_offset + s.live_articles() for s in self.segments]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def _per_segment(self, rows, offsets: np.ndarray, width: int, read, dtype=np.int64) -> np.ndarray:
        """Return `read(segment, rows)` for each segment's share of `rows`, stacked in the order of `rows`."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(self.segments) == 1:
            return read(self.segments[0], rows).astype(dtype, copy=False)
        owners = self._segment_of(offsets, rows)
        if len(rows) and (owners == owners[0]).all():  # most questions read from one segment
            return read(self.segments[int(owners[0])], rows).astype(dtype, copy=False)
        found = np.zeros((len(rows), width), dtype=dtype)
        for index in np.unique(owners).tolist():
            chosen = owners == index
            found[chosen] = read(self.segments[index], rows[chosen])
        return found

    def passage_table(self, rows) -> np.ndarray:
        """Return int64 rows (ARTICLE, START, END, FIRST_SENTENCE, SENTENCE_STOP) of the passages `rows`."""

        def read(segment: Segment, chosen: np.ndarray) -> np.ndarray:
            shift = [segment.article_offset, 0, 0, segment.sentence_offset, segment.sentence_offset]
            return segment.passages[chosen - segment.passage_offset] + np.array(shift)

        return self._per_segment(rows, self.passage_offsets, 5, read)

    def sentence_table(self, rows) -> np.ndarray:
        """Return int64 rows (ARTICLE, START, END) of the sentences `rows`."""

        def read(segment: Segment, chosen: np.ndarray) -> np.ndarray:
            return segment.sentences[chosen - segment.sentence_offset] + np.array([segment.article_offset, 0, 0])

        return self._per_segment(rows, self.sentence_offsets, 3, read)

    def passage_text(self, row: int) -> str:
        """Return the article text spanned by passage `row`."""
        article, start, end = self.passage_table([row])[0, :3].tolist()
        return self.article(article).text[start:end]

    def _admitted(self, filters: Filters | None) -> list[np.ndarray | None]:
        """Return per segment the mask of passages a search may return, None where every passage may."""
        if filters is None or not filters.active:
            return [s.live for s in self.segments]
        return [s.admitted(filters) for s in self.segments]

    def admitted_passages(self, filters: Filters) -> np.ndarray:
        """Return the rows of the live passages whose articles pass `filters`, in row order."""
        parts = [
            segment.passage_offset + (np.arange(len(segment.passages)) if mask is None else np.flatnonzero(mask))
            for segment, mask in zip(self.segments, self._admitted(filters))
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def dense(self, vector: np.ndarray, *, k: int, filters: Filters | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, rows) of the k passages nearest the unit `vector` by inner product, best first."""
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)

        def search(segment: Segment, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
            found_scores, found = vector_index.search(segment.index, query, k, admitted=mask)
            keep = found[0] >= 0
            return found_scores[0][keep], found[0][keep] + segment.passage_offset

        searched = [(s, m) for s, m in zip(self.segments, self._admitted(filters)) if m is None or m.any()]
        if not searched:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        found = list((_SEARCHES.map if self.searches_in_parallel else map)(search, *zip(*searched)))
        scores, rows = np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])
        best = np.argsort(-scores, kind="stable")[:k]
        return scores[best], rows[best]

    def dense_scores(self, vector: np.ndarray, rows) -> np.ndarray:
        """Return the inner products of `vector` with the passages `rows`."""
        scores = []
        for row in np.asarray(rows, dtype=np.int64).tolist():
            segment = self.segments[int(self._segment_of(self.passage_offsets, [row])[0])]
            scores.append(float(segment.index.reconstruct(row - segment.passage_offset) @ vector))
        return np.array(scores, dtype=np.float32)

    def passage_frequency(self, term: str) -> int:
        """Return how many live passages hold `term`."""
        return sum(len(segment.postings(term)[0]) for segment in self.segments)

    def lexical(self, terms: list[str], *, k: int, filters: Filters | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, rows) of the k best BM25 passages sharing a term with `terms`, best first.

        Inverse frequencies and the mean length come from the live passages of all segments at question time, so
        the scores are those of a fresh build of the same articles.
        """
        scores = np.zeros(self.passage_rows, dtype=np.float32)
        total = self.passage_count
        for term in terms:
            postings = [(segment, norm, *segment.postings(term)) for segment, norm in zip(self.segments, self._norms)]
            frequency = sum(len(rows) for _, _, rows, _ in postings)
            if not frequency:
                continue
            idf = np.float32(math.log(1 + (total - frequency + 0.5) / (frequency + 0.5)))
            for segment, norm, rows, tf in postings:  # add.at: 3-4 times numpy 2's `scores[rows] += ...`, same sums
                window = scores[segment.passage_offset : segment.passage_offset + len(segment.passages)]
                np.add.at(window, rows, idf * tf / (tf + norm[rows]))
        if filters is not None and filters.active:
            for segment, mask in zip(self.segments, self._admitted(filters)):
                window = scores[segment.passage_offset : segment.passage_offset + len(segment.passages)]
                window[~mask] = 0
        matched = np.flatnonzero(scores > 0)
        if len(matched) > k:
            matched = matched[np.argpartition(-scores[matched], k - 1)[:k]]
        best = matched[np.argsort(-scores[matched], kind="stable")]
        return scores[best], best

    def fused(
        self, vector: np.ndarray, terms: list[str], *, k: int, filters: Filters | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, rows) of the k nearest and the k best BM25 passages, best first by reciprocal rank fusion.

        In a large index the two searches, and the segments' FAISS searches, run side by side on the search threads
        (FAISS and numpy's array work release the GIL).
        """
        if self.searches_in_parallel:  # pool tasks never wait for others: no deadlock
            lexical = _SEARCHES.submit(self.lexical, terms, k=k, filters=filters)
            rankings = [self.dense(vector, k=k, filters=filters)[1], lexical.result()[1]]
        else:
            rankings = [self.dense(vector, k=k, filters=filters)[1], self.lexical(terms, k=k, filters=filters)[1]]
        fused = reciprocal_rank_fusion(rankings)
        rows = sorted(fused, key=lambda row: -fused[row])  # stable: ties keep dense order, then BM25 order
        return np.array([fused[row] for row in rows], dtype=np.float64), np.array(rows, dtype=np.int64)

    @cached_property
    def _norms(self) -> list[np.ndarray]:
        """Return per segment BM25's length normalisation of each passage, k1 * (1 - b + b * length / mean length)."""
        mean_length = np.float32(self.term_total / self.passage_count) if self.passage_count else np.float32(1)
        return [
            np.float32(BM25_K1)
            * (np.float32(1 - BM25_B) + np.float32(BM25_B) * s.lengths.astype(np.float32) / mean_length)
            for s in self.segments
        ]

    @cached_property
    def _all_sentences(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return every sentence vector (float32, in memory), and where each passage's runs of sentences start."""
        vectors = np.concatenate(
            [np.asarray(s.sentence_vectors, dtype=np.float32) for s in self.segments]
            or [np.zeros((0, self.model["dimension"]), dtype=np.float32)]
        )
        # Each sentence counts for the first passage holding it: the runs of sentences of one passage.
        table = self.passage_table(np.arange(self.passage_rows))
        passage_of_sentence = np.zeros(self.sentence_rows, dtype=np.int64)
        for row in range(len(table) - 1, -1, -1):
            passage_of_sentence[table[row, FIRST_SENTENCE] : table[row, SENTENCE_STOP]] = row
        run_starts = np.flatnonzero(np.diff(passage_of_sentence, prepend=-1))
        return vectors, run_starts, passage_of_sentence[run_starts]

    @property
    def searches_in_parallel(self) -> bool:
        """Return True if a question's searches run on the search threads (a large index)."""
        return self.passage_count > PARALLEL_PASSAGES

    @property
    def exhaustive(self) -> bool:
        """Return True if every sentence is scored for every question (a small index)."""
        return self.sentence_rows <= EXHAUSTIVE_SENTENCES

    def sentence_vectors(self, rows) -> np.ndarray:
        """Return the float32 unit vectors of the sentences `rows`, shape (len(rows), dimension)."""
        if self.exhaustive:
            return self._all_sentences[0][rows]
        return self._per_segment(
            rows,
            self.sentence_offsets,
            self.model["dimension"],
            lambda segment, chosen: segment.sentence_vectors[chosen - segment.sentence_offset],
            dtype=np.float32,
        )

    def sentence_dense(
        self, vector: np.ndarray, *, k: int, filters: Filters | None = None, candidates: np.ndarray = ()
    ) -> np.ndarray:
        """Return the rows of the k passages whose best sentence is nearest `vector`, best first.

        Every sentence is scored in a small index; in a large one, only the sentences of `candidates`.
        """
        masks = self._admitted(filters)
        admitted = None
        if any(mask is not None for mask in masks):
            admitted = np.concatenate(
                [np.ones(len(s.passages), dtype=bool) if m is None else m for s, m in zip(self.segments, masks)]
            )
        if not self.exhaustive:
            return self._candidate_sentence_dense(vector, k=k, admitted=admitted, candidates=candidates)
        vectors, run_starts, run_passages = self._all_sentences
        passage_best = np.full(self.passage_rows, -np.inf, dtype=np.float32)
        if len(run_starts):
            runs_best = np.maximum.reduceat(vectors @ vector, run_starts)
            np.maximum.at(passage_best, run_passages, runs_best)  # a passage may have several runs
        if admitted is not None:
            passage_best[~admitted] = -np.inf
        k = min(k, int(np.isfinite(passage_best).sum()))
        top = np.argpartition(-passage_best, k - 1)[:k] if k else np.zeros(0, dtype=np.int64)
        return top[np.argsort(-passage_best[top], kind="stable")]

    def _candidate_sentence_dense(
        self, vector: np.ndarray, *, k: int, admitted: np.ndarray | None, candidates: np.ndarray
    ) -> np.ndarray:
        """Return the rows of the k `candidates` with the sentences nearest `vector`, best first.

        Each candidate's sentences are read from the float16 file by one pread; through the memory map, the kernel
        mapped 64 KB around every row read, and 24 questions left 760 MB of it resident at 1M passages.
        """
        candidates = np.unique(np.asarray(candidates, dtype=np.int64))
        if admitted is not None:
            candidates = candidates[admitted[candidates]]
        if not len(candidates):
            return candidates
        table = self.passage_table(candidates)
        owners = self._segment_of(self.passage_offsets, candidates)
        blocks, sizes = [], []
        for owner, (first, stop) in zip(owners.tolist(), table[:, [FIRST_SENTENCE, SENTENCE_STOP]].tolist()):
            segment = self.segments[owner]
            vectors = segment.sentence_vectors
            row_bytes = vectors.shape[1] * vectors.itemsize
            a, b = first - segment.sentence_offset, stop - segment.sentence_offset
            blocks.append(os.pread(segment.sentence_file, (b - a) * row_bytes, vectors.offset + a * row_bytes))
            sizes.append(b - a)
        rows = np.frombuffer(b"".join(blocks), dtype=np.float16).reshape(-1, self.model["dimension"])
        scores = rows.astype(np.float32) @ vector
        best = np.maximum.reduceat(scores, np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64))
        return candidates[np.argsort(-best, kind="stable")[:k]]

    def coverage(self) -> Coverage:
        """Return the counts, outlets and dates of the live articles (from the manifest where nothing is deleted)."""
        outlets, days = Counter(), Counter()
        for segment in self.segments:
            if not len(segment.deleted) and "days" in segment.entry:
                outlets.update(segment.entry["outlets"])
                days.update(segment.entry["days"])
                continue
            for outlet, day, count in segment.query(
                "SELECT outlet, date, count(*) FROM articles WHERE row NOT IN (SELECT value FROM json_each(?)) "
                "GROUP BY outlet, date",
                (json.dumps(segment.deleted.tolist()),),
            ):
                outlets.update({outlet: count} if outlet else {})
                days.update({day: count} if day else {})
        return Coverage(self.article_count, self.passage_count, outlets, days)

    def damage(self) -> str | None:
        """Return the StoreError message for a file that failed the checksum check, None if none (or not yet)."""
        if self.verification is None or not self.verification.done() or not self.verification.result():
            return None
        return _broken(self.path, self.verification.result())

    def verify(self) -> None:
        """Wait for the checksum check started at load; raise StoreError if a file does not match the manifest."""
        if self.verification is not None:
            self.verification.result()
        if self.damage():
            raise StoreError(self.damage())

    def is_current(self) -> bool:
        """Return True if the manifest still names the loaded version; parses it only when its file changed."""
        signature = manifest_signature(self.path)
        if signature == self.signature:
            return True
        manifest = read_manifest(self.path)
        if manifest is None or manifest["generation"] == self.generation:
            self.signature = signature
            return True
        return False


def load(index_dir: Path, *, model_fingerprint: str | None = None, attempts: int = 3) -> Store:
    """Return the index stored in `index_dir`: tables opened and checked, checksums verified on a second thread.

    Args:
        index_dir: the index folder.
        model_fingerprint: the identity of the model that will encode questions; a different model is refused.
        attempts: how many times to follow a manifest that a concurrent indexing run switched while loading.

    Raises:
        StoreError: no index, a damaged one, or one built with another model.
    """
    index_dir = Path(index_dir)
    for _ in range(attempts - 1):
        signature, manifest = manifest_signature(index_dir), read_manifest(index_dir)
        try:
            return _load_version(index_dir, manifest, model_fingerprint, signature)
        except StoreError:
            latest = read_manifest(index_dir)
            if latest is None or manifest is None or latest["generation"] == manifest["generation"]:
                raise
    signature = manifest_signature(index_dir)  # taken first: a manifest switched after it is seen as a change
    return _load_version(index_dir, read_manifest(index_dir), model_fingerprint, signature)


def check_model(index_dir: Path, model: dict, fingerprint: str | None) -> None:
    """Raise StoreError if the index's model is not the one whose fingerprint is given."""
    if not fingerprint or model["fingerprint"] == fingerprint:
        return
    if same_model_folder(model["fingerprint"], fingerprint):
        raise StoreError(
            f"The index in {index_dir} was embedded by an older or other encoder of the model {model['name']!r} "
            f"({model['fingerprint'].partition('+')[2] or 'torch'}). Embed it again with: assistant index PATH ..."
        )
    raise StoreError(
        f"The index in {index_dir} was built with the model {model['name']!r} ({model['path']}), "
        "not the one loaded now. Use --model with that folder, or rebuild: assistant index --rebuild PATH ..."
    )


def _counts(live: list[np.ndarray]) -> dict[str, int]:
    """Return the manifest's counts of segments' live articles, passages and sentences."""
    total = np.sum(live, axis=0) if live else np.zeros(3, dtype=np.int64)
    return dict(zip(("articles", "passages", "sentences"), map(int, total)))


def _check_counts(index_dir: Path, manifest: dict, catalogs: list[Catalog]) -> None:
    """Raise StoreError unless the segments' live articles, passages and sentences are what the manifest counts."""
    if _counts([c.live_counts() for c in catalogs]) != manifest["counts"]:
        raise StoreError(_broken(index_dir, "the segments do not hold the articles and passages the manifest counts"))


def _open_segments(index_dir: Path, manifest: dict) -> list[Segment]:
    """Return the manifest's segments opened for reading, in order."""
    segments, offsets = [], (0, 0, 0)
    for entry in manifest["segments"]:
        segment = Segment(index_dir, entry, offsets, manifest["model"]["dimension"])
        segments.append(segment)
        offsets = tuple(
            a + b for a, b in zip(offsets, map(len, (segment.articles, segment.passages, segment.sentences)))
        )
    return segments


_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-checksums")
_SEARCHES = ThreadPoolExecutor(max_workers=2, thread_name_prefix="index-searches")


def _load_version(index_dir: Path, manifest: dict | None, model_fingerprint: str | None, signature) -> Store:
    """Return the version a manifest names: sizes, shapes and spans checked now, checksums on a second thread."""
    if manifest is None:
        raise StoreError(f"No index in {index_dir}. Build one with: assistant index PATH ...")
    check_model(index_dir, manifest["model"], model_fingerprint)
    segments = _open_segments(index_dir, manifest)
    _check_counts(index_dir, manifest, segments)
    verification = _HASHER.submit(_first_mismatch, index_dir, manifest["segments"])
    return Store(index_dir, manifest, segments, verification, signature)


# --- writing ----------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def write_lock(index_dir: Path, *, wait_message=None):
    """Hold the index folder's write lock (also across processes) for the `with` block."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if wait_message:
                wait_message()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass
class Parts:
    """The contents of one segment before it is written: articles, tables, vectors and BM25 postings."""

    articles: list[Article]
    article_table: np.ndarray
    passages: np.ndarray
    sentences: np.ndarray
    passage_vectors: np.ndarray
    sentence_vectors: np.ndarray
    vocabulary: list[str]
    indptr: np.ndarray
    rows: np.ndarray
    tf: np.ndarray
    lengths: np.ndarray


def _postings(passage_terms: list[list[str]]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the vocabulary (sorted), term -> passage pointers, passage rows and counts, and terms per passage."""
    counts = [Counter(terms) for terms in passage_terms]
    vocabulary = sorted(set().union(*counts)) if counts else []
    ids = {term: i for i, term in enumerate(vocabulary)}
    term_ids, rows, tf = [], [], []
    for row, counter in enumerate(counts):
        for term, count in counter.items():
            term_ids.append(ids[term])
            rows.append(row)
            tf.append(count)
    order = np.lexsort((np.array(rows, dtype=np.int64), np.array(term_ids, dtype=np.int64)))
    indptr = np.zeros(len(vocabulary) + 1, dtype=np.int64)
    np.add.at(indptr, np.array(term_ids, dtype=np.int64) + 1, 1)
    lengths = np.array([len(terms) for terms in passage_terms], dtype=np.int32)
    return (
        vocabulary,
        np.cumsum(indptr),
        np.array(rows, dtype=np.int32)[order],
        np.array(tf, dtype=np.float32)[order],
        lengths,
    )


def _stack(parts: list[np.ndarray], width: int, dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros((0, width), dtype=dtype)


def parts_of(embedded: list[Embedded], dimension: int) -> Parts:
    """Return the segment contents of freshly chunked and embedded articles."""
    passages, sentences, article_table, terms = [], [], [], []
    for row, item in enumerate(embedded):
        base = len(sentences)
        article_table.append((len(item.article.text), len(passages), base))
        passages += [(row, p.start, p.end, base + p.first_sentence, base + p.sentence_stop) for p in item.passages]
        sentences += [(row, a, b) for a, b in item.sentences]
        terms += item.passage_terms
    vocabulary, indptr, rows, tf, lengths = _postings(terms)

    return Parts(
        [item.article for item in embedded],
        np.array(article_table, dtype=np.int64).reshape(-1, 3),
        np.array(passages, dtype=np.int64).reshape(-1, 5),
        np.array(sentences, dtype=np.int64).reshape(-1, 3),
        _stack([item.passage_vectors for item in embedded], dimension, np.float32),
        _stack([item.sentence_vectors for item in embedded], dimension, np.float16),
        vocabulary,
        indptr,
        rows,
        tf,
        lengths,
    )


def _write_catalog(path: Path, articles: Iterable[tuple], vocabulary: Iterable[str]) -> None:
    """Write a segment's catalog: its articles (row, id, hash, text_key, source, outlet, date, record) and its BM25
    vocabulary, taken from iterables as they come."""
    catalog = sqlite3.connect(path)
    try:
        catalog.execute("PRAGMA journal_mode = OFF")
        catalog.execute("PRAGMA synchronous = OFF")
        catalog.execute(
            "CREATE TABLE articles (row INTEGER PRIMARY KEY, id TEXT NOT NULL, hash TEXT NOT NULL, "
            "text_key TEXT NOT NULL, source TEXT NOT NULL, outlet TEXT, date TEXT, record TEXT NOT NULL)"
        )
        catalog.execute("CREATE TABLE vocabulary (term TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID")
        catalog.executemany("INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?)", articles)
        catalog.executemany("INSERT INTO vocabulary VALUES (?, ?)", ((t, i) for i, t in enumerate(vocabulary)))
        for column in ("id", "text_key", "source"):
            catalog.execute(f"CREATE INDEX articles_{column} ON articles ({column})")
        catalog.execute("CREATE INDEX articles_outlet_date ON articles (outlet, date)")  # coverage after deletes
        catalog.commit()
    finally:
        catalog.close()


def _catalog_rows(articles: list[Article]) -> Iterator[tuple]:
    """Return the catalog rows of freshly read articles."""
    for row, a in enumerate(articles):
        yield row, a.id, a.hash, text_key(a), a.path, a.outlet, a.date, json.dumps(a.to_json(), ensure_ascii=False)


def _stage(index_dir: Path, name: str) -> Path:
    """Return an empty staging folder for the segment `name`."""
    staging = index_dir / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)  # left by an earlier failed write of this process
    staging.mkdir(parents=True)
    return staging


def _has_live_articles(entry: dict) -> bool:
    """Return True if a segment's manifest entry leaves some of its articles undeleted."""
    return len(entry["deleted"]) < entry["counts"]["articles"]


def shared_centroids(index_dir: Path, candidates: Iterable[Catalog], *, passages: int) -> np.ndarray | None:
    """Return the inverted lists' centroids of the candidate with the most live passages, for a new segment of
    `passages` beside the `candidates` (the other segments after the change); None if that segment is too small to
    take them, the candidate is searched exactly, or all their live passages are few enough to be searched exactly.

    Every segment written beside an approximate one uses its lists: a question then visits the same share of every
    segment's vectors, as in one index of them all, instead of scanning small segments whole.
    """
    if not vector_index.takes_shared_lists(passages):
        return None
    candidates = list(candidates)
    live = [int(c.live_counts()[1]) for c in candidates]
    if not candidates or passages + sum(live) <= vector_index.EXACT_LIMIT:
        return None
    largest = candidates[int(np.argmax(live))]
    path = index_dir / largest.name / "passages.faiss"
    try:
        return vector_index.centroids(faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY))
    except RuntimeError as error:  # FAISS's error for a damaged file
        raise StoreError(_broken(index_dir, f"{largest.name}/passages.faiss is unreadable ({error})")) from error


def _write_segment(index_dir: Path, name: str, parts: Parts, centroids: np.ndarray | None) -> dict:
    """Write a segment folder (staged, fsynced, renamed into place), its vectors in the inverted lists of `centroids`
    if given; return its manifest entry."""
    staging = _stage(index_dir, name)
    _write_catalog(staging / CATALOG, _catalog_rows(parts.articles), parts.vocabulary)
    arrays = {
        "articles.npy": parts.article_table,
        "passages.npy": parts.passages,
        "sentences.npy": parts.sentences,
        "sentences.f16.npy": parts.sentence_vectors.astype(np.float16, copy=False),
        "bm25.indptr.npy": parts.indptr,
        "bm25.rows.npy": parts.rows,
        "bm25.tf.npy": parts.tf,
        "bm25.lengths.npy": parts.lengths,
    }
    for file, array in arrays.items():
        np.save(staging / file, array, allow_pickle=False)
    index = vector_index.build(parts.passage_vectors, centroids=centroids)
    faiss.write_index(index, str(staging / "passages.faiss"))
    return _publish(index_dir, staging, name)


def _publish(index_dir: Path, staging: Path, name: str) -> dict:
    """Move a staged segment into place (fsynced, renamed); return its manifest entry, read from its files."""
    for file in FILES:
        _fsync_file(staging / file)
    _fsync_dir(staging)
    folder = index_dir / name
    os.rename(staging, folder)
    _fsync_dir(index_dir)
    tables = {
        t: np.load(folder / f"{t}.npy", mmap_mode="r", allow_pickle=False)
        for t in ("articles", "passages", "sentences")
    }
    catalog = sqlite3.connect(f"file:{quote(str(folder / CATALOG))}?mode=ro", uri=True)
    try:
        outlets, days = (
            dict(catalog.execute(f"SELECT {c}, count(*) FROM articles WHERE {c} <> '' GROUP BY {c}").fetchall())
            for c in ("outlet", "date")
        )
    finally:
        catalog.close()
    return {
        "name": name,
        "counts": {table: len(rows) for table, rows in tables.items()},
        "terms": int(np.load(folder / "bm25.lengths.npy", allow_pickle=False).sum()),
        "deleted": [],
        "outlets": outlets,
        "days": days,
        "files": {file: (folder / file).stat().st_size for file in FILES},
        "sha256": {file: _sha256(folder / file) for file in FILES},
    }


def _write_manifest(index_dir: Path, manifest: dict) -> None:
    """Replace the manifest atomically (temporary file, fsync, rename, fsync of the folder)."""
    temporary = index_dir / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    _fsync_file(temporary)
    os.replace(temporary, index_dir / MANIFEST)
    _fsync_dir(index_dir)


def _remove_stale(index_dir: Path, *, keep: set[str]) -> None:
    """Delete segments no manifest version in use names (readers may still load the previous one), and staging."""
    for entry in index_dir.iterdir():
        stale = _SEGMENT.fullmatch(entry.name) and entry.name not in keep
        if entry.is_dir() and (stale or entry.name.startswith(".tmp-") or _GENERATION.fullmatch(entry.name)):
            shutil.rmtree(entry, ignore_errors=True)


class LocalWriter:
    """An index folder open for writing, with its write lock held: lookups of what is indexed, atomic commits."""

    def __init__(self, index_dir: Path, manifest: dict | None, *, replaced: list[str] = ()):
        self.index_dir = index_dir
        self.manifest = manifest
        self.segments = [Catalog(index_dir, entry) for entry in manifest["segments"]] if manifest else []
        if manifest:
            _check_counts(index_dir, manifest, self.segments)
        self.replaced = list(replaced)  # segments of an index being rebuilt, kept for its readers until next write

    @property
    def model(self) -> dict | None:
        """Return the model the index records, None for a new one."""
        return self.manifest["model"] if self.manifest else None

    @property
    def chunking(self) -> dict | None:
        """Return the chunking settings the index records, None for a new one."""
        return self.manifest.get("chunking") if self.manifest else None

    def counts(self) -> dict[str, int]:
        """Return the live article, passage and sentence counts."""
        return dict(self.manifest["counts"]) if self.manifest else {"articles": 0, "passages": 0, "sentences": 0}

    def _find(self, column: str, value: str) -> list[tuple[Catalog, int, Indexed]]:
        """Return the live articles whose catalog `column` holds `value`: segment, row and what is indexed."""
        found = []
        for segment in self.segments:
            for row, *fields in segment.query(
                f"SELECT row, id, hash, source, text_key FROM articles WHERE {column} = ?", (value,)
            ):
                if row not in segment.deleted:
                    found.append((segment, row, Indexed(*fields)))
        return found

    def indexed(self, article_id: str) -> Indexed | None:
        """Return the live article with this id, None if there is none."""
        found = self._find("id", article_id)
        return found[-1][2] if found else None

    def with_text(self, key: str) -> Indexed | None:
        """Return the live article whose text_key is `key`, None if there is none."""
        found = self._find("text_key", key)
        return found[-1][2] if found else None

    def from_source(self, source: str) -> list[Indexed]:
        """Return the live articles read from the file `source`."""
        return [indexed for _, _, indexed in self._find("source", source)]

    def read(self, article_id: str) -> Article:
        """Return the live article with this id, with its text."""
        segment, row, _ = self._find("id", article_id)[-1]
        return Article.from_json(json.loads(segment.query("SELECT record FROM articles WHERE row = ?", (row,))[0][0]))

    def sources(self) -> dict[str, Source]:
        """Return the source files the index records."""
        recorded = self.manifest["sources"] if self.manifest else {}
        return {name: Source(entry["sha256"], entry["skipped"]) for name, entry in recorded.items()}

    def _next_name(self) -> str:
        taken = [int(p.name[1:]) for p in self.index_dir.iterdir() if _SEGMENT.fullmatch(p.name)]
        taken += [int(s["name"][1:]) for s in self.manifest["segments"]] if self.manifest else []
        return f"s{max(taken, default=0) + 1:06d}"

    def commit(self, change: Change, *, model: dict, chunking: dict) -> None:
        """Write `change` as a new segment and a new manifest; small trailing segments are merged on the way."""
        entries = [dict(s.entry, deleted=list(s.entry["deleted"])) for s in self.segments]
        replaced = [a.article.id for a in change.upserts] + list(change.deletes)
        for article_id in replaced:
            for segment, row, _ in self._find("id", article_id):
                entry = entries[self.segments.index(segment)]
                if row not in entry["deleted"]:
                    entry["deleted"].append(row)
        if change.upserts:
            parts = parts_of(change.upserts, model["dimension"])
            kept = (Catalog(self.index_dir, e) for e in entries if _has_live_articles(e))  # opened only if needed
            centroids = shared_centroids(self.index_dir, kept, passages=len(parts.passages))
            entries.append(_write_segment(self.index_dir, self._next_name(), parts, centroids))
        sources = {name: vars(source) for name, source in self.sources().items() if name not in change.dropped_sources}
        sources.update({name: vars(source) for name, source in change.sources.items()})
        self._switch(entries, model=model, chunking=chunking, sources=sources)
        self._merge_tail(model)

    def _switch(self, entries: list[dict], *, model: dict, chunking: dict, sources: dict) -> None:
        """Write the manifest naming `entries` (segments with no live article are dropped) and reopen them."""
        kept = [e for e in entries if _has_live_articles(e)]
        catalogs = [Catalog(self.index_dir, entry) for entry in kept]
        old = [s.entry["name"] for s in self.segments] + self.replaced
        self.replaced = []
        previous = self.manifest["generation"] if self.manifest else "g000000"
        manifest = {
            "format": FORMAT,
            "generation": f"g{int(previous[1:]) + 1:06d}",
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "model": model,
            "normalized": True,
            "metric": "inner_product",
            "chunking": chunking,
            "counts": _counts([c.live_counts() for c in catalogs]),
            "segments": kept,
            "retired": [name for name in old if name not in {e["name"] for e in kept}],
            "sources": sources,
        }
        _write_manifest(self.index_dir, manifest)
        _remove_stale(self.index_dir, keep={e["name"] for e in kept} | set(manifest["retired"]))
        self.manifest = manifest
        self.segments = catalogs

    def _merge_tail(self, model: dict) -> None:
        """Merge the newest segment into the one before while it holds at least 1/MERGE_RATIO of its passages."""
        while len(self.segments) >= 2:
            before, last = (int(s.live_counts()[1]) for s in self.segments[-2:])
            if last * MERGE_RATIO < before:
                return
            self._merge(len(self.segments) - 2, model)

    def compact(self) -> None:
        """Check every file's checksum, then merge every segment into one without the deleted articles."""
        self._verify(0)
        if len(self.segments) > 1 or any(len(s.deleted) for s in self.segments):
            self._merge(0, self.manifest["model"])

    def _verify(self, first: int) -> None:
        """Raise StoreError if a file of the segments from `first` on does not match its checksum."""
        problem = _first_mismatch(self.index_dir, [s.entry for s in self.segments[first:]])
        if problem:
            raise StoreError(_broken(self.index_dir, problem))

    def _merge(self, first: int, model: dict) -> None:
        """Replace the segments from `first` on by one segment of their live articles, after checking checksums."""
        self._verify(first)
        entries = [s.entry for s in self.segments[:first]]
        merged_passages = sum(int(s.live_counts()[1]) for s in self.segments[first:])
        centroids = shared_centroids(self.index_dir, self.segments[:first], passages=merged_passages)
        merged = _write_merged(self.index_dir, self._next_name(), self.segments[first:], model["dimension"], centroids)
        entries += [merged] if merged else []
        self._switch(entries, model=model, chunking=self.manifest["chunking"], sources=self.manifest["sources"])


# --- merging, a block at a time ---------------------------------------------------------------------------------

MERGE_ROWS = 65_536
"""Rows (of a table, vectors or postings) a merge reads and writes at a time: its memory follows a block of rows and
the new FAISS index, not the segments merged."""


class _ArrayFile:
    """A .npy file written a block of rows at a time; its header, written last, records how many."""

    HEADER = 128
    """Bytes of numpy's version 1.0 header of a table or vector (padded for any row count)."""

    def __init__(self, path: Path, dtype, width: int | None = None):
        self.path, self.dtype, self.shape_tail, self.rows = path, np.dtype(dtype), (width,) if width else (), 0
        self.handle = path.open("wb")
        self.handle.seek(self.HEADER)

    def append(self, block: np.ndarray) -> None:
        """Write `block`'s rows after those written so far."""
        block = np.ascontiguousarray(block, dtype=self.dtype).reshape(-1, *self.shape_tail)
        self.handle.write(block.tobytes())
        self.rows += len(block)

    def close(self) -> None:
        """Write the header, then close the file."""
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header,
            {
                "descr": np.lib.format.dtype_to_descr(self.dtype),
                "fortran_order": False,
                "shape": (self.rows, *self.shape_tail),
            },
        )
        if header.tell() != self.HEADER:
            raise ValueError(f"{self.path.name}: a numpy header of {header.tell()} bytes, not {self.HEADER}")
        self.handle.seek(0)
        self.handle.write(header.getvalue())
        self.handle.close()


class _RowFile:
    """A .npy file read a block of rows at a time by plain reads (a memory map would keep what it read resident)."""

    def __init__(self, path: Path):
        header = np.load(path, mmap_mode="r", allow_pickle=False)
        self.path, self.offset, self.dtype, self.shape = path, header.offset, header.dtype, header.shape
        self.row_items = int(np.prod(self.shape[1:], dtype=np.int64))

    def read(self, first: int, stop: int) -> np.ndarray:
        """Return the rows first:stop."""
        size = self.row_items * self.dtype.itemsize
        rows = np.fromfile(self.path, self.dtype, (stop - first) * self.row_items, offset=self.offset + first * size)
        return rows.reshape(-1, *self.shape[1:])

    def blocks(self, chosen: np.ndarray) -> Iterator[np.ndarray]:
        """Yield the rows `chosen` (sorted), read a block at a time."""
        for first in range(0, self.shape[0], MERGE_ROWS):
            stop = min(first + MERGE_ROWS, self.shape[0])
            low, high = np.searchsorted(chosen, [first, stop])
            if high > low:
                yield self.read(first, stop)[chosen[low:high] - first]


@dataclass
class _Kept:
    """Where the live rows of a segment being merged go in the merged segment (-1: not kept)."""

    folder: Path
    catalog: Catalog
    articles: np.ndarray
    passages: np.ndarray


def _write_merged(
    index_dir: Path, name: str, sources: list[Catalog], dimension: int, centroids: np.ndarray | None
) -> dict | None:
    """Write the live articles of `sources` as one segment, a block of rows at a time (vectors in the inverted lists
    of `centroids` if given); return its manifest entry, None if no article is live. Rows, vocabulary and postings
    come out as a fresh build of those articles writes them (vectors reused)."""
    staging = _stage(index_dir, name)
    kept = _merge_tables(staging, index_dir, sources, dimension, centroids)
    if not any((k.articles >= 0).any() for k in kept):
        shutil.rmtree(staging)
        return None
    vocabulary = _merge_postings(staging, kept)
    _write_catalog(staging / CATALOG, _kept_catalog_rows(kept), vocabulary)
    return _publish(index_dir, staging, name)


def _merge_tables(
    staging: Path, index_dir: Path, sources: list[Catalog], dimension: int, centroids: np.ndarray | None
) -> list[_Kept]:
    """Write the merged tables, passage lengths, sentence vectors and FAISS index, a source and a block at a time;
    return where each source's rows went."""
    files = {
        "articles.npy": _ArrayFile(staging / "articles.npy", np.int64, 3),
        "passages.npy": _ArrayFile(staging / "passages.npy", np.int64, 5),
        "sentences.npy": _ArrayFile(staging / "sentences.npy", np.int64, 3),
        "bm25.lengths.npy": _ArrayFile(staging / "bm25.lengths.npy", np.int32),
        "sentences.f16.npy": _ArrayFile(staging / "sentences.f16.npy", np.float16, dimension),
        "vectors": _ArrayFile(staging / ".passage-vectors.npy", np.float32, dimension),  # for the FAISS index
    }
    try:
        kept = [_merge_source(index_dir / source.name, source, files) for source in sources]
    finally:
        for file in files.values():
            file.close()
    vectors = _RowFile(files["vectors"].path)
    index = vector_index.build_from_blocks(
        vectors.shape[0], dimension, lambda rows: np.concatenate(list(vectors.blocks(rows))),
        lambda: vectors.blocks(np.arange(vectors.shape[0])), centroids=centroids,
    )  # fmt: skip
    faiss.write_index(index, str(staging / "passages.faiss"))
    files["vectors"].path.unlink()
    return kept


def _merge_source(folder: Path, source: Catalog, files: dict[str, _ArrayFile]) -> _Kept:
    """Append the live rows of one segment to the merged files (rows renumbered); return where they went."""
    base_article, base_passage, base_sentence = (
        files[f].rows for f in ("articles.npy", "passages.npy", "sentences.npy")
    )
    keep = source.live_articles()
    passages, sentences = (np.load(folder / f"{t}.npy", allow_pickle=False) for t in ("passages", "sentences"))
    article_map = np.full(len(source.articles), -1, dtype=np.int64)
    article_map[keep] = np.arange(len(keep)) + base_article
    p_keep = np.flatnonzero(article_map[passages[:, ARTICLE]] >= 0)
    s_keep = np.flatnonzero(article_map[sentences[:, ARTICLE]] >= 0)
    sentence_map = np.full(len(sentences), -1, dtype=np.int64)
    sentence_map[s_keep] = np.arange(len(s_keep)) + base_sentence
    table = passages[p_keep]
    table[:, ARTICLE] = article_map[table[:, ARTICLE]]
    table[:, FIRST_SENTENCE] = sentence_map[table[:, FIRST_SENTENCE]]
    table[:, SENTENCE_STOP] = sentence_map[table[:, SENTENCE_STOP] - 1] + 1  # an article's sentences stay together
    rows = sentences[s_keep]
    rows[:, ARTICLE] = article_map[rows[:, ARTICLE]]
    merged_articles = np.arange(len(keep)) + base_article
    first_passages = np.searchsorted(table[:, ARTICLE], merged_articles) + base_passage
    first_sentences = np.searchsorted(rows[:, ARTICLE], merged_articles) + base_sentence
    files["articles.npy"].append(np.stack([np.asarray(source.articles[keep, 0]), first_passages, first_sentences], 1))
    files["passages.npy"].append(table)
    files["sentences.npy"].append(rows)
    files["bm25.lengths.npy"].append(np.load(folder / "bm25.lengths.npy", allow_pickle=False)[p_keep])
    for block in _RowFile(folder / "sentences.f16.npy").blocks(s_keep):
        files["sentences.f16.npy"].append(block)  # float16, as written
    index = faiss.read_index(str(folder / "passages.faiss"))
    for first in range(0, len(p_keep), MERGE_ROWS):
        files["vectors"].append(index.reconstruct_batch(p_keep[first : first + MERGE_ROWS]))
    passage_map = np.full(len(passages), -1, dtype=np.int64)
    passage_map[p_keep] = np.arange(len(p_keep)) + base_passage
    return _Kept(folder, source, article_map, passage_map)


def _merge_postings(staging: Path, kept: list[_Kept]) -> list[str]:
    """Write the merged BM25 postings (by term, then passage, like a fresh build), a block of terms at a time; return
    the vocabulary: the terms of live passages, sorted."""
    indptrs = [np.load(k.folder / "bm25.indptr.npy", allow_pickle=False) for k in kept]
    postings = [(_RowFile(k.folder / "bm25.rows.npy"), _RowFile(k.folder / "bm25.tf.npy")) for k in kept]
    live = [_live_postings(indptr, rows, k.passages) for indptr, (rows, _), k in zip(indptrs, postings, kept)]
    terms = "SELECT term FROM vocabulary ORDER BY id"  # read twice, a segment at a time, rather than kept
    vocabulary = set()
    for k, counts in zip(kept, live):
        vocabulary.update(term for (term,), count in zip(k.catalog.query(terms), counts) if count)
    vocabulary = sorted(vocabulary)
    ids = {term: i for i, term in enumerate(vocabulary)}
    term_maps = [np.array([ids.get(term, -1) for (term,) in k.catalog.query(terms)], dtype=np.int64) for k in kept]
    del ids
    frequency = np.zeros(len(vocabulary), dtype=np.int64)
    for term_map, counts in zip(term_maps, live):
        frequency[term_map[counts > 0]] += counts[counts > 0]
    indptr = np.concatenate([[0], np.cumsum(frequency)])
    np.save(staging / "bm25.indptr.npy", indptr, allow_pickle=False)
    # Both vocabularies are sorted, so a run of merged terms is a run of each source's terms (dead ones run along).
    reach = [np.maximum.accumulate(term_map) if len(term_map) else term_map for term_map in term_maps]
    starts = np.searchsorted(indptr, np.arange(0, indptr[-1], MERGE_ROWS), side="right") - 1
    cuts = np.unique(np.concatenate([[0], starts, [len(vocabulary)]]))
    out_rows, out_tf = _ArrayFile(staging / "bm25.rows.npy", np.int32), _ArrayFile(staging / "bm25.tf.npy", np.float32)
    for low, high in itertools.pairwise(cuts.tolist()):
        found = []
        for k, source_indptr, (rows, tf), term_map, runs in zip(kept, indptrs, postings, term_maps, reach):
            first, stop = np.searchsorted(runs, [low, high])
            window = slice(int(source_indptr[first]), int(source_indptr[stop]))
            term_of = np.repeat(np.arange(first, stop), np.diff(source_indptr[first : stop + 1]))
            mapped = k.passages[rows.read(window.start, window.stop)]
            alive = mapped >= 0
            found.append((term_map[term_of[alive]], mapped[alive], tf.read(window.start, window.stop)[alive]))
        order = np.argsort(np.concatenate([f[0] for f in found]), kind="stable")  # passages stay in row order
        out_rows.append(np.concatenate([f[1] for f in found])[order])
        out_tf.append(np.concatenate([f[2] for f in found])[order])
    out_rows.close()
    out_tf.close()
    return vocabulary


def _live_postings(indptr: np.ndarray, rows: _RowFile, passage_map: np.ndarray) -> np.ndarray:
    """Return, for each term of a segment, how many of its postings are in passages a merge keeps."""
    counts = np.zeros(len(indptr) - 1, dtype=np.int64)
    for first in range(0, rows.shape[0], MERGE_ROWS):
        block = rows.read(first, min(first + MERGE_ROWS, rows.shape[0]))
        term_of = np.searchsorted(indptr, np.arange(first, first + len(block)), side="right") - 1
        counts += np.bincount(term_of[passage_map[block] >= 0], minlength=len(counts))
    return counts


def _kept_catalog_rows(kept: list[_Kept]) -> Iterator[tuple]:
    """Return the catalog rows of the articles a merge keeps, renumbered, read a page at a time."""
    page = 4096
    for k in kept:
        for first in range(0, len(k.articles), page):
            for row, *fields in k.catalog.query(
                "SELECT row, id, hash, text_key, source, outlet, date, record FROM articles "
                "WHERE row >= ? AND row < ? ORDER BY row",
                (first, first + page),
            ):
                if k.articles[row] >= 0:
                    yield int(k.articles[row]), *fields


@contextlib.contextmanager
def open_writer(index_dir: Path, *, rebuild: bool = False, on_wait=None):
    """Hold the index folder open for writing, with its write lock, for the `with` block; yield a LocalWriter.

    With `rebuild`, the old index (even a damaged one) is ignored: the first commit replaces it.
    """
    index_dir = Path(index_dir)
    with write_lock(index_dir, wait_message=on_wait):
        if not rebuild:
            yield LocalWriter(index_dir, read_manifest(index_dir))
            return
        try:
            previous = read_manifest(index_dir)
        except StoreError:
            previous = None  # a rebuild over a damaged index
        replaced = [s["name"] for s in previous["segments"]] if previous else []
        yield LocalWriter(index_dir, None, replaced=replaced)
