"""The chat page, driven by streamlit.testing.v1.AppTest on temporary copies of the seed index."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, date, datetime
from html import unescape
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from assistant.export import Turn, conversation_markdown, inert_markdown
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


def unescaped(text: str) -> str:
    return text.replace("&#x27;", "'").replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace(
        "&amp;", "&")  # fmt: skip


def cards(at: AppTest) -> list[str]:
    return [body for body in html(at) if 'class="na-source"' in body]


def excerpts(card: str) -> list[str]:
    """Return the marked excerpts at the top of a source card (not the collapsed passage)."""
    return [unescaped(m) for m in re.findall(r'class="na-excerpt".*?<mark>(.*?)</mark>', card, re.S)]


def test_chat_answers_with_statements_badges_and_one_card_per_article(app):
    at = ask(app(), NATO)
    turn = at.session_state["turns"][0]
    answer = turn["answer"]
    assert not answer.abstained
    assert len({c.outlet for c in answer.citations if c.outlet}) >= 2
    answer_html = next(body for body in html(at) if 'class="na-answer"' in body)
    for statement in answer.statements:  # each statement, its badge, and markers linking to its excerpts
        assert unescaped(re.sub("<[^>]+>", "", answer_html)).count(statement.text) == 1
        for n in statement.citations:
            assert f'href="#cite-0-{n}">[{n}]</a>' in answer_html
    assert answer_html.count('class="na-badge"') == len(answer.statements)
    widest = max(answer.statements, key=lambda s: len(s.outlets))
    assert len(widest.outlets) >= 2 and widest.independent_sources >= 2
    badge = re.search(rf"Reported by {', '.join(widest.outlets)}(, 1 unknown outlet)? · (\d+) independent sources · "
                      r"first 14 Jul 2024", answer_html)  # fmt: skip
    assert badge and int(badge.group(2)) == widest.independent_sources
    by_n = {c.n: c for c in answer.citations}
    if any(by_n[n].outlet is None for s in answer.statements for n in s.citations):  # 002 has no known outlet
        assert "1 unknown outlet" in answer_html
    assert "said by Dmitry Peskov" in answer_html
    shown = cards(at)
    assert len(shown) == len({c.article_id for c in answer.citations})
    for citation in answer.citations:  # every excerpt is marked in its article's card, under its marker's id
        card = next(body for body in shown if f'id="cite-0-{citation.n}"' in body)
        assert citation.excerpt in excerpts(card)
        assert f"<b>[{citation.n}]" in card or f"][{citation.n}]" in card or f"[{citation.n}][" in card
        assert "<details>" in card and "<details open" not in card  # the passage around it is collapsed
    assert "002_33777394e2f2ac98" not in "".join(shown)
    assert any("Tensions between Russia and the West" in card for card in shown)  # 002's label: its first words
    articles = len({c.article_id for c in answer.citations})
    assert f"Sources: {len(answer.citations)} excerpts from {articles} articles" in at.caption.values
    assert any(e.label == "Timeline of the sources" for e in at.expander)
    copied = at.code[0].value
    assert "## How did Peskov describe the results of the NATO summit?" in copied and "[2]" in copied
    assert "seeds/000_a59ac2337c62729e.txt" in copied

    ask(at, "What did he say about Macron?")
    follow_up = at.session_state["turns"][1]["answer"]
    assert "Peskov" in follow_up.query  # "he" is read in the light of the first question
    assert not follow_up.abstained
    assert any("Macron" in c.excerpt for c in follow_up.citations)
    assert len(at.chat_message) == 4


def test_a_statement_with_several_versions_is_compared_word_by_word(app):
    at = ask(app(), "Are there prerequisites for negotiations?")
    answer = at.session_state["turns"][0]["answer"]
    shared = next(s for s in answer.statements if len(s.citations) >= 2)
    assert shared.independent_sources >= 2
    compare = next(body for body in html(at) if 'class="na-compare"' in body)
    assert compare.count('class="na-version"') >= len(shared.citations)
    marked = re.findall(r'<mark class="na-diff">(.*?)</mark>', compare)
    assert marked and set(marked) <= set(re.findall(r"\w+(?:['’]\w+)*", unescaped(compare)))  # whole words
    assert ("“" not in marked and "the" not in [m.lower() for m in marked[:1]]) or len(marked) < 20


def test_open_article_marks_every_cited_span_and_shows_no_server_path(app, tmp_path):
    at = app()
    upload(at, [("zebras.txt", HOSTILE.encode())])
    ask(at, "What did the zebra census in Kenya find?")
    answer = at.session_state["turns"][0]["answer"]
    zebra = [c for c in answer.citations if c.article_id == "zebras"]
    assert zebra and str(tmp_path) in zebra[0].path  # the upload lies outside the working folder
    card = next(n for n, body in enumerate(cards(at)) if "Zebra News" in body)
    [b for b in at.button if b.label == "Open article"][card].click().run()
    document = at.get("iframe")[0].proto.srcdoc
    marks = re.findall(r"<mark( id=\"[^\"]+\")?>(.*?)</mark>", document, re.S)
    assert [unescaped(text) for _, text in marks] == [c.excerpt for c in sorted(zebra, key=lambda c: c.start)]
    assert 'id="cited"' in document
    assert str(tmp_path) not in document and "zebras.txt" in document
    assert document.count("<script") == 1 and "<img" not in document and "&lt;script&gt;window.pwned" in document


def test_cited_articles_are_read_from_the_answers_own_index(app):
    at = app()
    upload(at, [("zebras.txt", HOSTILE.encode())])
    ask(at, "How many zebras did the census in Kenya count?")
    answer = at.session_state["turns"][0]["answer"]
    upload(at, [("zebras.txt", ("Updated: " * 40 + HOSTILE).encode())])  # same id, every offset moved
    assert at.session_state["upload_report"].files[0].change == "updated"
    assert answer.store.article_by_id["zebras"].text == HOSTILE
    for citation in answer.citations:  # the old turn's passages still mark its excerpts, not the new text's spans
        card = next(body for body in cards(at) if f'id="cite-0-{citation.n}"' in body)
        passage = card.split('class="na-passage"', 1)[1]
        assert citation.excerpt in [unescaped(m) for m in re.findall(r"<mark>(.*?)</mark>", passage, re.S)]


def test_declined_question_shows_a_hint_about_the_corpus(app):
    at = ask(app(), "What is the recipe for a good banana bread?")
    assert at.session_state["turns"][0]["answer"].abstained
    assert any("Declined" in value for value in at.warning.values)
    hint = next(body for body in html(at) if "The corpus holds 5 articles" in body)
    assert "Sputnik" in hint and "TASS" in hint and "2 of unknown outlet" in hint and "14 Jul 2024" in hint


def test_outlet_filter_limits_the_sources_and_the_turn_says_so(app):
    at = app()
    at.sidebar.multiselect[0].set_value(["Sputnik"]).run()
    ask(at, NATO)
    answer = at.session_state["turns"][0]["answer"]
    assert answer.citations and {c.outlet for c in answer.citations} == {"Sputnik"}
    assert any("Asked with filters: outlet Sputnik" in body for body in html(at))


def test_unknown_outlets_form_a_group_the_filter_can_select(app):
    at = app()
    assert "Unknown outlet" in at.sidebar.multiselect[0].options
    at.sidebar.multiselect[0].set_value(["Unknown outlet"]).run()
    ask(at, NATO)
    answer = at.session_state["turns"][0]["answer"]
    assert answer.citations and {c.outlet for c in answer.citations} == {None}
    assert any("Asked with filters: outlet Unknown outlet" in body for body in html(at))
    at.sidebar.multiselect[0].set_value([]).run()
    ask(at, NATO)  # the earlier turn keeps saying what it was asked under; the new one has no filters
    labels = [body for body in html(at) if "Asked with filters" in body]
    assert len(labels) == 1


def test_statements_slider_bounds_the_answer(app):
    at = app()
    at.sidebar.slider[0].set_value(1).run()
    ask(at, NATO)
    answer = at.session_state["turns"][0]["answer"]
    assert len(answer.statements) == 1


def test_empty_page_offers_questions_made_from_the_corpus(app, seed_assistant):
    at = app()
    examples = [b for b in at.button if b.key and b.key.startswith("example-")]
    assert 3 <= len(examples) <= 4
    labels = " ".join(b.label for b in examples)
    assert "Peskov" in labels and any(outlet in labels for outlet in ("Bloomberg", "Sputnik", "TASS"))
    assert "14 July 2024" in labels and "The " not in labels
    assert not any(seed_assistant.ask(b.label).abstained for b in examples)  # each one has an answer
    examples[0].click().run()
    turn = at.session_state["turns"][0]
    assert turn["question"] == examples[0].label and not turn["answer"].abstained
    assert not [b for b in at.button if b.key and b.key.startswith("example-")]


def test_upload_lists_each_file_with_what_was_detected_and_each_bad_one(app, tmp_path):
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
    assert sorted(report.index.added) == ["lynx-1", "zebras"]
    assert "Added 2 files to the corpus:" in at.sidebar.success.values
    added = next(body for body in html(at) if "na-added" in body)
    assert "<b>zebras.txt</b> (added)" in added and "Zebra News · 2 Aug 2024" in added
    assert "“Lynx return to the Harz” · Nature Desk · 3 Sep 2024" in added
    rejected = next(body for body in html(at) if "na-rejected" in body)
    for name in ("lynx.jsonl:2", "empty.txt", "binary.txt", "latin1.md", "slides.pdf", "huge.txt"):
        assert f"<b>{name}</b>" in rejected
    assert "unsupported file type .pdf" in rejected and "the limit is 10 MB" in rejected
    assert str(tmp_path) not in rejected and str(tmp_path) not in added
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
    assert any("Asked with filters: 1 Aug 2024 to 31 Aug 2024" in body for body in html(at))


def test_one_day_filter_from_a_single_pick(app):
    at = app()
    upload(at, [("zebras.txt", HOSTILE.encode())])
    at.sidebar.date_input[0].set_value((date(2024, 8, 2),)).run()  # one click: that day only
    ask(at, "What did the zebra census in Kenya find?")
    turn = at.session_state["turns"][0]
    assert (turn["filters"].date_from, turn["filters"].date_to) == ("2024-08-02", "2024-08-02")
    assert any("Asked with filters: 2 Aug 2024" in body for body in html(at))


def test_an_upload_that_only_repeats_indexed_articles_leaves_no_file(app, tmp_path):
    at = app()
    seed = next((Path(APP).parent / "seeds").iterdir())
    repeat = b'{"id": "copy", "text": ' + json.dumps(seed.read_text(encoding="utf-8")).encode() + b"}\n"
    upload(at, [("copy.txt", seed.read_bytes()), ("copies.jsonl", repeat)])
    report = at.session_state["upload_report"]
    assert report.files == [] and len(report.index.skipped) == 2
    assert all("same text as article" in s.reason for s in report.index.skipped)
    assert not any((tmp_path / "uploads").iterdir())
    assert overview_count(at, "Articles") == 5


def test_upload_count_limit(app):
    at = app()
    files = [(f"note{i}.txt", f"Note {i}: the harbour of Hamburg handled record cargo.".encode()) for i in range(22)]
    upload(at, files)
    report = at.session_state["upload_report"]
    assert len(report.index.added) == settings.MAX_UPLOAD_FILES
    refused = [s for s in report.index.skipped if "files can be added at once" in s.reason]
    assert [s.path for s in refused] == ["note20.txt", "note21.txt"]


def test_hostile_article_text_is_rendered_inert(app):
    at = app()
    upload(at, [("zebras.txt", HOSTILE.encode())])
    ask(at, "What did the zebra census in Kenya find?")
    answer = at.session_state["turns"][0]["answer"]
    assert any(c.article_id == "zebras" and "<script>" in c.excerpt + answer.store.article_by_id["zebras"].text
               for c in answer.citations)  # fmt: skip
    for body in html(at):
        lowered = re.sub(r'href="#cite-\d+-\d+"', "", body.lower())  # the [n] markers' links to their sources
        assert "<script" not in lowered and "<img" not in lowered and "href" not in lowered
    page = "".join(html(at))
    assert "&lt;script&gt;" in page or "&lt;img" in page
    next(b for b in at.button if b.label == "Open article").click().run()
    document = next(e for e in at.get("iframe")).proto.srcdoc
    assert document.count("<script") == 1  # the page's own scroll script, nothing from the article
    assert "<img" not in document and "href" not in document


def test_clear_chat_and_export(app, tmp_path):
    at = app()
    upload(at, [("zebras.txt", HOSTILE.encode())])
    at.sidebar.multiselect[0].set_value(["TASS", "Sputnik"]).run()
    ask(at, NATO)
    at.sidebar.multiselect[0].set_value([]).run()
    ask(at, "What is the recipe for a good banana bread?")
    ask(at, "What did the zebra census in Kenya find?")
    export = at.sidebar.get("download_button")[0]
    assert not export.proto.disabled
    turns = [Turn(t["question"], t["answer"], t["filters"]) for t in at.session_state["turns"]]
    markdown = conversation_markdown(turns, exported=datetime(2026, 11, 27, 10, 5, tzinfo=UTC))
    first = turns[0].answer
    assert markdown.startswith("# Conversation") and "Exported 27 Nov 2026, 10:05 UTC." in markdown
    assert "## 1. How did Peskov describe the results of the NATO summit?" in markdown
    assert "Filters: outlets Sputnik, TASS" in markdown and markdown.count("Filters:") == 1
    assert "*Declined:*" in markdown
    for citation in first.citations:  # numbered sources: label, date, file name and span
        assert f"{citation.n}. {citation.label}" in markdown
        assert f"{citation.path}, characters {citation.start}-{citation.end})" in markdown
    assert "TASS, 14 Jul 2024" in markdown and "Reported by Sputnik" in markdown
    assert "(zebras.txt, characters" in markdown and str(tmp_path) not in markdown  # never a server path
    for needless in ("\\[1\\]", "1\\.", "\\(", "\\)", "000\\_", "\\-", "\\!", "\\:", "\\#"):
        assert needless not in markdown, needless

    next(b for b in at.sidebar.button if b.label == "Clear chat").click().run()
    assert at.session_state["turns"] == [] and not at.chat_message
    assert at.sidebar.get("download_button")[0].proto.disabled


def test_export_keeps_article_text_inert_in_blockquotes(app):
    at = app()
    upload(at, [("zebras.txt", HOSTILE.encode())])
    ask(at, "What did the zebra census in Kenya find?")
    markdown = conversation_markdown([Turn(t["question"], t["answer"]) for t in at.session_state["turns"]])
    rendered = MarkdownIt("commonmark").enable("table").enable("strikethrough").render(markdown)
    assert "&lt;script&gt;window.pwned" in rendered and "[the report](javascript:alert(1))" in rendered
    assert "<script" not in rendered and "<img" not in rendered and "<a " not in rendered and "<strong>" not in rendered
    assert "$x^2$" in rendered and "<blockquote>" in rendered


def test_inert_markdown_escapes_only_what_markdown_would_read():
    plain = "Peskov (TASS) said: 1. talks - no; [The results] are 5% up, $5 more, 000_a59 & co! #1"
    assert inert_markdown(plain) == plain
    hostile = "*b* _e_ `c` <b>x</b> &amp; [l](u) [r]: u :red[x] $a$ ~~s~~ a|b \\*\n# h\n- i\n2. n\n> q\n---"
    rendered = MarkdownIt("commonmark").enable("table").enable("strikethrough").render(inert_markdown(hostile))
    assert rendered.startswith("<p>") and rendered.count("<") == 2  # one paragraph, nothing else
    assert unescape(rendered.removeprefix("<p>").removesuffix("</p>\n")) == hostile


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
    assert not at.status and "Indexed 5 seed articles." in at.toast.values  # no box stays above the title
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
    assert not at.exception and "Indexed 5 seed articles." in at.toast.values
    assert overview_count(at, "Articles") == 5 and not (tmp_path / "unused").exists()
    answer = ask(at, NATO).session_state["turns"][0]["answer"]
    assert not answer.abstained and len({c.outlet for c in answer.citations if c.outlet}) >= 2
    at = upload(at, [("zebra.txt", HOSTILE.encode())])
    assert overview_count(at, "Articles") == 6  # written to Milvus by the page's own process, then reloaded
