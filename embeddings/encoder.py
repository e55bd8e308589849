"""Encoder: a local sentence-transformers model that turns texts into normalized float32 vectors."""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path

import numpy as np

from embeddings import settings


class ModelError(ValueError):
    """A model folder that cannot be used; the message says why."""


def model_fingerprint(path: Path) -> str:
    """Return a sha256 over the names and contents of a model folder's files (its identity)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if file.name.lower() == "readme.md":
            continue
        digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class Encoder:
    """A sentence-transformers model in a local folder, loaded on first use, on the CPU."""

    def __init__(self, model_path: str | Path | None = None, *, batch_size: int = 64):
        self.path = Path(model_path or settings.model_path()).expanduser().resolve()
        if not (self.path / "modules.json").is_file() and not (self.path / "config.json").is_file():
            raise ModelError(
                f"{self.path} is not a sentence-transformers model folder (no modules.json or config.json)"
            )
        self.batch_size = batch_size

    @cached_property
    def model(self):
        """Return the loaded SentenceTransformer (the first call takes seconds)."""
        from sentence_transformers import SentenceTransformer  # slow import, kept off paths that embed nothing
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        try:
            return SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        except (OSError, ValueError) as error:
            raise ModelError(f"cannot load the model in {self.path}: {error}") from error

    @cached_property
    def dimension(self) -> int:
        """Return the length of the model's vectors."""
        return int(self.model.get_embedding_dimension())

    @property
    def name(self) -> str:
        """Return the model's readable name: its folder's name, or its parent's for a folder named "model"."""
        return self.path.parent.name if self.path.name in ("model", "models") else self.path.name

    @cached_property
    def fingerprint(self) -> str:
        """Return the model's identity, recorded in each index it builds."""
        return model_fingerprint(self.path)

    def describe(self) -> dict:
        """Return the model's identity as recorded in an index manifest."""
        return {"name": self.name, "path": str(self.path), "fingerprint": self.fingerprint, "dimension": self.dimension}

    def encode(self, texts: list[str], *, progress=None) -> np.ndarray:
        """Return unit-length float32 vectors, one row per text; `progress(n)` is called after each batch."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for first in range(0, len(texts), self.batch_size):
            batch = texts[first : first + self.batch_size]
            vectors[first : first + len(batch)] = self.model.encode(
                batch, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
            if progress:
                progress(len(batch))
        return vectors
