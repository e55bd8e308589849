"""Indexer: scan article files, embed only what changed, and write a new generation of the index."""

from __future__ import annotations

import copy
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import bm25s
import numpy as np
from tqdm import tqdm

from embeddings import store as index_store
from embeddings.articles import Article, LoadError, Skipped, check_file, read_articles
from embeddings.encoder import Encoder, encoder_for_index, same_model_folder
from embeddings.passages import CHUNKING, chunk_article, passage_document
from embeddings.terms import terms


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
        """Return True if the run wrote a new index generation."""
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


def _read_sources(
    files: list[Path], old_sources: dict, old_articles: dict[str, Article] | None
) -> tuple[dict, list[Article], list[Skipped]]:
    """Return the source records, articles and skips of `files`; unchanged files are not parsed again.

    A file indexed earlier that cannot be read now keeps its earlier articles (and says so).
    """
    sources, articles, skipped = {}, [], []
    for file in files:
        name = display_path(file)
        old = old_sources.get(name) if old_articles is not None else None
        try:
            check_file(file, file.stat().st_size)
            data = file.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if old and old["sha256"] == digest:
                found = [old_articles[i] for i in old["articles"]]
                line_skips = [Skipped(path, reason) for path, reason in old["skipped"]]
            else:
                found, line_skips = read_articles(file, data, display_path=name)
        except (OSError, LoadError) as error:
            reason = f"cannot read: {error.strerror or error}" if isinstance(error, OSError) else str(error)
            if old:
                sources[name] = copy.deepcopy(old)
                articles += [old_articles[i] for i in old["articles"]]
                reason += "; the version indexed earlier is kept"
            skipped.append(Skipped(name, reason))
            continue
        sources[name] = {"sha256": digest, "articles": [a.id for a in found], "skipped": []}
        sources[name]["skipped"] = [[s.path, s.reason] for s in line_skips]
        skipped += line_skips
        articles += found
    return sources, articles, skipped


def _drop_duplicates(articles: list[Article], sources: dict) -> tuple[list[Article], list[Skipped]]:
    """Return the articles without repeated ids or repeated texts (the first one wins), and the skips."""
    by_id: dict[str, Article] = {}
    by_text: dict[str, Article] = {}
    kept, skipped = [], []
    for article in articles:
        text_key = hashlib.sha256(article.text.strip().encode()).hexdigest()
        if article.id in by_id:
            reason = f"duplicate article id {article.id!r} (already indexed from {by_id[article.id].path})"
        elif text_key in by_text:
            reason = f"same text as article {by_text[text_key].id!r} ({by_text[text_key].path})"
        else:
            by_id[article.id] = by_text[text_key] = article
            kept.append(article)
            continue
        skipped.append(Skipped(f"{article.path} [{article.id}]", reason))
        if article.path in sources:
            sources[article.path]["articles"].remove(article.id)
            sources[article.path]["skipped"].append([skipped[-1].path, reason])
    return kept, skipped


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
) -> IndexReport:
    """Index the article files under `paths` into `index_dir`, embedding only new or changed articles.

    Files indexed earlier from under `paths` that are gone now are removed; everything indexed from
    elsewhere is kept. With `rebuild`, the old index is ignored and everything is embedded again.
    The model is `encoder` if given, else the one in `model_path`, else the index's own, else the default.
    `on_progress(done, total)` is called as texts are embedded (for a progress bar in a page).

    Raises:
        StoreError: the existing index is damaged or was built with another model (use `rebuild`).
        ModelError: the model folder cannot be used.
    """
    started = time.perf_counter()
    index_dir = Path(index_dir)
    with index_store.write_lock(index_dir, wait_message=on_wait):
        manifest = None if rebuild else index_store.read_manifest(index_dir)
        encoder = encoder or encoder_for_index(manifest, model_path)
        old, rechunk = None, False
        if manifest:
            recorded = manifest["model"]["fingerprint"]
            if not same_model_folder(recorded, encoder.fingerprint):
                raise index_store.StoreError(
                    f"The index in {index_dir} was built with the model {manifest['model']['name']!r}, not "
                    f"{encoder.name!r}. Re-embed everything with: assistant index --rebuild PATH ..."
                )
            old = index_store.load(index_dir)
            # Other chunking settings, or the same model run by a newer encoder recipe: split and embed all again.
            rechunk = manifest.get("chunking") != CHUNKING or recorded != encoder.fingerprint
        old_articles = old.article_by_id if old else {}
        old_sources = manifest["sources"] if manifest else {}

        roots = [Path(p).resolve() for p in paths]
        files, skipped = scan([Path(p) for p in paths])
        sources, found, read_skips = _read_sources(files, old_sources, old_articles if old else None)
        kept_sources = {k: v for k, v in old_sources.items() if k not in sources and not _under(k, roots)}
        kept = [old_articles[i] for source in kept_sources.values() for i in source["articles"]]
        articles, duplicate_skips = _drop_duplicates(kept + found, sources)
        sources.update(kept_sources)

        report = IndexReport(read=len(found), skipped=skipped + read_skips + duplicate_skips)
        new_ids = {a.id for a in articles}
        report.added = [a.id for a in articles if a.id not in old_articles]
        report.updated = [
            a.id for a in articles if a.id in old_articles and (rechunk or old_articles[a.id].hash != a.hash)
        ]
        report.removed = [i for i in old_articles if i not in new_ids]
        if report.changed or sources != old_sources:
            _write(index_dir, encoder, old if not rechunk else None, articles, sources, report, progress, on_progress)
        report.articles = len(articles)
        report.passages = old.manifest["counts"]["passages"] if old and not report.changed else report.passages
        report.seconds = time.perf_counter() - started
        return report


