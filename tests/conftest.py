"""Shared fixtures: the real model, an index of the seed articles built once per test run, and index locations on
each backend: local files, Milvus Lite in this process, and a `milvus-lite server` on 127.0.0.1 started here."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from assistant.service import Assistant
from embeddings.encoder import Encoder
from embeddings.indexer import update_index
from embeddings.milvus_store import MilvusLocation

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
BACKENDS = ["local", "milvus-lite", "milvus-server"]


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


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory) -> str:
    """Start `milvus-lite server` on a free port of 127.0.0.1 for the test run; return its URI."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path_factory.mktemp("milvus-server") / "server.db"
    command = [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(folder), "--host", "127.0.0.1"]
    log = folder.with_name("server.log")  # a file, not a pipe: a full pipe nobody reads would stall the server
    with open(log, "wb") as output:
        process = subprocess.Popen([*command, "--port", str(port)], stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"milvus-lite server did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=30)


def new_location(kind: str, folder: Path, request, *, prefix: str | None = None) -> Path | MilvusLocation:
    """Return an empty index location of backend `kind` (one of BACKENDS); `folder` is a fresh folder.

    On the shared server each location gets collections of its own, named by `prefix` or a new one.
    """
    if kind == "local":
        return folder / "index"
    if kind == "milvus-lite":
        return MilvusLocation(str(folder / "index.db"))
    return MilvusLocation(request.getfixturevalue("milvus_server"), prefix=prefix or f"t{uuid.uuid4().hex}")


def location_args(location) -> list[str]:
    """Return the command-line options that choose `location` (with $ASSISTANT_MILVUS_PREFIX if not "news")."""
    if isinstance(location, MilvusLocation):
        return ["--milvus-uri", location.uri]
    return ["--index-dir", str(location)]


@pytest.fixture(params=BACKENDS)
def location(request, tmp_path, monkeypatch) -> Path | MilvusLocation:
    """Return an empty index location on each backend in turn; the command line finds it (location_args)."""
    location = new_location(request.param, tmp_path, request)
    if isinstance(location, MilvusLocation):
        monkeypatch.setenv("ASSISTANT_MILVUS_PREFIX", location.prefix)
    return location


@pytest.fixture(params=BACKENDS[1:])
def milvus_location(request, tmp_path) -> MilvusLocation:
    """Return an empty Milvus location: Milvus Lite in this process, then collections on the local server."""
    return new_location(request.param, tmp_path, request)
