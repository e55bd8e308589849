"""The chat page, driven by streamlit.testing.v1.AppTest on temporary copies of the seed index."""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from assistant.export import conversation_markdown
from embeddings import settings
from embeddings import store as index_store
from embeddings.uploads import save_uploads

APP = str(Path(__file__).resolve().parent.parent / "app.py")
NATO = "How did Peskov describe the results of the NATO summit?"
HOSTILE = (
    "date 2024-08-02 BERLIN (Zebra News) - The zebra census in Kenya counted 40,000 animals this year, "
    "officials said on Friday. <script>window.pwned = 1</script> The census team reported that the zebra "
    'herds crossed the river early. <img src="x" onerror="window.pwned = 2"> Rangers said the zebra count '
    "in Kenya was the highest in a decade, see [the report](javascript:alert(1)) and **bold** $x^2$ claims.\n"
)


@pytest.fixture
def app(seed_index, tmp_path, monkeypatch):
    """Return a function that starts the page on a private copy of the seed index and its own upload folder."""
    index_dir = tmp_path / "index"
    shutil.copytree(seed_index, index_dir)
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(index_dir))
    monkeypatch.setenv("ASSISTANT_UPLOAD_DIR", str(tmp_path / "uploads"))

    def start() -> AppTest:
        at = AppTest.from_file(APP, default_timeout=180)
        at.run()
        assert not at.exception
        return at

    return start


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception
    return at


def html(at: AppTest) -> list[str]:
    return [element.proto.body for element in at.html]


def upload(at: AppTest, files: list[tuple[str, bytes]]) -> AppTest:
    at.sidebar.file_uploader[0].set_value([(name, data, "application/octet-stream") for name, data in files])
    next(b for b in at.sidebar.button if b.label == "Add to the corpus").click().run()
    assert not at.exception
    return at


def overview_count(at: AppTest, row: str) -> int:
    table = next(body for body in html(at) if "na-overview" in body)
    return int(re.search(rf"<td>{row}</td><td><b>(\d+)</b>", table).group(1))


def test_chat_answers_with_citations_from_several_outlets_and_a_follow_up(app):
    at = ask(app(), NATO)
    turn = at.session_state["turns"][0]
    answer = turn["answer"]
    assert not answer.abstained
    assert len({c.outlet for c in answer.citations if c.outlet}) >= 2
    bodies = html(at)
    answer_html = next(body for body in bodies if 'class="na-answer"' in body)
    for citation in answer.citations:
        assert f"[{citation.n}]" in answer_html
    sources = [body for body in bodies if 'class="na-source"' in body]
    assert len(sources) == len(answer.citations)
    for citation, body in zip(answer.citations, sources):
        marked = re.search(r"<mark>(.*?)</mark>", body, re.S).group(1)
        assert marked.replace("&#x27;", "'").replace("&quot;", '"') == citation.excerpt
    assert "Sources:" in at.caption.values[-1]

    ask(at, "What did he say about Macron?")
    follow_up = at.session_state["turns"][1]["answer"]
    assert "Peskov" in follow_up.query  # "he" is read in the light of the first question
    assert not follow_up.abstained
    assert any("Macron" in c.excerpt for c in follow_up.citations)
    assert len(at.chat_message) == 4


def test_open_article_shows_the_whole_text_with_the_cited_span_marked(app, seed_assistant):
    at = ask(app(), NATO)
    citation = at.session_state["turns"][0]["answer"].citations[0]
    next(b for b in at.button if b.label == "Open article").click().run()
    frames = at.get("iframe")
    assert frames, "the article view did not open"
    document = frames[0].proto.srcdoc
    article = seed_assistant.store.article_by_id[citation.article_id]
    marked = re.search(r'<mark id="cited">(.*?)</mark>', document, re.S).group(1)
    assert marked.replace("&#x27;", "'").replace("&quot;", '"') == citation.excerpt
    assert len(document) > len(article.text)  # the whole article, not just its passage


def test_declined_question_shows_a_hint_about_the_corpus(app):
    at = ask(app(), "What is the recipe for a good banana bread?")
    assert at.session_state["turns"][0]["answer"].abstained
    assert any("Declined" in value for value in at.warning.values)
    hint = next(body for body in html(at) if "The corpus holds 5 articles" in body)
    assert "Sputnik" in hint and "TASS" in hint and "2024-07-14" in hint


