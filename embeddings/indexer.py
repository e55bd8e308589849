"""Indexer: scan article files as streams, embed only what changed, and commit it to the index in batches."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from embeddings import backend
from embeddings.articles import JSONL_SUFFIXES, Article, LoadError, Skipped, check_file, read_articles, stream_jsonl
from embeddings.backend import Change, Embedded, Source, StoreError, Writer, text_key
from embeddings.encoder import Encoder, encoder_for_index, same_model_folder
from embeddings.passages import CHUNKING, chunk_article, passage_document
from embeddings.terms import terms

BATCH_TEXTS = 2000
"""Texts (passages and sentences) embedded before a batch of articles is committed: a rerun resumes from there."""


@dataclass
class IndexReport:
    """What an indexing run did: the corpus after it, what changed, and every file skipped with its reason."""

    articles: int = 0
    passages: int = 0
    read: int = 0
    """Articles read from the given paths in this run, new or unchanged."""
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    embedded_passages: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        """Return True if the run added, updated or removed articles."""
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        """Return a few readable lines: totals, changes and skipped files."""
        lines = [
            f"Indexed {self.articles} articles, {self.passages} passages "
            f"({len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} removed; "
            f"{self.embedded_passages} passages embedded) in {self.seconds:.1f} s."
        ]
        if not self.changed:
            lines.append("Nothing changed: the index is up to date.")
        if self.skipped:
            lines.append(f"Skipped {len(self.skipped)}:")
            lines += [f"  {item.path}: {item.reason}" for item in self.skipped]
        return "\n".join(lines)


def display_path(path: Path) -> str:
    """Return a path relative to the working folder when it lies inside it, else absolute."""
    absolute = path.resolve()
    try:
        return str(absolute.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(absolute)


def scan(paths: list[Path]) -> tuple[list[Path], list[Skipped]]:
    """Return the files under `paths` (folders are walked, hidden entries ignored) and the paths not found."""
    files, skipped = [], []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            for root, folders, names in os.walk(path):
                folders[:] = sorted(f for f in folders if not f.startswith("."))
                files += [Path(root) / n for n in sorted(names) if not n.startswith(".")]
        else:
            skipped.append(Skipped(str(path), "no such file or folder"))
    return files, skipped


def _under(source: str, roots: list[Path]) -> bool:
    path = Path(source).resolve()
    return any(path == root or root in path.parents for root in roots)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def embedding_texts(article: Article, sentences: list, passages: list) -> list[str]:
    """Return the texts embedded for one chunked article: each passage's document, then each sentence."""
    documents = [passage_document(article, sentences[p.first_sentence : p.sentence_stop]) for p in passages]
    return documents + [article.text[a:b] for a, b in sentences]


def embed(articles: list[Article], chunks: list[tuple], encoder: Encoder, *, progress=None) -> list[Embedded]:
    """Return chunked articles (chunk_article's sentences and passages) embedded and split into BM25 terms."""
    texts = [text for article, chunk in zip(articles, chunks) for text in embedding_texts(article, *chunk)]
    vectors = encoder.encode(texts, progress=progress)
    embedded, cursor = [], 0
    for article, (sentences, passages) in zip(articles, chunks):
        passage_vectors = vectors[cursor : cursor + len(passages)]
        sentence_vectors = vectors[cursor + len(passages) : cursor + len(passages) + len(sentences)]
        cursor += len(passages) + len(sentences)
        documents = [passage_document(article, sentences[p.first_sentence : p.sentence_stop]) for p in passages]
        terms_of = [terms(document) for document in documents]
        embedded.append(Embedded(article, sentences, passages, passage_vectors, sentence_vectors, terms_of))
    return embedded


