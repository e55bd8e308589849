"""Store: the index folder. A manifest names one generation folder of plain files; writes are atomic.

Layout of an index folder:

    manifest.json          model, dimension, counts, chunking, a hash per article and source file
    g000007/
        articles.jsonl     one article per line, with its full text
        passages.npy       int64 rows: article row, start, end, first sentence, sentence stop
        sentences.npy      int64 rows: article row, start, end
        passages.faiss     FAISS inner-product index, exact or IVF-fp16 by size (vector_index); row i is passage i
        sentences.f16.npy  float16 unit vectors; row i is sentence i
        bm25/              bm25s index over the passages' terms
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import bm25s
import faiss
import numpy as np

from embeddings import vector_index
from embeddings.articles import Article
from embeddings.encoder import same_model_folder

FORMAT = 1
MANIFEST = "manifest.json"
LOCK = ".lock"
FILES = ("articles.jsonl", "passages.npy", "sentences.npy", "passages.faiss", "sentences.f16.npy")

_GENERATION = re.compile(r"g\d{6}")
# Manifest fields every reader relies on, and their types.
_FIELDS = {
    "generation": str,
    "files": dict,
    "sha256": dict,
    "model": dict,
    "counts": dict,
    "articles": dict,
    "sources": dict,
    "chunking": dict,
}

# Columns of the passages and sentences tables.
ARTICLE, START, END, FIRST_SENTENCE, SENTENCE_STOP = range(5)


class StoreError(RuntimeError):
    """An index folder that cannot be used as it is; the message says what is wrong and how to fix it."""


@dataclass
class Store:
    """An index folder loaded into memory: articles, passage and sentence tables, vectors and BM25."""

    path: Path
    manifest: dict
    articles: list[Article]
    passages: np.ndarray
    sentences: np.ndarray
    passage_index: faiss.Index
    sentence_vectors: np.ndarray
    bm25: bm25s.BM25 | None

    @property
    def generation(self) -> str:
        """Return the name of the generation folder this store was loaded from."""
        return self.manifest["generation"]

    @cached_property
    def article_by_id(self) -> dict[str, Article]:
        """Return the articles by id, built on first use."""
        return {article.id: article for article in self.articles}

    def passage_text(self, row: int) -> str:
        """Return the article text spanned by passage `row`."""
        article, start, end = self.passages[row, :3]
        return self.articles[article].text[start:end]


def manifest_signature(index_dir: Path) -> tuple | None:
    """Return what identifies the manifest file's current version (inode, size, times), None if there is none.

    Each write renames a new file over the manifest, so a new version comes with another inode number or other
    times: a reader can tell that nothing changed without parsing it (it lists every article).
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
        return f"names an invalid generation folder {manifest['generation']!r}"
    files, checksums = manifest["files"], manifest["sha256"]
    if set(files) != set(checksums) or not set(FILES) <= set(files):
        return "does not list every index file with its size and checksum"
    for name, size in files.items():
        if Path(name).is_absolute() or ".." in Path(name).parts or not isinstance(size, int):
            return f"lists an invalid file entry {name!r}"
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


def _broken(index_dir: Path, what: str) -> str:
    return f"The index in {index_dir} is damaged: {what}. Rebuild it with: assistant index --rebuild PATH ..."


def _unreadable(index_dir: Path, manifest: dict, error: Exception) -> str:
    return _broken(index_dir, f"a file of {manifest['generation']} is unreadable ({error})")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):  # large reads: few waits for the GIL
            digest.update(block)
    return digest.hexdigest()


def _first_mismatch(folder: Path, checksums: dict[str, str]) -> str | None:
    """Return the name of the first file in `folder` whose sha256 differs from `checksums`, None if all match."""
    return next((name for name, digest in checksums.items() if _sha256(folder / name) != digest), None)


