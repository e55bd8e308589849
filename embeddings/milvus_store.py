"""Milvus behind the storage seam: a Reader and a Writer (embeddings/backend.py) over four Milvus collections.

One code path serves Milvus Lite (a local path ending in .db, embedded in this process), a local `milvus-lite server`
and a Milvus Standalone or Distributed cluster (http://host:19530, with a token if it asks for one).

Collections, named PREFIX_state, PREFIX_articles, PREFIX_passages, PREFIX_sentences (PREFIX: "news"):

    state      "state": the committed generation G, model and chunking, and up to which generation the passage
               frequencies are counted; "source|PATH|g|k": files indexed earlier; "df|TERM": how many live passages
               hold TERM as of the generation g that last changed it, with the count before that change
    articles   "A|g|k": part k of article A as written by commit g (JSON of the article, its sentence and passage
               spans); part 0 also holds hash, source, text key, outlet, date, counts, or marks A deleted at g
    passages   "A|g|n": passage n of A: outlet, date, stemmed terms (analysed by Milvus, whose BM25 function makes
               the sparse vector), unit vector (inner product, HNSW)
    sentences  "A|g|n": sentence n of A: the passage holding it first, outlet, date, unit vector

("|" stands for the unit separator \\x1f.) Every row carries the generation g of the commit that wrote it. A commit
writes its rows with g = G + 1, then switches the state row to G + 1: that upsert is the commit point (the
collections read with Strong consistency, so a reader that sees the switch sees the rows).
Readers search `generation <= G` and keep only each article's live version, so a commit is seen whole or not at all.
After the switch the rows it replaced are deleted; a writer that finds rows above G (a crash before the switch) or
replaced rows (a crash after it) deletes them before writing. Outlet and date are copied onto passages and sentences,
so filters are pushed down to the engine as expressions.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings.articles import Article
from embeddings.backend import RRF_K, Change, Coverage, Filters, Indexed, Source, StoreError, text_key

SEPARATOR = "\x1f"
PART_CHARS = 16_000
"""Characters of JSON per row: at most 4 bytes each, within a VARCHAR's 65,535 bytes."""
ID_BYTES = 2048
"""Longest primary key: an article id (or a source path) with its generation and part."""
TERMS_BYTES = 65_535
"""Longest BM25 text of a passage (a VARCHAR's limit); longer term lists are cut at a word."""
HNSW = {"M": 16, "efConstruction": 200}
"""Build settings of the dense indexes."""
EF = 128
"""HNSW candidates kept per search without a filter (at least k)."""
FILTERED_EF = 1024
"""HNSW candidates kept per filtered search: the filter skips nodes of the graph, so it must look further."""
BM25 = {"bm25_k1": 1.5, "bm25_b": 0.75}
"""BM25 parameters: those of bm25s, the local backend."""
BATCH = 1000
"""Rows per insert call, ids per filter expression."""
SLACK = 10
"""Extra hits asked of a search, for rows of replaced article versions dropped until their deletion lands."""
DETAILS = 4096
"""Most articles a reader keeps in memory with their spans."""
PARTS_READ = 2
"""Parts of an article asked for at once (most articles fit one)."""
_STATE = "state"


@dataclass(frozen=True)
class MilvusLocation:
    """Where a Milvus index lives: a Milvus Lite path ending in .db, or a server URI with its token."""

    uri: str
    token: str | None = None
    prefix: str = "news"

    @property
    def lite(self) -> bool:
        """Return True for Milvus Lite (a local folder), False for a server."""
        return "://" not in self.uri

    def __str__(self) -> str:
        return self.uri


def literal(value: str) -> str:
    """Return `value` as a string literal of a Milvus filter expression."""
    return json.dumps(value, ensure_ascii=False)


def key(*parts) -> str:
    """Return a primary key made of `parts`."""
    return SEPARATOR.join(map(str, parts))


def filter_expression(filters: Filters | None) -> str:
    """Return the Milvus filter for passages and sentences that pass `filters` ("" for none)."""
    if filters is None or not filters.active:
        return ""
    clauses = []
    if filters.outlets is not None:  # an unknown outlet (None) is stored as ""
        outlets = sorted(outlet or "" for outlet in filters.outlets)
        clauses.append(f"outlet in [{', '.join(literal(o) for o in outlets)}]")
    if filters.articles is not None:
        clauses.append(f"article in [{', '.join(literal(i) for i in sorted(filters.articles))}]")
    if filters.date_from or filters.date_to:
        clauses.append('date != ""')  # an undated article fails a date range
    if filters.date_from:
        clauses.append(f"date >= {literal(filters.date_from)}")
    if filters.date_to:
        clauses.append(f"date <= {literal(filters.date_to)}")
    return " and ".join(clauses)


def _terms_text(terms: list[str]) -> str:
    """Return a passage's terms as the text Milvus analyses, cut at a word within TERMS_BYTES."""
    text = " ".join(terms)
    if len(text.encode()) <= TERMS_BYTES:
        return text
    cut = text.encode()[:TERMS_BYTES].decode(errors="ignore")
    return cut[: cut.rfind(" ")]


def _parts(text: str) -> list[str]:
    """Return `text` in pieces of PART_CHARS characters (one piece for an empty text)."""
    return [text[i : i + PART_CHARS] for i in range(0, max(len(text), 1), PART_CHARS)]


