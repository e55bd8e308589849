"""Encoder: a local sentence-transformers model that turns texts into normalized float32 vectors."""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path

import numpy as np

from embeddings import onnx_int8, settings


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


def same_model_folder(fingerprint: str, other: str) -> bool:
    """Return True if two encoder fingerprints name the same model folder (the backend or its recipe may differ)."""
    return fingerprint.partition("+")[0] == other.partition("+")[0]


BACKENDS = ("torch", "onnx-int8")
BATCH_SIZE = 64
"""Texts per PyTorch batch. The int8 runner takes texts one by one: its activations are scaled per call, so a text's
vector is then the same whatever it is encoded with, and one-text calls need no padding (as fast as batches of 8)."""


class Encoder:
    """A sentence-transformers model in a local folder, loaded on first use, on the CPU.

    `backend` is "torch" (sentence-transformers in PyTorch, float32) or "onnx-int8" (the same model exported once to
    ONNX with int8 weights, cached under settings.cache_dir(), run by onnxruntime: faster, same rankings). A model
    whose pipeline the ONNX runner does not support runs in PyTorch; `backend` then says "torch".
    """

    def __init__(
        self, model_path: str | Path | None = None, *, backend: str | None = None, batch_size: int = BATCH_SIZE
    ):
        self.path = Path(model_path or settings.model_path()).expanduser().resolve()
        if not (self.path / "modules.json").is_file() and not (self.path / "config.json").is_file():
            raise ModelError(
                f"{self.path} is not a sentence-transformers model folder (no modules.json or config.json)"
            )
        backend = backend or settings.encoder_backend()
        if backend not in BACKENDS:
            raise ModelError(f"unknown encoder backend {backend!r}; use one of: {', '.join(BACKENDS)}")
        self.onnx_pipeline = onnx_int8.pipeline(self.path) if backend == "onnx-int8" else None
        self.backend = "onnx-int8" if self.onnx_pipeline else "torch"
        self.batch_size = batch_size

    @cached_property
    def model(self):
        """Return the loaded SentenceTransformer, or the ONNX runner (the first call takes seconds)."""
        if self.onnx_pipeline:
            return self._onnx_model()
        from sentence_transformers import SentenceTransformer  # slow import, kept off paths that embed nothing
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        try:
            return SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        except (OSError, ValueError) as error:
            raise ModelError(f"cannot load the model in {self.path}: {error}") from error

    def _onnx_model(self) -> onnx_int8.OnnxInt8Model:
        """Return the ONNX runner, exporting the model into the cache first if it is not there yet."""
        folder = settings.cache_dir() / "onnx" / self.folder_fingerprint[:24]
        onnx_file = folder / f"model.int8.r{onnx_int8.RECIPE}.onnx"
        try:
            if not onnx_file.is_file():
                onnx_int8.export(self.onnx_pipeline, onnx_file)
            return onnx_int8.OnnxInt8Model(self.onnx_pipeline, onnx_file)
        except (OSError, ValueError, RuntimeError) as error:
            raise ModelError(f"cannot run the model in {self.path} with ONNX ({onnx_file}): {error}") from error

    @cached_property
    def dimension(self) -> int:
        """Return the length of the model's vectors."""
        if self.onnx_pipeline:
            return self.model.dimension
        return int(self.model.get_embedding_dimension())

    @property
    def name(self) -> str:
        """Return the model's readable name: its folder's name, or its parent's for a folder named "model"."""
        return self.path.parent.name if self.path.name in ("model", "models") else self.path.name

    @cached_property
    def folder_fingerprint(self) -> str:
        """Return the sha256 of the model folder's files, computed once."""
        return model_fingerprint(self.path)

    @cached_property
    def fingerprint(self) -> str:
        """Return the identity of the model, backend and export recipe, recorded in each index it builds."""
        folder = self.folder_fingerprint
        return folder if self.backend == "torch" else f"{folder}+{self.backend}.r{onnx_int8.RECIPE}"

    def describe(self) -> dict:
        """Return the model's identity as recorded in an index manifest."""
        return {
            "name": self.name,
            "path": str(self.path),
            "backend": self.backend,
            "fingerprint": self.fingerprint,
            "dimension": self.dimension,
        }

    def encode(self, texts: list[str], *, progress=None) -> np.ndarray:
        """Return unit-length float32 vectors, one row per text; `progress(n)` is called after each batch."""
        if self.onnx_pipeline:
            vectors = self.model.encode(texts, progress=progress)
            return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for first in range(0, len(texts), self.batch_size):
            batch = texts[first : first + self.batch_size]
            vectors[first : first + len(batch)] = self.model.encode(
                batch, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
            if progress:
                progress(len(batch))
        return vectors


def encoder_for_index(manifest: dict | None, model_path: str | Path | None = None) -> Encoder:
    """Return the encoder for an index: `model_path` if given, else the model and backend the index records.

    With no index yet (`manifest` None), the default model and backend.
    """
    if manifest is None:
        return Encoder(model_path)
    recorded = Path(manifest["model"]["path"])
    backend = manifest["model"].get("backend", "torch")
    return Encoder(model_path or (recorded if recorded.is_dir() else None), backend=backend)
