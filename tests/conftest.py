"""Shared fixtures: the real model, and an index of the seed articles built once per test run."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.service import Assistant
from embeddings.encoder import Encoder
from embeddings.indexer import update_index

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """Return the default model (packaged all-MiniLM-L6-v2), loaded once.

    Loading it also exports the int8 ONNX model on a fresh machine, so that no later test pays for that.
    """
    encoder = Encoder()
    assert encoder.dimension == 384
    return encoder


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, encoder) -> Path:
    """Return an index folder holding the five seed articles."""
    index_dir = tmp_path_factory.mktemp("seed-index")
    report = update_index([SEEDS], index_dir=index_dir, encoder=encoder, progress=False)
    assert report.articles == 5 and not report.skipped
    return index_dir


@pytest.fixture(scope="session")
def seed_assistant(seed_index, encoder) -> Assistant:
    """Return an assistant over the seed index."""
    return Assistant(seed_index, encoder=encoder)
