"""Uploads: article files sent from the page, checked, saved into the upload folder and indexed."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from embeddings import backend
from embeddings.articles import Article, LoadError, Skipped, read_articles
from embeddings.encoder import Encoder
from embeddings.indexer import IndexReport, display_path, update_index
from embeddings.settings import MAX_UPLOAD_FILES

_UNSAFE_NAME = re.compile(r"[^\w.-]+")


def safe_name(name: str) -> str:
    """Return an uploaded file's name reduced to a plain file name: no folders, only word characters, '.' and '-'."""
    base = Path(name.replace("\\", "/")).name
    return _UNSAFE_NAME.sub("_", base).lstrip(".")


def save_uploads(
    files: list[tuple[str, bytes]], folder: Path, *, max_files: int = MAX_UPLOAD_FILES
) -> tuple[list[Path], list[Skipped]]:
    """Return the files saved into `folder` and those refused with their reasons.

    A file is saved only if it reads as at least one article, so a broken file never reaches the corpus.
    A file with the name of an earlier upload replaces it (the same article id, updated).
    """
    folder = Path(folder)
    saved: list[Path] = []
    refused: list[Skipped] = []
    names: set[str] = set()
    for number, (name, data) in enumerate(files, start=1):
        clean = safe_name(name)
        if number > max_files:
            refused.append(Skipped(name, f"only {max_files} files can be added at once; add this one again"))
            continue
        if not Path(clean).stem:
            refused.append(Skipped(name, "the file name is empty"))
            continue
        if clean in names:
            refused.append(Skipped(name, f"another file in this upload is also named {clean}"))
            continue
        try:
            read_articles(Path(clean), data, display_path=clean)
        except LoadError as error:
            refused.append(Skipped(name, str(error)))
            continue
        names.add(clean)
        folder.mkdir(parents=True, exist_ok=True)
        saved.append(_write_atomically(folder / clean, data))
    return saved, refused


def _write_atomically(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file and a rename; return `path`."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


@dataclass(frozen=True)
class UploadedFile:
    """A file of an upload that is in the corpus now: its name, what indexing did with it, its articles as read."""

    name: str
    change: str
    """"added", "updated" or "unchanged"."""
    articles: list[Article]


@dataclass
class UploadReport:
    """What an upload did: the indexing run, and each of the upload's files that is in the corpus now."""

    index: IndexReport
    files: list[UploadedFile] = field(default_factory=list)


def index_uploads(
    files: list[tuple[str, bytes]],
    *,
    folder: Path,
    index_dir: Path,
    encoder: Encoder | None = None,
    on_progress=None,
) -> UploadReport:
    """Save the uploaded (name, bytes) files into `folder`, index that folder incrementally, and say what came in.

    The report's `skipped` lists only this upload's files: those refused before saving, then those the
    indexer skipped (a malformed JSONL line, an article already in the corpus). A saved file none of whose
    articles was indexed (each one duplicates an indexed article) is deleted again.
    """
    saved, refused = save_uploads(files, folder)
    if not saved:
        return UploadReport(IndexReport(skipped=refused))
    report = update_index([folder], index_dir=index_dir, encoder=encoder, progress=False, on_progress=on_progress)
    mine = tuple(display_path(path) for path in saved)
    report.skipped = refused + [item for item in report.skipped if item.path.startswith(mine)]
    with backend.open_writer(index_dir) as writer:  # what each saved file holds now, read under the lock
        holds = {path: {i.id for i in writer.from_source(display_path(path))} for path in saved}
    kept = []
    for path in saved:
        indexed = holds[path]
        if not indexed:
            path.unlink(missing_ok=True)
            continue
        articles, _ = read_articles(path, path.read_bytes(), display_path=display_path(path))
        articles = [a for a in articles if a.id in indexed]
        ids = {a.id for a in articles}
        change = "added" if ids & set(report.added) else "updated" if ids & set(report.updated) else "unchanged"
        kept.append(UploadedFile(path.name, change, articles))
    return UploadReport(report, kept)
