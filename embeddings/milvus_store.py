"""Milvus: articles, passages and sentences in three collections, searched by vector, by BM25 and by both (RRF).

One code path serves Milvus Lite (a URI ending in .db: a local folder, embedded in this process), a local
`milvus-lite server` and a Milvus Standalone or Distributed cluster (http://host:19530, with a token if it asks).

Collections, named PREFIX_articles, PREFIX_passages and PREFIX_sentences:

    articles   id "ARTICLE#k" (k = part), article, part, record: the article's JSON in parts of PART_CHARS characters
               (a VARCHAR holds 65,535 bytes), marker: a constant 2-d vector (Milvus wants one vector per collection)
    passages   id "ARTICLE#pN" (N = passage of the article), article, start, end, first, stop (its sentences),
               outlet, date, terms (the passage's stemmed terms, analysed by Milvus), sparse (BM25 of terms, made by
               Milvus's BM25 function), vector (unit, inner product, HNSW)
    sentences  id "ARTICLE#sN", article, passage (the first passage holding it), start, end, outlet, date, vector

Ids are stable: an article's rows are named by its id and their order in it, so writing an article again replaces
its rows, and deleting it removes every row that names it. Outlet and date are copied onto passages and sentences so
that filters are pushed down to the engine as expressions.
"""

from __future__ import annotations

import fcntl
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings.articles import Article

PART_CHARS = 16_000
"""Characters of an article's JSON per articles row: at most 4 bytes each, within a VARCHAR's 65,535 bytes."""
ID_BYTES = 1024
"""Longest id of an article; passage and sentence ids add a few characters."""
TERMS_BYTES = 65_535
"""Longest BM25 text of a passage (Milvus's VARCHAR limit); longer term lists are cut at a word."""
HNSW = {"M": 16, "efConstruction": 200}
"""Build settings of the dense indexes."""
EF = 128
"""HNSW candidates kept per search without filters (at least k)."""
FILTERED_EF = 1024
"""HNSW candidates kept per filtered search: a filter skips nodes of the graph, so it must look further."""
BM25 = {"bm25_k1": 1.5, "bm25_b": 0.75}
"""BM25 parameters: those of bm25s, the local backend."""
RRF_K = 60
"""Reciprocal rank fusion's rank offset, as in the local backend."""
WRITE_BATCH = 1000
"""Rows sent per insert call."""


class MilvusError(RuntimeError):
    """A Milvus store that cannot be used as it is; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class ArticleRows:
    """One article and what is stored for it: its passages, sentences, BM25 terms and unit vectors.

    passages: int rows (start, end, first sentence, sentence stop), sentences: int rows (start, end); sentence
    numbers count from the article's first sentence.
    """

    article: Article
    passages: np.ndarray
    sentences: np.ndarray
    passage_terms: list[list[str]]
    passage_vectors: np.ndarray
    sentence_vectors: np.ndarray


@dataclass(frozen=True)
class PassageRow:
    """A stored passage: its id, article id, span and sentence range (numbered within the article)."""

    id: str
    article: str
    start: int
    end: int
    first: int
    stop: int


def passage_id(article_id: str, number: int) -> str:
    """Return the stable id of an article's passage `number`."""
    return f"{article_id}#p{number}"


def sentence_id(article_id: str, number: int) -> str:
    """Return the stable id of an article's sentence `number`."""
    return f"{article_id}#s{number}"


def is_lite(uri: str) -> bool:
    """Return True if `uri` names a Milvus Lite folder (a local path ending in .db), not a server."""
    return "://" not in uri


def literal(value: str) -> str:
    """Return `value` as a string literal of a Milvus filter expression."""
    return json.dumps(value, ensure_ascii=False)


def filter_expression(
    outlets: frozenset[str] | None = None, date_from: str | None = None, date_to: str | None = None
) -> str:
    """Return the Milvus filter for passages of these outlets and dates ("" for none): an undated article fails a range."""
    clauses = []
    if outlets is not None:
        clauses.append(f"outlet in [{', '.join(literal(o) for o in sorted(outlets))}]")
    if date_from or date_to:
        clauses.append('date != ""')
    if date_from:
        clauses.append(f"date >= {literal(date_from)}")
    if date_to:
        clauses.append(f"date <= {literal(date_to)}")
    return " and ".join(clauses)