class Run:
    """One indexing run: articles offered in scan order (the first of a duplicate wins), committed in batches."""

    def __init__(self, writer: Writer, encoder: Encoder, roots: list[Path], report: IndexReport, rechunk: bool):
        self.writer, self.encoder, self.roots, self.report, self.rechunk = writer, encoder, roots, report, rechunk
        self.recorded = writer.sources()
        self.model = writer.model if writer.model and not rechunk else encoder.describe()
        self.seen_ids: dict[str, str] = {}  # id -> source, for the articles this run keeps
        self.seen_texts: dict[str, tuple[str, str]] = {}  # text key -> (id, source)
        self.pending: list[Article] = []
        self.chunks: list[tuple] = []  # chunk_article's (sentences, passages) of each pending article
        self.pending_texts = 0
        self.file_bytes = 0  # bytes of the current file shown on the progress bar
        self.change = Change()
        self.embedded_texts = 0
        self.bar = None
        self.on_progress = None
        self.batch_texts = BATCH_TEXTS

    def rereading(self, source: str) -> bool:
        """Return True if `source` lies under the paths of this run (read again now, or removed as gone)."""
        return _under(source, self.roots)

    def read_file(self, file: Path) -> None:
        """Read one file: unchanged ones keep their articles, others are parsed; a file that fails is reported."""
        name = display_path(file)
        old = self.recorded.get(name)
        try:
            check_file(file, file.stat().st_size)
            digest = _file_sha256(file)
            if old and old.sha256 == digest and not self.rechunk:
                self.keep_source(name, old)
                return
            seen, line_skips = self.read_source(file, name)
        except Exception as error:  # also a broken optional dependency or a parser bug: this file only
            kept = "; the version indexed earlier is kept" if old else ""
            self.report.skipped.append(Skipped(name, _reason(error) + kept))
            return
        self.change.sources[name] = Source(digest, [[s.path, s.reason] for s in line_skips])
        self.report.skipped += line_skips
        self.delete([i.id for i in self.writer.from_source(name) if i.id not in seen])

    def read_source(self, file: Path, name: str) -> tuple[set[str], list[Skipped]]:
        """Offer the articles of a new or changed file; return the ids kept from it and its skipped lines."""
        seen, skips = set(), []
        if file.suffix.lower() in JSONL_SUFFIXES:
            with file.open("rb") as handle:
                for item in stream_jsonl(handle, name):
                    self.report.read += not isinstance(item, Skipped)
                    self.take(item, name, seen, skips)
                    self.show_bytes(handle.tell())
        else:
            for item in read_articles(file, file.read_bytes(), display_path=name)[0]:
                self.report.read += 1
                self.take(item, name, seen, skips)
        return seen, skips

    def take(self, item: Article | Skipped, name: str, seen: set[str], skips: list[Skipped]) -> None:
        """Offer an article read from `name` (or note a skipped line), committing a batch when one is full."""
        if isinstance(item, Skipped):
            skips.append(item)
            return
        duplicate = self.duplicate(item, name)
        if duplicate:
            skips.append(Skipped(f"{item.path} [{item.id}]", duplicate))
            return
        seen.add(item.id)
        self.register(item.id, text_key(item), name)
        live = self.writer.indexed(item.id)
        if live and live.hash == item.hash and not self.rechunk:
            return
        (self.report.updated if live else self.report.added).append(item.id)
        self.pending.append(item)
        self.chunks.append(chunk_article(item, **CHUNKING))
        self.pending_texts += sum(map(len, self.chunks[-1]))
        if self.pending_texts >= self.batch_texts and not self.rechunk:
            self.commit()

    def duplicate(self, article: Article, name: str) -> str | None:
        """Return why `article` from `name` repeats one kept already (same id or same text), None if it does not."""
        key = text_key(article)
        if article.id in self.seen_ids:
            return f"duplicate article id {article.id!r} (already indexed from {self.seen_ids[article.id]})"
        if key in self.seen_texts:
            return "same text as article {!r} ({})".format(*self.seen_texts[key])
        live = self.writer.indexed(article.id)
        if live and live.source != name and not self.rereading(live.source):
            return f"duplicate article id {article.id!r} (already indexed from {live.source})"
        owner = self.writer.with_text(key)
        if owner and owner.id != article.id and owner.source != name and not self.rereading(owner.source):
            return f"same text as article {owner.id!r} ({owner.source})"
        return None

    def register(self, article_id: str, key: str, name: str) -> None:
        self.seen_ids[article_id] = name
        self.seen_texts[key] = (article_id, name)

    def keep_source(self, name: str, old: Source) -> None:
        """Keep an unchanged file's articles, unless one repeats an article kept earlier in this run."""
        skips = [Skipped(path, reason) for path, reason in old.skipped]
        for indexed in self.writer.from_source(name):
            self.report.read += 1
            if indexed.id in self.seen_ids or indexed.text_key in self.seen_texts:
                first = self.seen_ids.get(indexed.id) or self.seen_texts[indexed.text_key][1]
                skips.append(Skipped(f"{name} [{indexed.id}]", f"repeats an article already indexed from {first}"))
                self.delete([indexed.id])
            else:
                self.register(indexed.id, indexed.text_key, name)
        if len(skips) > len(old.skipped):
            self.change.sources[name] = Source(old.sha256, [[s.path, s.reason] for s in skips])
        self.report.skipped += skips

    def drop_gone(self, names: set[str]) -> None:
        """Remove the articles of files under this run's paths that are gone, and their records."""
        for name in self.recorded:
            if name not in names and self.rereading(name):
                self.change.dropped_sources.append(name)
                self.delete([i.id for i in self.writer.from_source(name)])

    def reembed_kept(self, names: set[str]) -> None:
        """Embed again the articles of files outside this run's paths (the model or chunking changed)."""
        for name in self.recorded:
            if name not in names and not self.rereading(name):
                for indexed in self.writer.from_source(name):
                    self.take(self.writer.read(indexed.id), name, set(), [])

    def delete(self, ids: list[str]) -> None:
        """Delete articles at the next commit; those not kept from another file count as removed."""
        self.change.deletes += ids
        self.report.removed += [i for i in ids if i not in self.seen_ids]

    def show_bytes(self, position: int) -> None:
        """Move the progress bar to `position` bytes into the current file."""
        if self.bar is not None and position > self.file_bytes:
            self.bar.update(position - self.file_bytes)
            self.file_bytes = position

    def commit(self) -> None:
        """Embed the pending articles and write them with the changes gathered so far."""
        if self.pending:
            done = self.embedded_texts
            total = done + self.pending_texts

            def advance(count: int) -> None:
                self.embedded_texts += count
                if self.bar is not None:
                    self.bar.set_postfix_str(
                        f"{len(self.seen_ids):,} articles, {self.embedded_texts:,} texts", refresh=False
                    )
                if self.on_progress:
                    self.on_progress(self.embedded_texts, total)

            self.change.upserts = embed(self.pending, self.chunks, self.encoder, progress=advance)
            self.report.embedded_passages += sum(len(e.passages) for e in self.change.upserts)
        if not self.change.empty:
            self.writer.commit(self.change, model=self.model, chunking=CHUNKING)
        self.pending, self.chunks, self.pending_texts, self.change = [], [], 0, Change()