# Connecting and the collections.


CONNECT_SECONDS = 60
"""Seconds to wait for a Milvus server to answer a new connection (pymilvus waits 10; a busy server can take more)."""


KEEPALIVE = {"grpc.keepalive_time_ms": 300_000, "grpc.keepalive_permit_without_calls": False}
"""gRPC keepalive pings at most every 5 minutes and only during calls: pymilvus pings every 10 s even when idle, and a
server that allows fewer pings (milvus-lite's, gRPC's default policy) closes such a connection ("too many pings")."""


def connect(location: MilvusLocation):
    """Return a MilvusClient for `location`, or raise StoreError saying why it cannot be opened."""
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # its failures become StoreErrors, its warnings are noise
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)  # Milvus Lite logs calls it lacks (AllocTimestamp)
    if location.lite and not location.uri.endswith(".db"):
        raise StoreError(f"A Milvus Lite location must be a path ending in .db, not {location.uri!r}.")
    try:
        # A server gets a channel of its own per client: a shared one that the server closed would fail every client.
        own = {} if location.lite else {"dedicated": True}
        client = MilvusClient(
            location.uri, token=location.token or "", timeout=CONNECT_SECONDS, grpc_options=KEEPALIVE, **own
        )
        return _Client(client, location)
    except MilvusException as error:
        if location.lite and _locked(Path(location.uri)):
            raise StoreError(
                f"The Milvus Lite folder {location.uri} is open in another process (Milvus Lite allows one process "
                f"per data folder). Stop that process, or serve the folder with: milvus-lite server --data-dir "
                f"{location.uri} --host 127.0.0.1 --port 19530, and use --milvus-uri http://127.0.0.1:19530"
            ) from error
        raise StoreError(f"Cannot open Milvus at {location.uri}: {error.message}") from error


class _Client:
    """A MilvusClient whose failures are StoreErrors naming the location."""

    def __init__(self, client, location: MilvusLocation):
        self.client, self.location = client, location

    def __getattr__(self, name: str):
        from pymilvus.exceptions import MilvusException

        method = getattr(self.client, name)

        def call(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except MilvusException as error:
                raise StoreError(f"Milvus at {self.location} failed: {error.message}") from error

        return call


def _locked(folder: Path) -> bool:
    """Return True if another process holds the lock of a Milvus Lite data folder."""
    try:
        with open(folder / "LOCK", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


class Milvus:
    """The four collections of one location: created when missing, searched and written through one client."""

    def __init__(self, location: MilvusLocation):
        self.location = location
        self.client = connect(location)
        self.state, self.articles, self.passages, self.sentences = (
            f"{location.prefix}_{kind}" for kind in ("state", "articles", "passages", "sentences")
        )
        self.load()

    def load(self) -> None:
        """Load the existing collections that are not loaded (Milvus Lite starts with every collection released)."""
        from pymilvus.client.types import LoadState

        for name in self.names:
            if self.client.has_collection(name) and self.client.get_load_state(name)["state"] != LoadState.Loaded:
                self.client.load_collection(name)

    @property
    def names(self) -> tuple[str, str, str, str]:
        """Return the names of the four collections."""
        return self.state, self.articles, self.passages, self.sentences

    def exists(self) -> bool:
        """Return True if the index's collections exist."""
        return all(self.client.has_collection(name) for name in self.names)

    def create(self, dimension: int) -> None:
        """Create the collections that do not exist, with their indexes, for vectors of `dimension`."""
        from pymilvus import DataType, Function, FunctionType

        text = {"datatype": DataType.VARCHAR}
        for name in self.names:
            if self.client.has_collection(name):
                continue
            schema = self.client.create_schema(auto_id=False)
            schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=ID_BYTES)
            schema.add_field("generation", DataType.INT64)
            index = self.client.prepare_index_params()
            if name in (self.state, self.articles):
                schema.add_field("part", DataType.INT64)
                schema.add_field("record", max_length=65_535, **text)
                schema.add_field("marker", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field
                index.add_index("marker", index_type="FLAT", metric_type="IP")
            if name == self.state:
                schema.add_field("kind", max_length=16, **text)
                schema.add_field("name", max_length=ID_BYTES, **text)
            if name != self.state:
                schema.add_field("article", max_length=ID_BYTES, **text)
                schema.add_field("outlet", max_length=1024, **text)
                schema.add_field("date", max_length=32, **text)
            if name == self.articles:
                schema.add_field("deleted", DataType.BOOL)
                schema.add_field("info", max_length=65_535, **text)
            if name in (self.passages, self.sentences):
                schema.add_field("number", DataType.INT64)
                schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
                index.add_index("vector", index_type="HNSW", metric_type="IP", params=HNSW)
            if name == self.sentences:
                schema.add_field("passage", max_length=ID_BYTES, **text)
            if name == self.passages:
                schema.add_field("terms", max_length=TERMS_BYTES, enable_analyzer=True, enable_match=True,
                                 analyzer_params={"tokenizer": "standard"}, **text)  # fmt: skip
                schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
                schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                             input_field_names=["terms"], output_field_names=["sparse"]))  # fmt: skip
                index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=BM25)
            self.client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")

    def drop(self) -> None:
        """Delete the four collections and everything in them."""
        for name in self.names:
            self.client.drop_collection(name)

    def insert(self, name: str, rows: list[dict]) -> None:
        """Insert `rows` into collection `name`, in batches."""
        for first in range(0, len(rows), BATCH):
            self.client.insert(name, rows[first : first + BATCH])

    def settle(self, *, attempts: int = 5) -> None:
        """Make written rows searchable through their indexes: release, flush and load every collection again.

        Milvus Lite searches rows still in memory, and flushed segments whose index is not built yet, by brute force,
        without saying so (1.7 s a search at 30k passages in memory, 150 ms flushed, 35 ms indexed); loading again
        builds every segment's index first. Released, it builds no index in the background after the flush; one that
        it was still writing when the load began makes the load fail ("No data left in file"): it is tried again.
        A Milvus cluster indexes new segments itself, and searches them meanwhile: nothing is done there (releasing
        would stop every reader).
        """
        if not self.client.get_server_version().startswith("milvus_lite"):
            return
        for name in self.names:
            self.client.release_collection(name)
            self.client.flush(name)
            for attempt in range(attempts):
                try:
                    self.client.load_collection(name)
                    break
                except StoreError:
                    if attempt == attempts - 1:
                        raise
                    time.sleep(1 + attempt)

    def scan(self, name: str, where: str, fields: list[str]) -> list[dict]:
        """Return every row of collection `name` that passes `where`, with `fields`."""
        iterator = self.client.query_iterator(name, filter=where, output_fields=fields, batch_size=BATCH)
        rows = []
        while batch := iterator.next():
            rows += batch
        iterator.close()
        return rows

    def committed(self) -> dict | None:
        """Return the committed state (generation, model, chunking), None if nothing was committed."""
        rows = self.client.get(self.state, ids=[_STATE], output_fields=["record"]) if self.exists() else []
        return json.loads(rows[0]["record"]) if rows else None