def _terms_text(terms: list[str]) -> str:
    """Return a passage's terms as the text Milvus analyses, cut at a word within TERMS_BYTES."""
    text = " ".join(terms)
    if len(text.encode()) <= TERMS_BYTES:
        return text
    cut = text.encode()[:TERMS_BYTES].decode(errors="ignore")
    return cut[: cut.rfind(" ")]


class MilvusStore:
    """The three collections of one prefix on one Milvus, opened (and created if missing) for a model dimension."""

    def __init__(self, uri: str, *, dimension: int, token: str | None = None, prefix: str = "news"):
        self.uri, self.dimension, self.prefix = uri, dimension, prefix
        self.client = connect(uri, token)
        self.articles_name, self.passages_name, self.sentences_name = (
            f"{prefix}_{kind}" for kind in ("articles", "passages", "sentences")
        )
        self._create_missing()

    @property
    def collections(self) -> tuple[str, str, str]:
        """Return the names of the articles, passages and sentences collections."""
        return self.articles_name, self.passages_name, self.sentences_name

    def _create_missing(self) -> None:
        """Create whichever of the three collections does not exist yet, with its indexes, and load them."""
        from pymilvus import DataType, Function, FunctionType

        for name in self.collections:
            if self.client.has_collection(name):
                self._check_dimension(name)
                continue
            schema = self.client.create_schema(auto_id=False)
            schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=ID_BYTES + 16)
            schema.add_field("article", DataType.VARCHAR, max_length=ID_BYTES)
            index = self.client.prepare_index_params()
            if name == self.articles_name:
                schema.add_field("part", DataType.INT64)
                schema.add_field("record", DataType.VARCHAR, max_length=65_535)
                schema.add_field("marker", DataType.FLOAT_VECTOR, dim=2)
                index.add_index("marker", index_type="FLAT", metric_type="IP")
            else:
                if name == self.sentences_name:
                    schema.add_field("passage", DataType.VARCHAR, max_length=ID_BYTES + 16)
                for column in ("start", "end") + (("first", "stop") if name == self.passages_name else ()):
                    schema.add_field(column, DataType.INT64)
                schema.add_field("outlet", DataType.VARCHAR, max_length=1024)
                schema.add_field("date", DataType.VARCHAR, max_length=32)
                schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dimension)
                index.add_index("vector", index_type="HNSW", metric_type="IP", params=HNSW)
            if name == self.passages_name:
                analyzer = {"tokenizer": "standard"}  # the terms are already stemmed words without stopwords
                schema.add_field("terms", DataType.VARCHAR, max_length=TERMS_BYTES, enable_analyzer=True,
                                 analyzer_params=analyzer)  # fmt: skip
                schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
                schema.add_function(
                    Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"],
                             output_field_names=["sparse"])  # fmt: skip
                )
                index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=BM25)
            self.client.create_collection(name, schema=schema, index_params=index)

    def _check_dimension(self, name: str) -> None:
        """Raise MilvusError if collection `name` holds vectors of another dimension than the model's."""
        if name == self.articles_name:
            return
        fields = self.client.describe_collection(name)["fields"]
        dimension = next(int(f["params"]["dim"]) for f in fields if f["name"] == "vector")
        if dimension != self.dimension:
            raise MilvusError(
                f"The Milvus collection {name} at {self.uri} holds {dimension}-d vectors, not the model's "
                f"{self.dimension}: drop it or choose another prefix, then index again."
            )

    # Writing.

    def write(self, rows: list[ArticleRows]) -> None:
        """Store these articles with their passages and sentences, replacing any earlier version of each."""
        self.delete([r.article.id for r in rows])
        articles, passages, sentences = [], [], []
        for r in rows:
            record = json.dumps(r.article.to_json(), ensure_ascii=False)
            articles += [
                {"id": f"{r.article.id}#{k}", "article": r.article.id, "part": k,
                 "record": record[start : start + PART_CHARS], "marker": [1.0, 0.0]}
                for k, start in enumerate(range(0, max(len(record), 1), PART_CHARS))
            ]  # fmt: skip
            where = {"article": r.article.id, "outlet": r.article.outlet or "", "date": r.article.date or ""}
            owner = np.zeros(len(r.sentences), dtype=np.int64) - 1
            for number, (start, end, first, stop) in enumerate(r.passages.tolist()):
                owner[first:stop] = np.where(owner[first:stop] < 0, number, owner[first:stop])
                passages.append(
                    dict(where, id=passage_id(r.article.id, number), start=start, end=end, first=first, stop=stop,
                         terms=_terms_text(r.passage_terms[number]), vector=r.passage_vectors[number].tolist())
                )  # fmt: skip
            sentences += [
                dict(where, id=sentence_id(r.article.id, number), passage=passage_id(r.article.id, int(owner[number])),
                     start=start, end=end, vector=r.sentence_vectors[number].tolist())
                for number, (start, end) in enumerate(r.sentences.tolist())
            ]  # fmt: skip
        for name, batch in ((self.articles_name, articles), (self.passages_name, passages),
                            (self.sentences_name, sentences)):  # fmt: skip
            for first in range(0, len(batch), WRITE_BATCH):
                self.client.insert(name, batch[first : first + WRITE_BATCH])
        self.settle()

    def delete(self, article_ids: list[str]) -> None:
        """Remove these articles and every passage and sentence of theirs."""
        for first in range(0, len(article_ids), WRITE_BATCH):
            expression = f"article in [{', '.join(literal(a) for a in article_ids[first : first + WRITE_BATCH])}]"
            for name in self.collections:
                self.client.delete(name, filter=expression)

    def settle(self) -> None:
        """Make written rows searchable through their indexes: flush, then release and load each collection.

        Milvus Lite searches rows still in memory, and flushed segments whose index is not built yet, by brute force
        (300-400 ms at 100k passages) without saying so; loading again builds every segment's index first.
        """
        for name in self.collections:
            self.client.flush(name)
            self.client.release_collection(name)
            self.client.load_collection(name)

    def drop(self) -> None:
        """Delete the three collections and everything in them."""
        for name in self.collections:
            self.client.drop_collection(name)

    # Reading.

    def count(self) -> int:
        """Return how many passages are stored."""
        rows = self.client.query(self.passages_name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def articles(self, article_ids: list[str]) -> dict[str, Article]:
        """Return the stored articles among `article_ids`, by id."""
        parts: dict[str, list[tuple[int, str]]] = {}
        for first in range(0, len(article_ids), WRITE_BATCH):
            expression = f"article in [{', '.join(literal(a) for a in article_ids[first : first + WRITE_BATCH])}]"
            for row in self.client.query(self.articles_name, filter=expression, output_fields=["article", "part",
                                                                                             "record"]):  # fmt: skip
                parts.setdefault(row["article"], []).append((row["part"], row["record"]))
        return {
            article: Article.from_json(json.loads("".join(text for _, text in sorted(chunks))))
            for article, chunks in parts.items()
        }

    def article_ids(self) -> list[str]:
        """Return the ids of every stored article, sorted."""
        rows = self.client.query_iterator(self.articles_name, filter="part == 0", output_fields=["article"],
                                          batch_size=WRITE_BATCH)  # fmt: skip
        found = []
        while batch := rows.next():
            found += [row["article"] for row in batch]
        rows.close()
        return sorted(found)

    def passages(self, ids: list[str]) -> dict[str, PassageRow]:
        """Return the stored passages among `ids`, by id."""
        fields = ["article", "start", "end", "first", "stop"]
        found = self.client.get(self.passages_name, ids=list(ids), output_fields=fields) if ids else []
        return {row["id"]: PassageRow(row["id"], *(row[f] for f in fields)) for row in found}

    def passage_vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """Return the unit vectors of the stored passages among `ids`, by id."""
        found = self.client.get(self.passages_name, ids=list(ids), output_fields=["vector"]) if ids else []
        return {row["id"]: np.asarray(row["vector"], dtype=np.float32) for row in found}

    def sentence_vectors(self, article_id: str, numbers: list[int]) -> np.ndarray:
        """Return the unit vectors of an article's sentences `numbers`, in that order."""
        ids = [sentence_id(article_id, n) for n in numbers]
        found = {row["id"]: row["vector"] for row in self.client.get(self.sentences_name, ids=ids,
                                                                      output_fields=["vector"])}  # fmt: skip
        return np.asarray([found[i] for i in ids], dtype=np.float32).reshape(len(ids), self.dimension)

    # Searching: each returns [(passage id, score)], best first.

    def dense(self, vector: np.ndarray, *, k: int, where: str = "") -> list[tuple[str, float]]:
        """Return the k passages nearest `vector` by inner product that pass `where`."""
        return self._search(self.passages_name, vector.tolist(), "vector", k, where, self._dense_params(k, where))

    def lexical(self, terms: list[str], *, k: int, where: str = "") -> list[tuple[str, float]]:
        """Return the k best passages by Milvus's BM25 over `terms` that share a term with them and pass `where`.

        Milvus Lite returns BM25 scores negated (smaller is better, as its distances); they are returned here as
        positive scores, whichever sign the engine gave.
        """
        if not terms:
            return []
        hits = self._search(self.passages_name, " ".join(terms), "sparse", k, where, {"metric_type": "BM25"})
        return [(pid, abs(score)) for pid, score in hits if score != 0]

    def sentence_dense(self, vector: np.ndarray, *, k: int, where: str = "") -> list[tuple[str, float]]:
        """Return the k passages whose best sentence is nearest `vector` (each passage once), with that similarity."""
        found = self.client.search(
            self.sentences_name, [vector.tolist()], anns_field="vector", limit=k, filter=where,
            output_fields=["passage"], group_by_field="passage", search_params=self._dense_params(k, where),
        )[0]  # fmt: skip
        return [(hit["entity"]["passage"], float(hit["distance"])) for hit in found]

    def hybrid(self, vector: np.ndarray, terms: list[str], *, k: int, where: str = "") -> list[tuple[str, float]]:
        """Return the k best passages by reciprocal rank fusion (Milvus's RRFRanker) of dense and BM25 search."""
        from pymilvus import AnnSearchRequest, RRFRanker

        requests = [AnnSearchRequest([vector.tolist()], "vector", self._dense_params(k, where), limit=k, expr=where)]
        if terms:
            requests.append(AnnSearchRequest([" ".join(terms)], "sparse", {"metric_type": "BM25"}, limit=k,
                                             expr=where))  # fmt: skip
        found = self.client.hybrid_search(self.passages_name, requests, RRFRanker(RRF_K), limit=k, output_fields=[])
        return [(hit["id"], float(hit["distance"])) for hit in found[0]]

    def _dense_params(self, k: int, where: str) -> dict:
        """Return the search settings of an HNSW search for k results, with or without a filter."""
        return {"metric_type": "IP", "params": {"ef": max(k, FILTERED_EF if where else EF)}}

    def _search(self, name: str, query, field: str, k: int, where: str, params: dict) -> list[tuple[str, float]]:
        found = self.client.search(name, [query], anns_field=field, limit=k, filter=where, output_fields=[],
                                   search_params=params)  # fmt: skip
        return [(hit["id"], float(hit["distance"])) for hit in found[0]]


def connect(uri: str, token: str | None = None):
    """Return a MilvusClient for `uri`, or raise MilvusError saying why it cannot be opened."""
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    if is_lite(uri) and not uri.endswith(".db"):
        raise MilvusError(f"A Milvus Lite location must be a path ending in .db, not {uri!r}.")
    try:
        return MilvusClient(uri, token=token or "")
    except MilvusException as error:
        if is_lite(uri) and _locked(Path(uri)):
            raise MilvusError(
                f"The Milvus Lite folder {uri} is open in another process (Milvus Lite allows one process per data "
                f"folder). Stop it, or serve the folder with: milvus-lite server --data-dir {uri} --port 19530, "
                "and use --milvus-uri http://127.0.0.1:19530"
            ) from error
        raise MilvusError(f"Cannot open Milvus at {uri}: {error.message}") from error


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



def rows_from_store(store) -> list[ArticleRows]:
    """Return every article of a local index (embeddings.store.Store) with its rows, as Milvus stores them."""
    from embeddings.indexer import _passage_terms
    from embeddings.store import ARTICLE, END, FIRST_SENTENCE, SENTENCE_STOP, START

    vectors = store.passage_index.reconstruct_n(0, store.passage_index.ntotal)
    rows = []
    for number, article in enumerate(store.articles):
        p_rows = np.flatnonzero(store.passages[:, ARTICLE] == number)
        s_rows = np.flatnonzero(store.sentences[:, ARTICLE] == number)
        base = s_rows[0] if len(s_rows) else 0
        table = store.passages[p_rows][:, [START, END, FIRST_SENTENCE, SENTENCE_STOP]].copy()
        table[:, 2:] -= base
        rows.append(
            ArticleRows(
                article, table, store.sentences[s_rows][:, [START, END]],
                [_passage_terms(store.articles, store.sentences, p) for p in store.passages[p_rows]],
                vectors[p_rows], np.asarray(store.sentence_vectors[s_rows], dtype=np.float32),
            )  # fmt: skip
        )
    return rows