def embedding_texts(article: Article, sentences: list, passages: list) -> list[str]:
    """Return the texts embedded for one chunked article: each passage's document, then each sentence."""
    documents = [passage_document(article, sentences[p.first_sentence : p.sentence_stop]) for p in passages]
    return documents + [article.text[a:b] for a, b in sentences]


def _write(index_dir, encoder, old, articles, sources, report, progress, on_progress) -> None:
    """Assemble the tables and vectors of `articles`, reusing the old rows of unchanged ones, and write them."""
    old_rows = {a.id: row for row, a in enumerate(old.articles)} if old else {}
    reuse = {a.id for a in articles if a.id in old_rows and old.articles[old_rows[a.id]].hash == a.hash}
    new_passages, to_embed = [], []
    for row, article in enumerate(articles):
        if article.id in reuse:
            continue
        sentences, passages = chunk_article(article, **CHUNKING)
        new_passages.append((row, sentences, passages))
        to_embed += embedding_texts(article, sentences, passages)

    vectors = np.zeros((0, 0), dtype=np.float32)
    if to_embed:
        done = 0
        with tqdm(total=len(to_embed), desc="Embedding", unit="text", disable=not progress) as bar:

            def advance(count: int) -> None:
                nonlocal done
                done += count
                bar.update(count)
                if on_progress:
                    on_progress(done, len(to_embed))

            vectors = encoder.encode(to_embed, progress=advance)
    recorded_model = old.manifest["model"] if old and not to_embed else encoder.describe()
    dimension = vectors.shape[1] if to_embed else recorded_model["dimension"]

    passage_rows, sentence_rows, passage_vectors, sentence_vectors = [], [], [], []
    old_passage_vectors = old.passage_index.reconstruct_n(0, old.passage_index.ntotal) if old and reuse else None
    fresh = iter(new_passages)
    cursor = 0
    for row, article in enumerate(articles):
        base = sum(len(rows) for rows in sentence_rows)
        if article.id in reuse:
            old_row = old_rows[article.id]
            p_mask = old.passages[:, index_store.ARTICLE] == old_row
            s_idx = np.flatnonzero(old.sentences[:, index_store.ARTICLE] == old_row)
            table = old.passages[p_mask].copy()
            table[:, index_store.ARTICLE] = row
            table[:, index_store.FIRST_SENTENCE :] += base - (s_idx[0] if len(s_idx) else 0)
            sentences = old.sentences[s_idx].copy()
            sentences[:, index_store.ARTICLE] = row
            passage_rows.append(table)
            sentence_rows.append(sentences)
            passage_vectors.append(old_passage_vectors[p_mask])
            sentence_vectors.append(np.asarray(old.sentence_vectors[s_idx], dtype=np.float32))
            continue
        _, sentences, passages = next(fresh)
        passage_rows.append(
            np.array(
                [[row, p.start, p.end, base + p.first_sentence, base + p.sentence_stop] for p in passages]
            ).reshape(-1, 5)
        )
        sentence_rows.append(np.array([[row, a, b] for a, b in sentences]).reshape(-1, 3))
        passage_vectors.append(vectors[cursor : cursor + len(passages)])
        cursor += len(passages)
        sentence_vectors.append(vectors[cursor : cursor + len(sentences)])
        cursor += len(sentences)
        report.embedded_passages += len(passages)

    def stack(parts, width, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros((0, width), dtype=dtype)

    passages_table = stack(passage_rows, 5, np.int64)
    sentences_table = stack(sentence_rows, 3, np.int64)
    bm25 = None
    if len(passages_table):
        bm25 = bm25s.BM25()
        bm25.index([_passage_terms(articles, sentences_table, p) for p in passages_table], show_progress=False)
    manifest = {
        "model": dict(recorded_model, dimension=dimension),
        "normalized": True,
        "metric": "inner_product",
        "chunking": CHUNKING,
        "counts": {"articles": len(articles), "passages": len(passages_table), "sentences": len(sentences_table)},
        "articles": {a.id: a.hash for a in articles},
        "sources": sources,
    }
    index_store.write(
        index_dir,
        manifest=manifest,
        articles=articles,
        passages=passages_table,
        sentences=sentences_table,
        passage_vectors=stack(passage_vectors, dimension, np.float32),
        sentence_vectors=stack(sentence_vectors, dimension, np.float32),
        bm25=bm25,
    )
    report.passages = len(passages_table)


def _passage_terms(articles: list[Article], sentences: np.ndarray, passage: np.ndarray) -> list[str]:
    """Return the BM25 terms of one passage row: its article's title and its sentences."""
    article = articles[passage[index_store.ARTICLE]]
    rows = sentences[passage[index_store.FIRST_SENTENCE] : passage[index_store.SENTENCE_STOP]]
    return terms(passage_document(article, [(a, b) for _, a, b in rows])) or [""]