# The catalogue: each article's live version, read from the articles collection.


@dataclass(frozen=True)
class Entry:
    """The live version of an article: the generation that wrote it, what the writer checks, counts and metadata."""

    id: str
    generation: int
    hash: str
    source: str
    text_key: str
    outlet: str
    date: str
    passages: int
    sentences: int

    @property
    def indexed(self) -> Indexed:
        """Return what the writer reports of this article."""
        return Indexed(self.id, self.hash, self.source, self.text_key)


def catalogue(milvus: Milvus, generation: int) -> tuple[dict[str, Entry], list[tuple[str, int]]]:
    """Return the live article versions up to `generation` by id, and the replaced (article, generation) pairs."""
    rows = milvus.scan(
        milvus.articles, f"part == 0 and generation <= {generation}", ["article", "generation", "deleted", "info"]
    )
    latest: dict[str, dict] = {}
    replaced = []
    for row in sorted(rows, key=lambda r: r["generation"]):
        if row["article"] in latest:
            replaced.append((row["article"], latest[row["article"]]["generation"]))
        latest[row["article"]] = row
    live = {}
    for article, row in latest.items():
        if row["deleted"]:
            replaced.append((article, row["generation"]))
        else:
            live[article] = Entry(article, row["generation"], **json.loads(row["info"]))
    return live, replaced


def read_records(milvus: Milvus, entries: list[Entry]) -> dict[str, dict]:
    """Return the stored records (the article, its sentence spans and passage rows) of these versions, by id.

    Parts are read by primary key, PARTS_READ per article at a time, until an article has no more: a filter on
    article and generation is evaluated row by row by Milvus Lite (60-85 ms a read at 30,000 articles, 1-4 ms by key).
    """
    parts: dict[str, list] = {}
    pending, first = entries, 0
    while pending:
        keys = [key(e.id, e.generation, k) for e in pending for k in range(first, first + PARTS_READ)]
        for start in range(0, len(keys), BATCH):
            for row in milvus.client.get(milvus.articles, ids=keys[start : start + BATCH],
                                         output_fields=["article", "part", "record"]):  # fmt: skip
                parts.setdefault(row["article"], []).append((row["part"], row["record"]))
        first += PARTS_READ
        pending = [e for e in pending if len(parts.get(e.id, ())) == first]  # every part read so far was there
    for entry in entries:
        found = parts.get(entry.id, [])
        if not found or sorted(k for k, _ in found) != list(range(len(found))):
            raise StoreError(f"The index in Milvus at {milvus.location} lacks the text of {entry.id!r}. "
                             "Rebuild it with: assistant index --rebuild --milvus-uri URI PATH ...")  # fmt: skip
    return {article: json.loads("".join(text for _, text in sorted(found))) for article, found in parts.items()}


def _version_filter(pairs: list[tuple[str, int]]) -> str:
    """Return a filter for the rows of these (article, generation) versions."""
    return " or ".join(f"(article == {literal(a)} and generation == {g})" for a, g in pairs)


# Reading.


