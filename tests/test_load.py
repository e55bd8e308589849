"""Load: one `streamlit run app.py` server, 20 browser sessions asking at once while a 21st uploads articles.

Every session must show an answer (or a decline for an off-topic question) and no error, the upload must land
whole, every excerpt shown must be a span of its article, and the sessions must keep working over the new index.
Runs in one headless Chromium (Debian's /usr/bin/chromium) via Playwright; skipped without it, except under
CI=true, where it fails. Screenshots go to test-output/.
"""

from __future__ import annotations

import gc
import shutil
import threading
import types
import weakref
from pathlib import Path

import pytest

from assistant.service import Assistant
from embeddings import store as index_store
from embeddings.indexer import update_index
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, OUTPUT, ask, require_browser, serve_page, wait_until_idle
from tests.conftest import SEEDS

SESSIONS = 20
ON_TOPIC = [
    "How did Peskov describe the results of the NATO summit?",
    "What weapons will the US station in Germany?",
    "Who did Belousov call?",
    "What did Peskov say about China?",
    "Has Macron asked for a call with Putin?",
    "Where was the NATO summit held?",
    "Who posted the interview video on Telegram?",
    "How did Peskov describe the US missile deployment plan?",
]
OFF_TOPIC = [
    "How do I bake sourdough bread?",
    "Who won the 2018 FIFA World Cup?",
    "How many moons does Jupiter have?",
    "What is the best recipe for lasagna?",
]
# Three new articles, long enough that indexing them takes a few seconds: id -> (place, outlet, title, fact, topic).
NEW = {
    "lighthouse-survey": (
        "VARDO",
        "Arctic Wire",
        "Coastal agency finishes the Varanger lighthouse survey",
        "The coastal agency inspected 47 lighthouses along the Varanger fjord and found rusted lanterns in 9 of them.",
        "lighthouse",
    ),
    "beekeeping-census": (
        "CHUR",
        "Alpine Courier",
        "Beekeepers in Graubünden count their hives",
        "The Graubünden beekeeping association counted 12,400 hives this spring, a record for the canton.",
        "hive",
    ),
    "tram-depot": (
        "LISBON",
        "Lisbon Ledger",
        "Lisbon opens a solar tram depot",
        "Lisbon opened a tram depot in Alcântara whose roof carries 3,200 solar panels.",
        "tram",
    ),
}
NEW_QUESTIONS = {
    "lighthouse-survey": ("How many lighthouses did the coastal agency inspect along the Varanger fjord?", "47"),
    "beekeeping-census": ("How many hives did the Graubünden beekeeping association count?", "12,400"),
    "tram-depot": ("How many solar panels are on the roof of the Lisbon tram depot?", "3,200"),
}
TIMEOUT_MS = 120_000


def new_article(place: str, outlet: str, title: str, fact: str, topic: str) -> str:
    """Return an article file's text: a date and title, a dateline with the outlet, the key fact, then routine news."""
    routine = " ".join(
        f"Crew {n} filed note {n} on the {topic} logbook, entry {n * 7}, before shift {n + 1} began." for n in range(24)
    )
    return f"date 2024-09-03 {title}\n\n{place} ({outlet}) - {fact} {routine}\n"


def questions(round_number: int) -> list[str]:
    """Return the 20 sessions' questions: round 1 asks about the seeds and off-topic, round 2 also the new articles."""
    if round_number == 1:
        mix = ON_TOPIC + OFF_TOPIC
    else:
        mix = ON_TOPIC[:4] + OFF_TOPIC[:2] + [question for question, _ in NEW_QUESTIONS.values()]
    return [mix[n % len(mix)] for n in range(SESSIONS)]