def test_outlet_filter_limits_the_sources(app):
    at = app()
    at.sidebar.multiselect[0].set_value(["Sputnik"]).run()
    ask(at, NATO)
    answer = at.session_state["turns"][0]["answer"]
    assert answer.citations and {c.outlet for c in answer.citations} == {"Sputnik"}


def test_statements_slider_bounds_the_answer(app):
    at = app()
    at.sidebar.slider[0].set_value(1).run()
    ask(at, NATO)
    answer = at.session_state["turns"][0]["answer"]
    assert answer.answer.count("[1]") == 1 and "[" not in answer.answer.split("]")[-1]


def test_upload_indexes_good_files_and_lists_each_bad_one(app, tmp_path):
    at = app()
    assert overview_count(at, "Articles") == 5
    jsonl = (
        b'{"id": "lynx-1", "title": "Lynx return to the Harz", "outlet": "Nature Desk", "date": "2024-09-03", '
        b'"text": "Wildlife officers said the lynx population in the Harz mountains doubled in five years."}\n'
        b"{not json\n"
    )
    files = [
        ("zebras.txt", HOSTILE.encode()),
        ("lynx.jsonl", jsonl),
        ("empty.txt", b""),
        ("binary.txt", bytes(range(256)) * 4),
        ("latin1.md", "Caf\xe9 cr\xe8me at the summit was served cold.".encode("latin-1")),
        ("slides.pdf", b"%PDF-1.4"),
        ("huge.txt", b"a" * (settings.MAX_FILE_BYTES + 1)),
    ]
    upload(at, files)
    report = at.session_state["upload_report"]
    assert sorted(report.added) == ["lynx-1", "zebras"]
    rejected = next(body for body in html(at) if "na-rejected" in body)
    for name in ("lynx.jsonl:2", "empty.txt", "binary.txt", "latin1.md", "slides.pdf", "huge.txt"):
        assert f"{name}</b>" in rejected
    assert "unsupported file type .pdf" in rejected and "the limit is 10 MB" in rejected
    assert overview_count(at, "Articles") == 7
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == ["lynx.jsonl", "zebras.txt"]

    ask(at, "How many zebras did the census in Kenya count?")
    answer = at.session_state["turns"][0]["answer"]
    assert {c.article_id for c in answer.citations} == {"zebras"}
    ask(at, NATO)  # the seed articles are still there
    assert len({c.outlet for c in at.session_state["turns"][1]["answer"].citations if c.outlet}) >= 2

    at.sidebar.date_input[0].set_value((date(2024, 8, 1), date(2024, 8, 31))).run()  # only the zebras' date
    ask(at, NATO)
    assert at.session_state["turns"][2]["answer"].abstained
    assert "Filters are on" in at.session_state["turns"][2]["hint"]
    ask(at, "What did the rangers say about the zebra count?")
    assert {c.article_id for c in at.session_state["turns"][3]["answer"].citations} == {"zebras"}


def test_upload_count_limit(app):
    at = app()
    files = [(f"note{i}.txt", f"Note {i}: the harbour of Hamburg handled record cargo.".encode()) for i in range(22)]
    upload(at, files)
    report = at.session_state["upload_report"]
    assert len(report.added) == settings.MAX_UPLOAD_FILES
    refused = [s for s in report.skipped if "files can be added at once" in s.reason]
    assert [s.path for s in refused] == ["note20.txt", "note21.txt"]


def test_hostile_article_text_is_rendered_inert(app):
    at = app()
    upload(at, [("zebras.txt", HOSTILE.encode())])
    ask(at, "What did the zebra census in Kenya find?")
    answer = at.session_state["turns"][0]["answer"]
    assert any(c.article_id == "zebras" and "<script>" in c.excerpt + at.session_state["turns"][0]["articles"][
        "zebras"].text for c in answer.citations)  # fmt: skip
    for body in html(at):
        lowered = body.lower()
        assert "<script" not in lowered and "<img" not in lowered and "<a " not in lowered and "href" not in lowered
    page = "".join(html(at))
    assert "&lt;script&gt;" in page or "&lt;img" in page
    next(b for b in at.button if b.label == "Open article").click().run()
    document = next(e for e in at.get("iframe")).proto.srcdoc
    assert document.count("<script") == 1  # the page's own scroll script, nothing from the article
    assert "<img" not in document and "href" not in document and "&lt;script&gt;window.pwned" in document