class MilvusReader:
    """The committed version of a Milvus index, for questions; rows are assigned at load in article id order."""

    def __init__(self, location: MilvusLocation, *, model_fingerprint: str | None = None):
        self.milvus = Milvus(location)
        state = self.milvus.committed()
        if state is None:
            raise StoreError(f"No index in Milvus at {location}. Build one with: assistant index --milvus-uri URI PATH")
        self.number = state["generation"]
        self.model = state["model"]
        if model_fingerprint and self.model["fingerprint"] != model_fingerprint:
            raise StoreError(
                f"The index in Milvus at {location} was built with the model {self.model['name']!r} "
                f"({self.model['path']}), not the one loaded now. Use --model with that folder, or rebuild: "
                "assistant index --rebuild --milvus-uri URI PATH ..."
            )
        live, _ = catalogue(self.milvus, self.number)
        self.entries = [live[i] for i in sorted(live)]
        self.rows = {entry.id: row for row, entry in enumerate(self.entries)}
        self.passage_base = np.cumsum([0] + [e.passages for e in self.entries])
        self.sentence_base = np.cumsum([0] + [e.sentences for e in self.entries])
        self.article_count = len(self.entries)
        self.passage_count = int(self.passage_base[-1])
        self.sentence_count = self.sentence_rows = int(self.sentence_base[-1])
        self.frequencies: dict[str, int] = {}
        self.counted = state.get("frequencies") == self.number
        """True if the "df|TERM" rows count this generation's passages (see MilvusWriter._count_frequencies)."""
        self.details: dict[int, tuple[Article, np.ndarray, np.ndarray]] = {}

    @property
    def generation(self) -> str:
        """Return the name of the loaded version."""
        return f"milvus-{self.number}"

    @property
    def article_by_id(self):
        """Return the live articles by id, read on demand."""
        from embeddings.backend import ArticlesById

        return ArticlesById(self)

    def detail(self, rows) -> list[tuple[Article, np.ndarray, np.ndarray]]:
        """Return articles with their passage rows (start, end, first, stop) and sentence rows (start, end).

        What is not cached yet is read in one query; the cache is emptied when it holds DETAILS articles.
        """
        rows = [int(row) for row in rows]
        missing = sorted({row for row in rows if row not in self.details})
        if missing:
            if len(self.details) + len(missing) > DETAILS:
                self.details.clear()
            records = read_records(self.milvus, [self.entries[row] for row in missing])
            for row in missing:
                record = records[self.entries[row].id]
                self.details[row] = (
                    Article.from_json(record["article"]),
                    np.asarray(record["passages"], dtype=np.int64).reshape(-1, 4),
                    np.asarray(record["sentences"], dtype=np.int64).reshape(-1, 2),
                )
        return [self.details[row] for row in rows]

    def article(self, row: int) -> Article:
        """Return the article at `row`, with its full text."""
        return self.detail([row])[0][0]

    def article_row(self, article_id: str) -> int | None:
        """Return the row of the live article with id `article_id`, None if there is none."""
        return self.rows.get(article_id)

    def live_article_rows(self) -> np.ndarray:
        """Return the rows of the live articles (all rows)."""
        return np.arange(self.article_count)

    def article_rows(self, row: int) -> tuple[range, range]:
        """Return the passage rows and the sentence rows of the article at `row`."""
        passages, sentences = self.passage_base, self.sentence_base
        return range(int(passages[row]), int(passages[row + 1])), range(int(sentences[row]), int(sentences[row + 1]))

    def admitted_passages(self, filters: Filters) -> np.ndarray:
        """Return the rows of the live passages whose articles pass `filters`, in row order."""
        ranges = [
            np.arange(self.passage_base[row], self.passage_base[row + 1])
            for row, entry in enumerate(self.entries)
            if filters.admits_fields(entry.id, entry.outlet or None, entry.date or None)
        ]
        return np.concatenate(ranges) if ranges else np.zeros(0, dtype=np.int64)

    def _locate(self, rows, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the article rows and numbers within their articles of passage or sentence `rows`."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        articles = np.searchsorted(base, rows, side="right") - 1
        return articles, rows - base[articles]

    def passage_table(self, rows) -> np.ndarray:
        """Return int64 rows (ARTICLE, START, END, FIRST_SENTENCE, SENTENCE_STOP) of the passages `rows`."""
        table = []
        articles, numbers = self._locate(rows, self.passage_base)
        for article, number, (_, passages, _) in zip(articles, numbers, self.detail(articles)):
            start, end, first, stop = passages[number]
            base = self.sentence_base[article]
            table.append((article, start, end, base + first, base + stop))
        return np.asarray(table, dtype=np.int64).reshape(-1, 5)

    def passage_text(self, row: int) -> str:
        """Return the article text spanned by passage `row`."""
        article, start, end = self.passage_table([row])[0, :3].tolist()
        return self.article(article).text[start:end]

    def sentence_table(self, rows) -> np.ndarray:
        """Return int64 rows (ARTICLE, START, END) of the sentences `rows`."""
        articles, numbers = self._locate(rows, self.sentence_base)
        table = [(a, *detail[2][n]) for a, n, detail in zip(articles, numbers, self.detail(articles))]
        return np.asarray(table, dtype=np.int64).reshape(-1, 3)

    def _row_keys(self, rows, base: np.ndarray) -> list[str]:
        """Return the primary keys of passage or sentence `rows`."""
        entries = self.entries
        return [key(entries[a].id, entries[a].generation, n) for a, n in zip(*self._locate(rows, base))]

    def _hit_row(self, article: str, generation: int, number: int, base: np.ndarray) -> int | None:
        """Return the row of a hit on passage or sentence `number` of an article version, None if not live."""
        row = self.rows.get(article)
        if row is None or self.entries[row].generation != generation:
            return None
        return int(base[row] + number)

    def _where(self, filters: Filters | None) -> str:
        """Return the Milvus filter for the committed rows that pass `filters`."""
        return " and ".join(w for w in (f"generation <= {self.number}", filter_expression(filters)) if w)

    def _search(self, name: str, query, field: str, k: int, filters: Filters | None, params: dict, **grouping):
        """Return (scores, passage rows) of the best k live hits in collection `name`."""
        found = self.milvus.client.search(
            name, [query], anns_field=field, limit=k + SLACK, filter=self._where(filters), search_params=params,
            output_fields=["article", "generation", "number"] + (["passage"] if grouping else []), **grouping,
        )[0]  # fmt: skip
        scores, rows = [], []
        for hit in found:
            entity = hit["entity"]
            number = entity["number"] if not grouping else int(entity["passage"].rpartition(SEPARATOR)[2])
            row = self._hit_row(entity["article"], entity["generation"], number, self.passage_base)
            if row is not None and len(rows) < k:
                scores.append(abs(hit["distance"]) if field == "sparse" else hit["distance"])
                rows.append(row)
        return np.asarray(scores, dtype=np.float32), np.asarray(rows, dtype=np.int64)

    def dense(self, vector: np.ndarray, *, k: int, filters: Filters | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, rows) of the k passages nearest the unit `vector` by inner product, best first."""
        return self._search(self.milvus.passages, vector.tolist(), "vector", k, filters, _dense_params(k, filters))

    def dense_scores(self, vector: np.ndarray, rows) -> np.ndarray:
        """Return the inner products of `vector` with the passages `rows`."""
        keys = self._row_keys(rows, self.passage_base)
        found = {r["id"]: r["vector"] for r in self.milvus.client.get(self.milvus.passages, ids=keys,
                                                                       output_fields=["vector"])}  # fmt: skip
        return (
            np.asarray([found[k] for k in keys], dtype=np.float32).reshape(len(keys), self.model["dimension"]) @ vector
        )

    def lexical(self, terms: list[str], *, k: int, filters: Filters | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, rows) of the k best passages by Milvus's BM25 that share a term with `terms`, best first.

        Milvus Lite returns BM25 scores negated (smaller is better, like its distances): they are made positive here,
        and divided by k1 + 1, which Milvus multiplies in and Lucene (and bm25s, the local backend) leaves out. Milvus
        Lite keeps BM25 statistics per segment; a cluster keeps them per collection.
        """
        if not terms:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        scores, rows = self._search(
            self.milvus.passages, " ".join(terms), "sparse", k, filters, {"metric_type": "BM25"}
        )
        keep = scores > 0
        return scores[keep] / (1 + BM25["bm25_k1"]), rows[keep]

    def passage_frequency(self, term: str) -> int:
        """Return how many passages hold `term` (a stemmed term), once per reader: from its "df|TERM" row, read by key,
        or counted by Milvus's text match when the rows do not count this generation (Milvus Lite checks every row:
        seconds a term at 30,000 passages)."""
        if term not in self.frequencies:
            counted = self._counted_frequency(term) if self.counted else None
            self.frequencies[term] = self._matched_frequency(term) if counted is None else counted
        return self.frequencies[term]

    def _counted_frequency(self, term: str) -> int | None:
        """Return the passage frequency of `term` at this generation from its row, None if the row is newer still."""
        rows = self.milvus.client.get(self.milvus.state, ids=[key("df", term)], output_fields=["generation", "record"])
        if not rows:
            return 0  # no commit counted a passage holding it
        record = json.loads(rows[0]["record"])
        if rows[0]["generation"] <= self.number:
            return record["df"]
        frequency, generation = record["before"]
        return frequency if generation <= self.number else None

    def _matched_frequency(self, term: str) -> int:
        """Return how many passages hold `term`, counted by Milvus's text match."""
        where = f"generation <= {self.number} and TEXT_MATCH(terms, {literal(term)})"
        rows = self.milvus.client.query(self.milvus.passages, filter=where, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def sentence_vectors(self, rows) -> np.ndarray:
        """Return the float32 unit vectors of the sentences `rows`, shape (len(rows), dimension)."""
        keys = self._row_keys(rows, self.sentence_base)
        found = {r["id"]: r["vector"] for r in self.milvus.client.get(self.milvus.sentences, ids=keys,
                                                                       output_fields=["vector"])}  # fmt: skip
        return np.asarray([found[k] for k in keys], dtype=np.float32).reshape(len(keys), self.model["dimension"])

    def sentence_dense(
        self, vector: np.ndarray, *, k: int, filters: Filters | None = None, candidates: np.ndarray = ()
    ) -> np.ndarray:
        """Return the rows of the k passages whose best sentence is nearest `vector`, best first (grouped by Milvus)."""
        params = _dense_params(k, filters)
        return self._search(self.milvus.sentences, vector.tolist(), "vector", k, filters, params,
                            group_by_field="passage")[1]  # fmt: skip

    def fused(
        self, vector: np.ndarray, terms: list[str], *, k: int, filters: Filters | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, rows) of the k nearest and the k best BM25 passages, best first by reciprocal rank fusion
        done by Milvus (hybrid_search with RRFRanker): one request, both searches and the fusion in the engine.

        Each search keeps exactly k hits, as the local backend's do; a hit on a replaced article version that is not
        deleted yet (between a commit's switch and its deletions, or after a crash there until the next writer) keeps
        its rank and is dropped here.
        """
        from pymilvus import AnnSearchRequest, RRFRanker

        where = self._where(filters)
        requests = [AnnSearchRequest([vector.tolist()], "vector", _dense_params(k, filters), limit=k, expr=where)]
        if terms:
            requests.append(AnnSearchRequest([" ".join(terms)], "sparse", {"metric_type": "BM25"}, limit=k, expr=where))
        found = self.milvus.client.hybrid_search(self.milvus.passages, requests, RRFRanker(RRF_K),
                                                 limit=k * len(requests),
                                                 output_fields=["article", "generation", "number"])[0]  # fmt: skip
        scores, rows = [], []
        for hit in found:
            entity = hit["entity"]
            row = self._hit_row(entity["article"], entity["generation"], entity["number"], self.passage_base)
            if row is not None:
                scores.append(hit["distance"])
                rows.append(row)
        return np.asarray(scores, dtype=np.float64), np.asarray(rows, dtype=np.int64)

    def coverage(self) -> Coverage:
        """Return the counts, outlets and dates of the live articles."""
        outlets = Counter(e.outlet for e in self.entries if e.outlet)
        days = Counter(e.date for e in self.entries if e.date)
        return Coverage(self.article_count, self.passage_count, outlets, days)

    def verify(self) -> None:
        """Check nothing more: Milvus checks its own files; a missing article text is reported when it is read."""

    def damage(self) -> None:
        """Return None: no checks are deferred (see verify)."""

    def is_current(self) -> bool:
        """Return True if no newer version was committed since this one was loaded."""
        state = self.milvus.committed()
        return state is not None and state["generation"] == self.number


def _dense_params(k: int, filters: Filters | None) -> dict:
    """Return the settings of an HNSW search for k results, with or without a filter."""
    filtered = filters is not None and filters.active
    return {"metric_type": "IP", "params": {"ef": max(k + SLACK, FILTERED_EF if filtered else EF)}}


# Writing.


class MilvusWriter:
    """A Milvus index open for writing: knows the live articles and sources, commits changes whole."""

    def __init__(self, location: MilvusLocation, *, rebuild: bool = False):
        self.milvus = Milvus(location)
        if rebuild and self.milvus.exists():
            self.milvus.drop()
        state = self.milvus.committed()
        self.number = state["generation"] if state else 0
        self.model = state["model"] if state else None
        self.chunking = state["chunking"] if state else None
        # An index counts passage frequencies from its first commit on; one whose count fell behind (an index of an
        # earlier version, or a run stopped between its commit and the count) is counted again by compact().
        self.counting = state is None or state.get("frequencies") == self.number
        self.live: dict[str, Entry] = {}
        self.by_text: dict[str, Entry] = {}
        self.written = False
        if self.milvus.exists():
            self._recover()

    def _recover(self) -> None:
        """Delete rows of an unfinished commit and of replaced article versions; read the live articles."""
        for name in self.milvus.names:
            self.milvus.client.delete(name, filter=f"generation > {self.number}")
        self.live, replaced = catalogue(self.milvus, self.number)
        self._delete_versions(replaced)
        self.by_text = {e.text_key: e for e in self.live.values()}

    def _delete_versions(self, pairs: list[tuple[str, int]]) -> None:
        """Delete every row of these (article, generation) versions."""
        for first in range(0, len(pairs), BATCH // 10):
            where = _version_filter(pairs[first : first + BATCH // 10])
            for name in self.milvus.names[1:]:
                self.milvus.client.delete(name, filter=where)

    def indexed(self, article_id: str) -> Indexed | None:
        """Return the live article with this id, None if there is none."""
        entry = self.live.get(article_id)
        return entry.indexed if entry else None

    def with_text(self, text: str) -> Indexed | None:
        """Return the live article whose text_key is `text`, None if there is none."""
        entry = self.by_text.get(text)
        return entry.indexed if entry and entry.id in self.live else None

    def from_source(self, source: str) -> list[Indexed]:
        """Return the live articles read from the file `source`."""
        return [e.indexed for e in self.live.values() if e.source == source]

    def sources(self) -> dict[str, Source]:
        """Return the source files recorded by the index (each path's latest committed record)."""
        if not self.milvus.exists():
            return {}
        rows = self.milvus.scan(self.milvus.state, f'kind == "source" and generation <= {self.number}',
                                ["name", "generation", "part", "record"])  # fmt: skip
        latest: dict[str, int] = {}
        for row in rows:
            latest[row["name"]] = max(latest.get(row["name"], 0), row["generation"])
        texts: dict[str, list] = {}
        for row in sorted(rows, key=lambda r: r["part"]):
            if row["generation"] == latest[row["name"]]:
                texts.setdefault(row["name"], []).append(row["record"])
        records = {name: json.loads("".join(parts)) for name, parts in texts.items()}
        return {name: Source(**record) for name, record in records.items() if record is not None}

    def read(self, article_id: str) -> Article:
        """Return the live article with this id, with its text."""
        return Article.from_json(read_records(self.milvus, [self.live[article_id]])[article_id]["article"])

    def counts(self) -> dict[str, int]:
        """Return the live "articles", "passages" and "sentences" counts."""
        entries = self.live.values()
        return {"articles": len(entries), "passages": sum(e.passages for e in entries),
                "sentences": sum(e.sentences for e in entries)}  # fmt: skip

    def commit(self, change: Change, *, model: dict, chunking: dict) -> None:
        """Apply `change`: write its rows under the next generation, then switch the state row to it (atomic)."""
        if change.empty and self.model is not None:
            return
        self.milvus.create(model["dimension"])
        number = self.number + 1
        articles, passages, sentences = [], [], []
        for embedded in change.upserts:
            a, p, s = _rows(embedded, number)
            articles += a
            passages += p
            sentences += s
        for article_id in change.deletes:
            articles.append(_article_row(key(article_id, number, 0), article_id, number, 0, "null", deleted=True))
        state = []
        for path, source in change.sources.items():
            record = json.dumps({"sha256": source.sha256, "skipped": source.skipped}, ensure_ascii=False)
            state += [_state_row(key("source", path, number, k), "source", path, number, k, part)
                      for k, part in enumerate(_parts(record))]  # fmt: skip
        state += [_state_row(key("source", path, number, 0), "source", path, number, 0, "null")
                  for path in change.dropped_sources]  # fmt: skip
        for name, rows in zip(self.milvus.names, (state, articles, passages, sentences)):
            self.milvus.insert(name, rows)
        self._switch(number, model, chunking, frequencies=self.number if self.counting else None)
        # Committed. Now the passage frequencies are counted, and the rows of the versions it replaced, and the
        # records of the sources it changed, go.
        replaced = [(i, self.live[i].generation) for i in [e.article.id for e in change.upserts] + change.deletes
                    if i in self.live]  # fmt: skip
        if self.counting:
            added = Counter(t for e in change.upserts for text in _passage_texts(e) for t in set(text.split()))
            removed = Counter(t for row in self._replaced_passages(replaced) for t in set(row["terms"].split()))
            self._count_frequencies(added, removed, number)
            self._switch(number, model, chunking, frequencies=number)
        self.number, self.model, self.chunking, self.written = number, model, chunking, True
        for embedded in change.upserts:
            entry = self.live[embedded.article.id] = _entry(embedded, number)
            self.by_text[entry.text_key] = entry
        for article_id in change.deletes:
            self.live.pop(article_id, None)
        self._delete_versions(replaced)
        changed = list(change.sources) + change.dropped_sources
        for first in range(0, len(changed), BATCH):
            names = ", ".join(literal(p) for p in changed[first : first + BATCH])
            self.milvus.client.delete(self.milvus.state, filter=f'kind == "source" and name in [{names}] and '
                                                                 f"generation < {number}")  # fmt: skip

    def _switch(self, number: int, model: dict, chunking: dict, *, frequencies: int | None) -> None:
        """Make generation `number` the committed one: one upsert of the state row, the commit point; `frequencies`:
        the generation whose passages the "df|TERM" rows count (None: they count none)."""
        record = json.dumps({"generation": number, "model": model, "chunking": chunking, "frequencies": frequencies},
                            ensure_ascii=False)  # fmt: skip
        self.milvus.client.upsert(self.milvus.state, [_state_row(_STATE, _STATE, _STATE, number, 0, record)])

    def _replaced_passages(self, pairs: list[tuple[str, int]]) -> list[dict]:
        """Return the passage rows (their terms) of these (article, generation) versions."""
        rows = []
        for first in range(0, len(pairs), BATCH // 10):
            rows += self.milvus.scan(self.milvus.passages, _version_filter(pairs[first : first + BATCH // 10]),
                                     ["terms"])  # fmt: skip
        return rows

    def _recorded_frequencies(self, terms: list[str]) -> dict[str, tuple[int, int]]:
        """Return (count, generation) of the "df|TERM" row of each of `terms` that has one, read by key."""
        found = {}
        for first in range(0, len(terms), BATCH):
            ids = [key("df", t) for t in terms[first : first + BATCH]]
            for row in self.milvus.client.get(self.milvus.state, ids=ids, output_fields=["name", "generation",
                                                                                          "record"]):  # fmt: skip
                found[row["name"]] = _frequency(row)
        return found

    def _count_frequencies(self, added: Counter, removed: Counter, number: int) -> None:
        """Write the "df|TERM" row of each term whose passage frequency generation `number` changed by `added` minus
        `removed` passages, keeping the count before it for readers of earlier generations."""
        changed = sorted(set(added) | set(removed))
        before = self._recorded_frequencies(changed)
        counts = {t: before.get(t, (0, 0))[0] + added[t] - removed[t] for t in changed}
        self._write_frequencies(counts, before, number)

    def _write_frequencies(self, counts: dict[str, int], before: dict[str, tuple[int, int]], number: int) -> None:
        """Write a "df|TERM" row per term of `counts` for generation `number`, with its count `before` (or 0)."""
        rows = [_state_row(key("df", t), "df", t, number, 0, json.dumps({"df": n, "before": before.get(t, (0, 0))}))
                for t, n in counts.items()]  # fmt: skip
        for first in range(0, len(rows), BATCH):
            self.milvus.client.upsert(self.milvus.state, rows[first : first + BATCH])

    def compact(self) -> None:
        """Ask Milvus to merge its segments and drop deleted rows (it does so in the background too); count the
        passage frequencies again if the count fell behind."""
        for name in self.milvus.names:
            self.milvus.client.compact(name)
        if not self.counting and self.model is not None:
            rows = self.milvus.scan(self.milvus.passages, f"generation <= {self.number}", ["terms"])
            counts = Counter(t for row in rows for t in set(row["terms"].split()))
            recorded = self.milvus.scan(self.milvus.state, 'kind == "df"', ["name", "generation", "record"])
            before = {r["name"]: _frequency(r) for r in recorded}
            self._write_frequencies({t: counts[t] for t in set(counts) | set(before)}, before, self.number)
            self._switch(self.number, self.model, self.chunking, frequencies=self.number)
            self.counting = True

    def close(self) -> None:
        """Leave written rows searchable through their indexes."""
        if self.written:
            self.milvus.settle()


def _frequency(row: dict) -> tuple[int, int]:
    """Return (passage frequency, generation) of a "df|TERM" row."""
    return json.loads(row["record"])["df"], row["generation"]


def _passage_texts(embedded) -> list[str]:
    """Return the BM25 text of each passage of an embedded article, as stored (its stemmed terms, cut to fit)."""
    return [_terms_text(terms) for terms in embedded.passage_terms]


def _entry(embedded, generation: int) -> Entry:
    """Return the catalogue entry of an article written at `generation`."""
    article = embedded.article
    return Entry(article.id, generation, article.hash, article.path, text_key(article), article.outlet or "",
                 article.date or "", len(embedded.passages), len(embedded.sentences))  # fmt: skip


def _article_row(row_id: str, article_id: str, generation: int, part: int, record: str, *, deleted=False, info="{}",
                 outlet="", date="") -> dict:  # fmt: skip
    return {"id": row_id, "generation": generation, "part": part, "record": record, "marker": [1.0, 0.0],
            "article": article_id, "outlet": outlet, "date": date, "deleted": deleted, "info": info}  # fmt: skip


def _state_row(row_id: str, kind: str, name: str, generation: int, part: int, record: str) -> dict:
    return {"id": row_id, "generation": generation, "part": part, "record": record, "marker": [1.0, 0.0],
            "kind": kind, "name": name}  # fmt: skip


def _rows(embedded, generation: int) -> tuple[list[dict], list[dict], list[dict]]:
    """Return the articles, passages and sentences rows of one embedded article written at `generation`."""
    article, entry = embedded.article, _entry(embedded, generation)
    where = {"article": article.id, "generation": generation, "outlet": entry.outlet, "date": entry.date}
    spans = [[p.start, p.end, p.first_sentence, p.sentence_stop] for p in embedded.passages]
    record = json.dumps({"article": article.to_json(), "sentences": [list(s) for s in embedded.sentences],
                         "passages": spans}, ensure_ascii=False)  # fmt: skip
    info = json.dumps({f: getattr(entry, f) for f in ("hash", "source", "text_key", "outlet", "date", "passages",
                                                      "sentences")}, ensure_ascii=False)  # fmt: skip
    articles = [
        _article_row(key(article.id, generation, k), article.id, generation, k, part, info=info if k == 0 else "{}",
                     outlet=entry.outlet, date=entry.date)
        for k, part in enumerate(_parts(record))
    ]  # fmt: skip
    owner = np.full(len(embedded.sentences), -1)
    for number, passage in enumerate(embedded.passages):
        run = owner[passage.first_sentence : passage.sentence_stop]
        run[run < 0] = number  # a sentence belongs to the first passage holding it
    passages = [
        dict(where, id=key(article.id, generation, n), number=n, terms=text,
             vector=embedded.passage_vectors[n].tolist())
        for n, text in enumerate(_passage_texts(embedded))
    ]  # fmt: skip
    sentences = [
        dict(where, id=key(article.id, generation, n), number=n, passage=key(article.id, generation, int(owner[n])),
             vector=embedded.sentence_vectors[n].tolist())
        for n in range(len(embedded.sentences))
    ]  # fmt: skip
    return articles, passages, sentences


def open_reader(location: MilvusLocation, *, model_fingerprint: str | None = None) -> MilvusReader:
    """Return the committed version of the Milvus index at `location`, for questions."""
    return MilvusReader(location, model_fingerprint=model_fingerprint)


def exists(location: MilvusLocation) -> bool:
    """Return True if an index was committed at `location`."""
    return Milvus(location).committed() is not None


def recorded_model(location: MilvusLocation) -> dict | None:
    """Return the model recorded by the Milvus index at `location`, None if nothing was committed there."""
    state = Milvus(location).committed()
    return state["model"] if state else None


@contextlib.contextmanager
def open_writer(location: MilvusLocation, *, rebuild: bool = False, on_wait=None):
    """Hold the Milvus index at `location` open for writing; written rows are left indexed for search on exit.

    Milvus Lite lets one process open its folder, which serializes writers; on a cluster, run one indexing at a time.
    """
    writer = MilvusWriter(location, rebuild=rebuild)
    try:
        yield writer
    finally:
        writer.close()