@pytest.fixture
def server(seed_index, tmp_path):
    """Serve the page over a copy of the seed index; yield (URL, index folder, upload folder)."""
    require_browser()
    index_dir, upload_dir = tmp_path / "index", tmp_path / "uploads"
    shutil.copytree(seed_index, index_dir)
    with serve_page(index_dir=index_dir, upload_dir=upload_dir, log_path=tmp_path / "streamlit.log") as url:
        yield url, index_dir, upload_dir
    log = (tmp_path / "streamlit.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


def wait_for_turns(page, turn: int) -> None:
    """Wait until `page` shows its `turn`-th answer or decline (counting from 1) and its script run has ended."""
    replies = page.locator(".na-answer, [data-testid='stAlertContentWarning']:has-text('Declined')")
    replies.nth(turn - 1).wait_for(timeout=TIMEOUT_MS)
    wait_until_idle(page)


def source_label(article) -> tuple[str, str | None]:
    """Return how a cited source card names its article: its label, and its title when that differs."""
    return article.label, article.title if article.title != article.label else None


def names(head: str, label: tuple[str, str | None]) -> bool:
    """Return True if a source card's heading names the article with this label."""
    return f"] {label[0]}" in head and (f"“{label[1]}”" in head if label[1] else "“" not in head)


def check_session(page, asked: list[str], texts: dict[str, str]) -> list[str]:
    """Check a session's page after all its questions; return the labels of the articles it cites.

    `texts` maps each article's source label to its text.
    """
    assert page.get_by_test_id("stException").count() == 0
    assert page.get_by_test_id("stAlertContentError").count() == 0
    assistant_messages = page.get_by_test_id("stChatMessage").filter(has=page.locator(".na-answer, .na-meta"))
    assert assistant_messages.count() == len(asked)
    for n, question in enumerate(asked):
        message = assistant_messages.nth(n)
        if question in OFF_TOPIC:
            assert "Declined" in message.inner_text(), question
        else:
            assert message.locator(".na-source").count() >= 1, question
    cited = []
    for source in page.locator(".na-source").all():
        head, excerpt = source.locator(".na-source-head").inner_text(), source.locator("mark").first.inner_text()
        matches = [label for label in texts if names(head, label)]
        assert len(matches) == 1, head
        assert excerpt and excerpt in texts[matches[0]], (head, excerpt)
        cited.append(matches[0])
    return cited


def test_twenty_sessions_keep_answering_while_another_uploads(server, tmp_path):
    url, index_dir, upload_dir = server
    sync_playwright = require_browser()
    OUTPUT.mkdir(exist_ok=True)
    files = []
    for article_id, parts in NEW.items():
        files.append(tmp_path / f"{article_id}.txt")
        files[-1].write_text(new_article(*parts), encoding="utf-8")
    round_one, round_two = questions(1), questions(2)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1300, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        pages = [context.new_page() for _ in range(SESSIONS + 1)]
        for page in pages:
            page.goto(url, wait_until="commit")
        for page in pages:
            page.get_by_test_id("stChatInputTextArea").wait_for()
        uploader, sessions = pages[0], pages[1:]

        uploader.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(files)
        uploader.get_by_test_id("stFileChip").nth(len(files) - 1).wait_for()
        uploader.get_by_role("button", name="Add to the corpus").click()
        indexing = uploader.get_by_text(f"Indexing {len(files)} files")  # "1 file" for one
        indexing.wait_for()
        for page, question in zip(sessions, round_one):
            ask(page, question)
        assert indexing.is_visible(), "the upload finished before the questions were sent: make it bigger"
        for page in sessions:
            wait_for_turns(page, 1)
        added = uploader.get_by_text(f"Added {len(files)} files to the corpus:")
        added.wait_for()
        added.scroll_into_view_if_needed()
        uploader.screenshot(path=str(OUTPUT / "load-upload.png"))

        articles = list(index_store.load(index_dir).article_by_id.values())
        seed_ids = {path.stem for path in SEEDS.iterdir()}
        assert {article.id for article in articles} == seed_ids | set(NEW)
        assert sorted(path.name for path in upload_dir.iterdir()) == sorted(file.name for file in files)
        texts = {source_label(article): article.text for article in articles}
        for article in articles:  # the text indexed is the file's text, so an excerpt of it is one of the file
            folder = upload_dir if article.id in NEW else SEEDS
            assert article.text == (folder / Path(article.path).name).read_text(encoding="utf-8")

        for page, question in zip(sessions, round_two):
            ask(page, question)
        for page in sessions:
            wait_for_turns(page, 2)
        for page, first, second in zip(sessions, round_one, round_two):
            cited = check_session(page, [first, second], texts)
            for article_id, (question, fact) in NEW_QUESTIONS.items():
                if second == question:
                    assert NEW[article_id][1:3] in cited and fact in page.locator(".na-answer").last.inner_text()
        tram = sessions[round_two.index(NEW_QUESTIONS["tram-depot"][0])]
        tram.screenshot(path=str(OUTPUT / "load-session.png"), full_page=True)
        for page in pages:
            assert page.get_by_test_id("stException").count() == 0
            assert page.get_by_test_id("stAlertContentError").count() == 0
        browser.close()


def test_sessions_sharing_an_assistant_load_a_new_index_once(seed_index, encoder, tmp_path, monkeypatch):
    index_dir, new = tmp_path / "index", tmp_path / "new"
    shutil.copytree(seed_index, index_dir)
    assistant = Assistant(index_dir, encoder=encoder)  # one per server process (st.cache_resource)
    new.mkdir()
    (new / "tram-depot.txt").write_text(new_article(*NEW["tram-depot"]), encoding="utf-8")
    update_index([new], index_dir=index_dir, encoder=encoder, progress=False)
    checks, loads, changed = [], [], threading.Condition()
    real_read_manifest, real_load = index_store.read_manifest, index_store.load

    def read_manifest(*args, **kwargs):
        with changed:
            checks.append(args)
            changed.notify_all()
        return real_read_manifest(*args, **kwargs)

    def load(*args, **kwargs):
        loads.append(args)
        if len(loads) == 1:  # hold the first load until every session has seen the new manifest
            with changed:
                changed.wait_for(lambda: len(checks) > SESSIONS, timeout=30)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(index_store, "read_manifest", read_manifest)
    monkeypatch.setattr(index_store, "load", load)
    start, reloaded, seen = threading.Barrier(SESSIONS), [], []

    def session() -> None:  # each page rerun starts with reload_if_changed(), then answers from the store
        start.wait()
        reloaded.append(assistant.reload_if_changed())
        seen.append(set(assistant.store.article_by_id))

    threads = [threading.Thread(target=session) for _ in range(SESSIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(loads) == 1 and reloaded.count(True) == 1
    assert len(seen) == SESSIONS and all("tram-depot" in ids for ids in seen)


def test_page_reruns_read_the_manifest_only_when_it_changes(seed_index, encoder, tmp_path, monkeypatch):
    index_dir, new = tmp_path / "index", tmp_path / "new"
    shutil.copytree(seed_index, index_dir)
    assistant = Assistant(index_dir, encoder=encoder)
    reads, real_read_manifest = [], index_store.read_manifest
    monkeypatch.setattr(index_store, "read_manifest", lambda *args: reads.append(args) or real_read_manifest(*args))

    assert [assistant.reload_if_changed() for _ in range(3)] == [False] * 3
    assert reads == []  # the manifest lists every article: reruns must not parse it when nothing changed
    overview = assistant.overview()
    assert assistant.overview() is overview and overview.articles == assistant.store.article_count

    new.mkdir()
    (new / "tram-depot.txt").write_text(new_article(*NEW["tram-depot"]), encoding="utf-8")
    update_index([new], index_dir=index_dir, encoder=encoder, progress=False)
    assert assistant.reload_if_changed() and "tram-depot" in assistant.store.article_by_id
    assert assistant.overview().articles == overview.articles + 1
    reads.clear()
    assert [assistant.reload_if_changed() for _ in range(3)] == [False] * 3
    assert reads == []  # the new store took the manifest file's version before reading it


def test_after_a_reload_the_previous_index_is_freed_at_once(seed_index, encoder, tmp_path):
    """No reference cycle holds a loaded index: a long-running page frees the old one without waiting for gc."""
    index_dir, new = tmp_path / "index", tmp_path / "new"
    shutil.copytree(seed_index, index_dir)
    assistant = Assistant(index_dir, encoder=encoder)
    assistant.ask("What did Peskov say about Macron?")
    assert len(list(assistant.store.article_by_id)) == assistant.store.article_count
    old_store, old_retriever = weakref.ref(assistant.store), weakref.ref(assistant.retriever)
    new.mkdir()
    (new / "tram-depot.txt").write_text(new_article(*NEW["tram-depot"]), encoding="utf-8")
    update_index([new], index_dir=index_dir, encoder=encoder, progress=False)
    gc.disable()
    try:
        assert assistant.reload_if_changed()
        assistant.ask("What did Peskov say about Macron?")
        assert old_store() is None and old_retriever() is None
    finally:
        gc.enable()


def test_after_a_reload_no_cache_holds_the_previous_generations_texts(seed_index, encoder, tmp_path):
    index_dir, new = tmp_path / "index", tmp_path / "new"
    shutil.copytree(seed_index, index_dir)
    assistant = Assistant(index_dir, encoder=encoder)
    old_texts = [article.text for article in assistant.store.article_by_id.values()]
    for question in ("What did Peskov say about Macron?", "Who did Belousov call?"):  # names: whole articles read
        assistant.ask(question)
    new.mkdir()
    (new / "tram-depot.txt").write_text(new_article(*NEW["tram-depot"]), encoding="utf-8")
    update_index([new], index_dir=index_dir, encoder=encoder, progress=False)
    assert assistant.reload_if_changed()
    assistant.ask("What did Peskov say about Macron?")
    gc.collect()
    holders = [
        type(holder).__name__
        for text in old_texts
        for holder in gc.get_referrers(text)
        if holder is not old_texts and not isinstance(holder, types.FrameType)
    ]
    assert holders == []