def test_clear_chat_and_export(app):
    at = ask(app(), NATO)
    ask(at, "What is the recipe for a good banana bread?")
    export = at.sidebar.get("download_button")[0]
    assert not export.proto.disabled
    turns = [(t["question"], t["answer"]) for t in at.session_state["turns"]]
    markdown = conversation_markdown(turns)
    first = turns[0][1]
    assert markdown.startswith("# Conversation")
    assert "## 1. How did Peskov describe the results of the NATO summit?" in markdown
    assert "\\[1\\]" in markdown and "*Declined:*" in markdown
    assert all(f"characters {c.start}-{c.end}" in markdown for c in first.citations)

    next(b for b in at.sidebar.button if b.label == "Clear chat").click().run()
    assert at.session_state["turns"] == [] and not at.chat_message
    assert at.sidebar.get("download_button")[0].proto.disabled


def test_export_escapes_markdown_in_article_text(app):
    at = app()
    upload(at, [("zebras.txt", HOSTILE.encode())])
    ask(at, "What did the zebra census in Kenya find?")
    markdown = conversation_markdown([(t["question"], t["answer"]) for t in at.session_state["turns"]])
    rendered = MarkdownIt("commonmark").enable("table").render(markdown)  # as a Markdown viewer shows it
    assert "&lt;script&gt;window.pwned" in rendered and "[the report](javascript:alert(1))" in rendered
    assert "<script" not in rendered and "<img" not in rendered and "<a " not in rendered and "<strong>" not in rendered


def test_chat_history_is_bounded_per_session(app, monkeypatch):
    monkeypatch.setenv("ASSISTANT_HISTORY_TURNS", "2")
    at = app()
    for question in ("Who is Peskov?", "What did NATO decide?", "What about Macron?"):
        ask(at, question)
    assert [t["question"] for t in at.session_state["turns"]] == ["What did NATO decide?", "What about Macron?"]
    assert at.session_state["conversation"].questions == ["What did NATO decide?", "What about Macron?"]
    assert len(at.chat_message) == 4
    assert "Only the last 2 turns are kept." in at.sidebar.caption.values


def test_first_run_builds_the_seed_index_with_progress_then_reuses_it(tmp_path, monkeypatch):
    index_dir = tmp_path / "fresh-index"
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(index_dir))
    monkeypatch.setenv("ASSISTANT_UPLOAD_DIR", str(tmp_path / "uploads"))
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    assert not at.exception
    assert at.status[0].label == "Indexed 5 seed articles." and at.status[0].state == "complete"
    assert overview_count(at, "Articles") == 5
    generation = index_store.read_manifest(index_dir)["generation"]

    again = AppTest.from_file(APP, default_timeout=300)
    again.run()
    assert not again.status and index_store.read_manifest(index_dir)["generation"] == generation


def test_uploaded_names_cannot_leave_the_upload_folder(tmp_path):
    folder = tmp_path / "uploads"
    text = b"The harbour of Hamburg handled record cargo this year, officials said."
    saved, refused = save_uploads([("../../escape.txt", text), ("..\\win.md", text), (".hidden.txt", text)], folder)
    assert [p.relative_to(folder).as_posix() for p in saved] == ["escape.txt", "win.md", "hidden.txt"]
    assert refused == [] and not (tmp_path / "escape.txt").exists()
    saved, refused = save_uploads([("a.txt", text), ("a.txt", text)], folder)
    assert len(saved) == 1 and "also named a.txt" in refused[0].reason


def test_the_page_runs_on_milvus_lite_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSISTANT_MILVUS_URI", str(tmp_path / "index.db"))
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(tmp_path / "unused"))
    monkeypatch.setenv("ASSISTANT_UPLOAD_DIR", str(tmp_path / "uploads"))
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    assert not at.exception and at.status[0].label == "Indexed 5 seed articles."
    assert overview_count(at, "Articles") == 5 and not (tmp_path / "unused").exists()
    answer = ask(at, NATO).session_state["turns"][0]["answer"]
    assert not answer.abstained and len({c.outlet for c in answer.citations if c.outlet}) >= 2
    at = upload(at, [("zebra.txt", HOSTILE.encode())])
    assert overview_count(at, "Articles") == 6  # written to Milvus by the page's own process, then reloaded
