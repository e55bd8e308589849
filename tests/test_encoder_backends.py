"""Encoder backends: the int8 ONNX export agrees with sentence-transformers in PyTorch and is told apart from it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.service import Assistant
from embeddings import store as index_store
from embeddings.encoder import Encoder, ModelError
from embeddings.indexer import update_index
from embeddings.store import StoreError
from tests.conftest import SEEDS


@pytest.fixture(scope="module")
def seed_sentences() -> list[str]:
    text = " ".join(path.read_text(encoding="utf-8") for path in sorted(SEEDS.iterdir()))
    return [s.strip() for s in text.replace("\n", " ").split(". ") if len(s.split()) > 3][:60]


def test_int8_vectors_match_pytorch_and_rank_alike(encoder, seed_sentences):
    torch_encoder = Encoder(encoder.path, backend="torch")
    int8_encoder = Encoder(encoder.path, backend="onnx-int8")
    expected, actual = torch_encoder.encode(seed_sentences), int8_encoder.encode(seed_sentences)
    assert actual.shape == expected.shape and np.allclose(np.linalg.norm(actual, axis=1), 1, atol=1e-5)
    assert (actual * expected).sum(axis=1).min() > 0.97
    queries = ["What did Peskov say about NATO?", "Who did Belousov call?"]
    nearest = [np.argmax(backend.encode(queries) @ expected.T, axis=1) for backend in (torch_encoder, int8_encoder)]
    assert (nearest[0] == nearest[1]).all()


def test_backends_have_different_identities(encoder):
    torch_encoder = Encoder(encoder.path, backend="torch")
    int8_encoder = Encoder(encoder.path, backend="onnx-int8")
    assert int8_encoder.backend == "onnx-int8" and torch_encoder.backend == "torch"
    assert int8_encoder.fingerprint != torch_encoder.fingerprint
    assert int8_encoder.fingerprint.startswith(torch_encoder.fingerprint)


def test_an_index_from_an_older_export_recipe_is_embedded_again(encoder, tmp_path):
    index_dir = tmp_path / "index"
    update_index([SEEDS], index_dir=index_dir, encoder=encoder, progress=False)
    manifest = json.loads((index_dir / "manifest.json").read_text())
    manifest["model"]["fingerprint"] = f"{encoder.folder_fingerprint}+onnx-int8"  # as the first recipe recorded it
    (index_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match=r"older or other encoder of the model .+\(onnx-int8\).+assistant index PATH"):
        Assistant(index_dir, encoder=encoder)
    report = update_index([SEEDS], index_dir=index_dir, progress=False)
    assert sorted(report.updated) == sorted(p.stem for p in SEEDS.iterdir()) and not report.added and not report.removed
    assert index_store.read_manifest(index_dir)["model"]["fingerprint"] == encoder.fingerprint
    assert Assistant(index_dir, encoder=encoder).ask("Who did Belousov call?").citations


def test_unsupported_pipeline_runs_in_pytorch(encoder, tmp_path):
    for item in encoder.path.iterdir():
        (tmp_path / item.name).symlink_to(item)
    modules = json.loads((encoder.path / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (tmp_path / "modules.json").unlink()
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    assert Encoder(tmp_path, backend="onnx-int8").backend == "torch"


def test_unknown_backend_is_refused(encoder):
    with pytest.raises(ModelError, match="unknown encoder backend 'gpu'"):
        Encoder(encoder.path, backend="gpu")


def test_a_texts_int8_vector_is_the_same_alone_or_among_others(encoder, seed_sentences):
    int8_encoder = Encoder(encoder.path, backend="onnx-int8")
    together = int8_encoder.encode(seed_sentences)  # run side by side, one thread each
    alone = np.stack([int8_encoder.encode([sentence])[0] for sentence in seed_sentences])  # a question's path
    assert np.array_equal(together, alone)