def load(index_dir: Path, *, model_fingerprint: str | None = None, attempts: int = 3) -> Store:
    """Return the index stored in `index_dir`, after checking every file against the manifest.

    Args:
        index_dir: the index folder.
        model_fingerprint: the identity of the model that will encode questions; a different model is refused.
        attempts: how many times to follow a manifest that a concurrent indexing run switched while loading.

    Raises:
        StoreError: no index, a damaged one, or one built with another model.
    """
    index_dir = Path(index_dir)
    for _ in range(attempts - 1):
        manifest = read_manifest(index_dir)
        try:
            return _load_generation(index_dir, manifest, model_fingerprint)
        except StoreError:
            latest = read_manifest(index_dir)
            if latest is None or manifest is None or latest["generation"] == manifest["generation"]:
                raise
    return _load_generation(index_dir, read_manifest(index_dir), model_fingerprint)


def _load_generation(index_dir: Path, manifest: dict | None, model_fingerprint: str | None) -> Store:
    """Return the generation a manifest names, after checking its files' sizes and checksums."""
    if manifest is None:
        raise StoreError(f"No index in {index_dir}. Build one with: assistant index PATH ...")
    model = manifest["model"]
    if model_fingerprint and model["fingerprint"] != model_fingerprint:
        if same_model_folder(model["fingerprint"], model_fingerprint):
            raise StoreError(
                f"The index in {index_dir} was embedded by an older or other encoder of the model {model['name']!r} "
                f"({model['fingerprint'].partition('+')[2] or 'torch'}). Embed it again with: assistant index PATH ..."
            )
        raise StoreError(
            f"The index in {index_dir} was built with the model {model['name']!r} ({model['path']}), "
            "not the one loaded now. Use --model with that folder, or rebuild: assistant index --rebuild PATH ..."
        )
    folder = index_dir / manifest["generation"]
    for name, size in manifest["files"].items():
        file = folder / name
        if not file.is_file() or file.stat().st_size != size:
            raise StoreError(_broken(index_dir, f"{manifest['generation']}/{name} is missing or truncated"))
    # Checksums are computed on a second thread (hashing frees the GIL) while the articles' JSON is parsed; the binary
    # files are opened only once every checksum matched.
    unreadable = (OSError, ValueError, TypeError, KeyError, RuntimeError)
    with ThreadPoolExecutor(max_workers=1) as hasher:
        mismatch = hasher.submit(_first_mismatch, folder, manifest["sha256"])
        try:
            articles = [Article.from_json(json.loads(line)) for line in (folder / FILES[0]).open(encoding="utf-8")]
        except unreadable as error:
            raise StoreError(_unreadable(index_dir, manifest, error)) from error
        finally:  # a damaged file is named as such, even when it also made the articles unreadable
            if mismatch.result():
                damaged = f"{manifest['generation']}/{mismatch.result()}"
                raise StoreError(_broken(index_dir, f"{damaged} does not match its checksum"))
    try:
        passages = np.load(folder / FILES[1], allow_pickle=False)
        sentences = np.load(folder / FILES[2], allow_pickle=False)
        passage_index = faiss.read_index(str(folder / FILES[3]))
        sentence_vectors = np.load(folder / FILES[4], mmap_mode="r", allow_pickle=False)
        bm25 = bm25s.BM25.load(str(folder / "bm25"), mmap=True, show_progress=False) if len(passages) else None
    except unreadable as error:
        raise StoreError(_unreadable(index_dir, manifest, error)) from error
    store = Store(index_dir, manifest, articles, passages, sentences, passage_index, sentence_vectors, bm25)
    _check(store)
    return store