def _reason(error: Exception) -> str:
    """Return one line saying why a file could not be read."""
    if isinstance(error, LoadError):
        return str(error)
    if isinstance(error, OSError):
        return f"cannot read: {error.strerror or error}"
    return f"could not be read ({type(error).__name__}: {error})"


def _check_model(writer: Writer, encoder: Encoder, index_dir: Path) -> bool:
    """Raise StoreError if the index was built with another model; return True if everything must be re-embedded."""
    if writer.model is None:
        return False
    if not same_model_folder(writer.model["fingerprint"], encoder.fingerprint):
        raise StoreError(
            f"The index in {index_dir} was built with the model {writer.model['name']!r}, not "
            f"{encoder.name!r}. Re-embed everything with: assistant index --rebuild PATH ..."
        )
    # Other chunking settings, or the same model run by a newer encoder recipe: split and embed all again.
    return writer.chunking != CHUNKING or writer.model["fingerprint"] != encoder.fingerprint


def update_index(
    paths: list[Path],
    *,
    index_dir: Path,
    model_path: str | Path | None = None,
    encoder: Encoder | None = None,
    rebuild: bool = False,
    progress: bool = True,
    on_wait=None,
    on_progress=None,
    batch_texts: int = BATCH_TEXTS,
) -> IndexReport:
    """Index the article files under `paths` into `index_dir`, embedding only new or changed articles.

    Files indexed earlier from under `paths` that are gone now are removed; everything indexed from
    elsewhere is kept. With `rebuild`, the old index is ignored and everything is embedded again.
    The model is `encoder` if given, else the one in `model_path`, else the index's own, else the default.
    Files are read as streams and articles committed in batches: an interrupted run, run again, embeds only
    what the first did not commit (a batch is `batch_texts` texts). `on_progress(done, total)` is called as texts
    are embedded (a page's bar).

    Raises:
        StoreError: the existing index is damaged or was built with another model (use `rebuild`).
        ModelError: the model folder cannot be used.
    """
    started = time.perf_counter()
    with backend.open_writer(index_dir, rebuild=rebuild, on_wait=on_wait) as writer:
        encoder = encoder or encoder_for_index({"model": writer.model} if writer.model else None, model_path)
        rechunk = _check_model(writer, encoder, index_dir)
        files, skipped = scan([Path(p) for p in paths])
        report = IndexReport(skipped=skipped)
        run = Run(writer, encoder, [Path(p).resolve() for p in paths], report, rechunk)
        run.on_progress, run.batch_texts = on_progress, batch_texts
        _read_all(run, files, progress)
        report.articles, report.passages = writer.counts()["articles"], writer.counts()["passages"]
    report.seconds = time.perf_counter() - started
    return report


def _read_all(run: Run, files: list[Path], progress: bool) -> None:
    """Read every file into the run, drop gone files, and commit what is left, behind a progress bar."""
    sizes = [file.stat().st_size if file.is_file() else 0 for file in files]
    with tqdm(total=sum(sizes), desc="Indexing", unit="B", unit_scale=True, disable=not progress) as bar:
        run.bar = bar
        for file, size in zip(files, sizes):
            run.file_bytes = 0
            run.read_file(file)
            run.show_bytes(size)
        names = {display_path(file) for file in files}
        run.drop_gone(names)
        if run.rechunk:
            run.reembed_kept(names)
        run.commit()


def compact_index(index_dir: Path, *, on_wait=None) -> None:
    """Merge the index's segments into one, dropping deleted articles (after checking every file's checksum)."""
    with backend.open_writer(index_dir, on_wait=on_wait) as writer:
        writer.compact()
