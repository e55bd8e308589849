"""Command line: index, ask (text and JSON), ask --batch with the JSON contract, chat; exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import BACKENDS, ROOT, SEEDS, location_args, new_location

CONTRACT = {"question": str, "answer": str, "abstained": bool, "citations": list}
CITATION = {
    "n": int, "article_id": str, "title": (str, type(None)), "outlet": (str, type(None)),
    "date": (str, type(None)), "path": str, "excerpt": str, "start": int, "end": int, "score": float,
}  # fmt: skip


def run(*args, stdin: str | None = None, cwd=ROOT, **environment):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **environment)
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args], input=stdin, capture_output=True, text=True, cwd=cwd, env=env,
        timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module", params=BACKENDS)
def cli_index(request, tmp_path_factory) -> list[str]:
    """Return the options that choose an index of the seeds, built by `assistant index` on each backend in turn."""
    location = new_location(request.param, tmp_path_factory.mktemp("cli-index"), request, prefix="news")
    result = run("index", *location_args(location), "--quiet")  # default PATH is seeds/
    assert result.returncode == 0, result.stderr
    assert "Indexed 5 articles" in result.stdout and str(location) in result.stdout
    return location_args(location)


def check_contract(answer: dict) -> None:
    for key, kind in CONTRACT.items():
        assert isinstance(answer[key], kind), key
    for citation in answer["citations"]:
        for key, kind in CITATION.items():
            assert isinstance(citation[key], kind), key
        text = (ROOT / citation["path"]).read_bytes().decode("utf-8")
        assert text[citation["start"] : citation["end"]] == citation["excerpt"]
        assert f"[{citation['n']}]" in answer["answer"]
        assert citation["date"] is None or len(citation["date"]) == 10


def test_ask_json_cites_the_bloomberg_tomahawk_sentence(cli_index):
    result = run("ask", "--json", "What weapons will the US station in Germany?", *cli_index)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    check_contract(answer)
    first = answer["citations"][0]
    assert first["outlet"] == "Bloomberg" and "Tomahawk cruise missiles" in first["excerpt"]
    assert first["path"] == f"seeds/{first['article_id']}.txt"


def test_ask_prints_a_readable_answer_with_sources(cli_index):
    result = run("ask", "Who did Belousov call?", *cli_index)
    assert result.returncode == 0, result.stderr
    assert "Lloyd Austin" in result.stdout and "Sources:" in result.stdout and "[1] Bloomberg" in result.stdout


def test_batch_answers_in_input_order_with_history(cli_index, tmp_path):
    lines = [
        {"question": "Who did Belousov call?"},
        {"question": "Why did he call him?", "history": ["Who did Belousov call?"]},
        "not json",
        {"question": "How do I bake sourdough bread?"},
    ]
    batch = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    result = run("ask", "--batch", "-", *cli_index, stdin=batch)
    assert result.returncode == 1, result.stderr  # one line was bad
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    expected = [line["question"] if isinstance(line, dict) else None for line in lines]
    assert [a.get("question") for a in answers] == expected
    assert answers[2]["line"] == 3 and "error" in answers[2]
    for answer in (answers[0], answers[1], answers[3]):
        check_contract(answer)
    assert "reducing the risk of possible escalation" in answers[1]["citations"][0]["excerpt"]
    assert answers[3]["abstained"] and answers[3]["citations"] == []
    file = tmp_path / "questions.jsonl"
    file.write_text(json.dumps(lines[0]) + "\n")
    from_file = run("ask", "--batch", str(file), *cli_index)
    assert from_file.returncode == 0 and json.loads(from_file.stdout)["answer"] == answers[0]["answer"]


def test_the_index_location_can_come_from_the_environment(cli_index):
    variable = "ASSISTANT_MILVUS_URI" if cli_index[0] == "--milvus-uri" else "ASSISTANT_INDEX_DIR"
    result = run("ask", "Who did Belousov call?", **{variable: cli_index[1]})
    assert result.returncode == 0, result.stderr
    assert "Lloyd Austin" in result.stdout


def test_chat_follows_up_in_the_terminal(cli_index):
    result = run("chat", *cli_index, stdin="Who did Belousov call?\nWhy did he call him?\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Assistant:") == 2 and "reducing the risk of possible escalation" in result.stdout


def test_index_reports_skipped_files_and_exits_1(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text((SEEDS / next(SEEDS.iterdir()).name).read_text())
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "scan.pdf").write_bytes(b"%PDF-1.4")
    result = run("index", str(corpus), "--index-dir", str(tmp_path / "index"), "--quiet")
    assert result.returncode == 1
    assert "Indexed 1 articles" in result.stdout and "empty.txt: empty file" in result.stdout
    assert "scan.pdf: unsupported file type .pdf" in result.stdout


def test_an_interrupted_index_run_exits_2_without_a_traceback_and_the_next_run_goes_on(tmp_path):
    feed, index_dir = tmp_path / "feed.jsonl", tmp_path / "index"
    texts = [path.read_text(encoding="utf-8") for path in sorted(SEEDS.iterdir())]
    with feed.open("w", encoding="utf-8") as handle:  # about 2,800 texts: two batches
        for n in range(120):
            handle.write(json.dumps({"id": f"copy-{n}", "text": f"Copy {n}.\n{texts[n % len(texts)]}"}) + "\n")
    command = [sys.executable, "-m", "assistant", "index", str(feed), "--index-dir", str(index_dir), "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (index_dir / "manifest.json").exists() and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)  # Ctrl-C while the second batch is embedded
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2 and "Traceback" not in stderr, stderr
    assert "Interrupted. What was committed stays indexed: run the same command again" in stderr
    committed = json.loads((index_dir / "manifest.json").read_text())["counts"]
    assert 0 < committed["articles"] < 120

    result = run("index", str(feed), "--index-dir", str(index_dir), "--quiet")
    assert result.returncode == 0, result.stderr
    assert f"({120 - committed['articles']} added, 0 updated, 0 removed;" in result.stdout


def test_errors_exit_2_with_a_clear_message(tmp_path):
    missing = run("ask", "Anything?", "--index-dir", str(tmp_path / "none"))
    assert missing.returncode == 2 and "No index in" in missing.stderr and "assistant index" in missing.stderr
    missing = run("ask", "Anything?", "--milvus-uri", str(tmp_path / "none.db"))
    assert missing.returncode == 2 and "No index in" in missing.stderr and "none.db" in missing.stderr
    not_lite = run("ask", "Anything?", "--milvus-uri", str(tmp_path / "folder"))
    assert not_lite.returncode == 2 and "must be a path ending in .db" in not_lite.stderr
    both = run("ask", "--index-dir", str(tmp_path / "none"))
    assert both.returncode == 2 and "give either a question or --batch" in both.stderr


def test_index_exits_2_when_nothing_given_is_usable_and_keeps_the_index(tmp_path):
    index_dir = str(tmp_path / "index")
    assert run("index", str(SEEDS / next(SEEDS.iterdir()).name), "--index-dir", index_dir, "--quiet").returncode == 0
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    (bad / "scan.pdf").write_bytes(b"%PDF-1.4")
    result = run("index", str(bad), "--index-dir", index_dir, "--quiet")
    assert result.returncode == 2, result.stdout
    assert "Nothing usable" in result.stderr and "empty.txt: empty file" in result.stdout
    assert "Indexed 1 articles" in result.stdout  # the earlier article is kept