def _check(store: Store) -> None:
    """Raise StoreError unless the store's tables, vectors and manifest agree row for row."""
    manifest, counts = store.manifest, store.manifest["counts"]
    problems = []
    # Only ids: articles.jsonl's checksum covers the texts (hashing each article again took 5 s at 1M passages).
    if [a.id for a in store.articles] != list(manifest["articles"]):
        problems.append("articles.jsonl does not hold the articles the manifest lists")
    if store.passages.shape != (counts["passages"], 5) or store.sentences.shape != (counts["sentences"], 3):
        problems.append("the passage or sentence table has the wrong shape")
    if store.passage_index.ntotal != counts["passages"] or store.passage_index.d != manifest["model"]["dimension"]:
        problems.append("the FAISS index does not have one vector per passage")
    if store.passage_index.metric_type != faiss.METRIC_INNER_PRODUCT:
        problems.append("the FAISS index does not compare by inner product")
    if store.sentence_vectors.shape != (counts["sentences"], manifest["model"]["dimension"]):
        problems.append("the sentence vectors do not have one row per sentence")
    if not problems and len(store.passages):
        lengths = np.array([len(a.text) for a in store.articles])
        for table in (store.passages, store.sentences):
            rows = table[:, ARTICLE]
            if rows.min() < 0 or rows.max() >= len(lengths) or (table[:, START] >= table[:, END]).any():
                problems.append("a passage or sentence points outside its article")
            elif (table[:, END] > lengths[rows]).any():
                problems.append("a passage or sentence span runs past its article's end")
        first, stop = store.passages[:, FIRST_SENTENCE], store.passages[:, SENTENCE_STOP]
        if first.min() < 0 or (first >= stop).any() or stop.max() > len(store.sentences):
            problems.append("a passage points at sentences that do not exist")
    if problems:
        raise StoreError(_broken(store.path, "; ".join(problems)))


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


def _next_generation(index_dir: Path, manifest: dict | None) -> str:
    number = int(manifest["generation"][1:]) + 1 if manifest else 1
    while (index_dir / f"g{number:06d}").exists():
        number += 1
    return f"g{number:06d}"


def write(
    index_dir: Path,
    *,
    manifest: dict,
    articles: list[Article],
    passages: np.ndarray,
    sentences: np.ndarray,
    passage_vectors: np.ndarray,
    sentence_vectors: np.ndarray,
    bm25: bm25s.BM25 | None,
) -> dict:
    """Write a new generation of the index and switch the manifest to it; return the manifest written.

    Call with the write lock held. Files go to a temporary folder, are fsynced, and the folder is renamed
    into place; the manifest is replaced last, so a crash at any point leaves the old index or the new one.
    """
    index_dir = Path(index_dir)
    try:
        previous = read_manifest(index_dir)
    except StoreError:
        previous = None  # a rebuild over a damaged index
    generation = _next_generation(index_dir, previous)
    staging = index_dir / f".tmp-{generation}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)  # left by an earlier failed write of this process
    staging.mkdir(parents=True)
    with open(staging / FILES[0], "w", encoding="utf-8") as handle:
        for article in articles:
            handle.write(json.dumps(article.to_json(), ensure_ascii=False) + "\n")
    np.save(staging / FILES[1], passages.astype(np.int64), allow_pickle=False)
    np.save(staging / FILES[2], sentences.astype(np.int64), allow_pickle=False)
    faiss.write_index(vector_index.build(passage_vectors), str(staging / FILES[3]))
    np.save(staging / FILES[4], sentence_vectors.astype(np.float16), allow_pickle=False)
    if bm25 is not None:
        bm25.save(str(staging / "bm25"), show_progress=False)
    for entry in staging.rglob("*"):
        (_fsync_file if entry.is_file() else _fsync_dir)(entry)
    _fsync_dir(staging)
    os.rename(staging, index_dir / generation)
    _fsync_dir(index_dir)

    manifest = dict(manifest, format=FORMAT, generation=generation, updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    folder = index_dir / generation
    files = [f for f in sorted(folder.rglob("*")) if f.is_file()]
    manifest["files"] = {str(f.relative_to(folder)): f.stat().st_size for f in files}
    manifest["sha256"] = {str(f.relative_to(folder)): _sha256(f) for f in files}
    temporary = index_dir / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    _fsync_file(temporary)
    os.replace(temporary, index_dir / MANIFEST)
    _fsync_dir(index_dir)
    _remove_stale(index_dir, keep={generation, previous["generation"] if previous else generation})
    return manifest


def _remove_stale(index_dir: Path, *, keep: set[str]) -> None:
    """Delete generations older than the previous one (readers may still be loading it) and dead staging folders."""
    for entry in index_dir.iterdir():
        stale_generation = entry.name.startswith("g") and entry.name[1:].isdigit() and entry.name not in keep
        if entry.is_dir() and (stale_generation or entry.name.startswith(".tmp-")):
            shutil.rmtree(entry, ignore_errors=True)
