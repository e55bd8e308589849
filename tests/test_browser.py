"""End to end: `streamlit run app.py` in a real headless Chromium (Debian's /usr/bin/chromium), via Playwright.

Without the browser or Playwright the tests are skipped, except under CI=true, where they fail.
Screenshots go to test-output/.
"""

from __future__ import annotations

import json
import re
import shutil
import time

import pytest

from embeddings.indexer import update_index
from tests.browser_support import OUTPUT, ask, browser_page, require_browser, serve_page, wait_until_idle

NATO = "How did Peskov describe the results of the NATO summit?"
SHARED = "Are there prerequisites for negotiations?"  # Sputnik and the 002 report carry the same quote
HOSTILE = (
    "date 2024-08-02 BERLIN (Zebra News) - The zebra census in Kenya counted 40,000 animals this year, "
    "officials said on Friday. <script>window.pwned = 1; alert('script ran')</script> The census team reported "
    'that the zebra herds crossed the river early. <img src="x" onerror="window.pwned = 2; alert(2)"> Rangers '
    "said the zebra count in Kenya was the highest in a decade, see [the report](javascript:alert(1)) for more.\n"
)
HOSTILE_TITLE = {
    "id": "okapi",
    "title": '<img src="x" onerror="window.pwned = 3"> Okapi :red[survey] $x$',
    "outlet": "<b>Forest</b> Post",
    "date": "2024-08-05",
    "text": "The okapi survey in the Ituri forest counted 312 okapis, the rangers of the reserve said on Monday.",
}


@pytest.fixture(scope="module")
def page_url(seed_index, encoder, tmp_path_factory):
    """Serve the page with `streamlit run` on a free loopback port, over the seeds plus two hostile articles."""
    require_browser()
    work = tmp_path_factory.mktemp("browser")
    index_dir = work / "index"
    shutil.copytree(seed_index, index_dir)
    (work / "hostile").mkdir()
    (work / "hostile" / "zebras.txt").write_text(HOSTILE, encoding="utf-8")
    (work / "hostile" / "okapi.jsonl").write_text(json.dumps(HOSTILE_TITLE) + "\n", encoding="utf-8")
    update_index([work / "hostile"], index_dir=index_dir, encoder=encoder, progress=False)
    with serve_page(index_dir=index_dir, upload_dir=work / "uploads", log_path=work / "streamlit.log") as url:
        yield url


def _mark_is_in_view(frame) -> bool:
    return frame.evaluate(
        """() => {
            const box = document.getElementById("article").getBoundingClientRect();
            const mark = document.getElementById("cited").getBoundingClientRect();
            return mark.top >= box.top && mark.top < box.bottom && box.height > 0;
        }"""
    )


def _top(locator) -> float:
    return locator.evaluate("e => e.getBoundingClientRect().top")


def _settles(page, check, *, seconds: float = 10) -> bool:
    """Return True once `check()` holds, polled while the page draws late parts (charts, iframes) and scrolls."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(200)
    return True


def _scrolled_to_end(locator) -> bool:
    """Return True if the element's scrolling container cannot scroll further down."""
    return locator.evaluate(
        """e => {
            let box = e.parentElement;
            while (box && !(box.scrollHeight > box.clientHeight && getComputedStyle(box).overflowY !== "visible")) {
                box = box.parentElement;
            }
            box = box || document.scrollingElement;
            return box.scrollTop + box.clientHeight >= box.scrollHeight - 2;
        }"""
    )


def _assert_nothing_ran(page) -> None:
    for frame in page.frames:
        assert frame.evaluate("() => window.pwned") is None
        assert frame.locator("img[onerror], a[href^='javascript'], b:text-is('Forest')").count() == 0
        scripts = frame.evaluate("() => [...document.scripts].map(s => s.textContent)")
        assert not any("pwned" in text for text in scripts)


def test_page_answers_cites_opens_sources_and_runs_nothing_from_articles(page_url):
    with browser_page(page_url) as page:
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        ask(page, NATO)
        answer = page.locator(".na-answer").first
        answer.wait_for()
        wait_until_idle(page)
        assert "Peskov" in answer.inner_text()
        assert page.locator(".na-answer a.na-cite").count() >= 2
        sources = page.locator(".na-source")
        assert sources.count() >= 2
        outlets = " ".join(sources.all_inner_texts())
        assert sum(name in outlets for name in ("Bloomberg", "Sputnik", "TASS")) >= 2  # several outlets
        assert sources.first.locator(".na-excerpt mark").first.is_visible()
        assert not sources.first.locator(".na-passage").first.is_visible()  # the passage is collapsed
        page.screenshot(path=str(OUTPUT / "answer.png"), full_page=True)

        page.get_by_role("button", name=re.compile("Open article")).first.click()
        dialog = page.get_by_role("dialog")
        dialog.wait_for()
        frame = page.frame_locator('[role="dialog"] iframe')
        cited = frame.locator("mark#cited")
        cited.wait_for()
        excerpt = page.locator(".na-source").first.locator(".na-excerpt mark").first.inner_text()
        assert cited.inner_text() == excerpt
        assert _mark_is_in_view(cited.element_handle().owner_frame())
        page.screenshot(path=str(OUTPUT / "article.png"))
        page.keyboard.press("Escape")
        dialog.wait_for(state="hidden")

        ask(page, "What did the zebra census in Kenya find?")
        page.get_by_text("zebra census in Kenya counted").first.wait_for()
        wait_until_idle(page)
        cards = page.locator(".na-source")
        hostile = next(n for n in range(cards.count()) if "Zebra News" in cards.nth(n).inner_text())
        shown = cards.nth(hostile).inner_text()  # the markup shows as text
        assert "<script>window.pwned" in shown and '<img src="x" onerror=' in shown and "(javascript:" in shown
        page.get_by_role("button", name=re.compile("Open article")).nth(hostile).click()
        dialog_frame = page.frame_locator('[role="dialog"] iframe')
        dialog_frame.locator("mark#cited").wait_for()
        heading = dialog_frame.locator("p").first.inner_text()
        assert heading.startswith("zebras.txt") and "/" not in heading  # the file name, never a server path
        page.screenshot(path=str(OUTPUT / "hostile.png"), full_page=True)
        _assert_nothing_ran(page)
        assert dialogs == []


def test_statements_badges_markers_compare_timeline_and_scroll(page_url):
    with browser_page(page_url) as page:
        ask(page, SHARED)
        page.locator(".na-answer").first.wait_for()
        wait_until_idle(page)
        message = page.get_by_test_id("stChatMessage").nth(1)
        badges = message.locator(".na-badge").all_inner_texts()
        assert badges and all(b.startswith("Reported by") and "independent source" in b for b in badges)
        assert any(re.search(r"Sputnik.* · [2-9] independent sources · first 14 Jul 2024", b) for b in badges)
        heads = message.locator(".na-source-head").all_inner_texts()
        assert len(heads) == len(set(heads)) and len(heads) < message.locator(".na-excerpt").count()  # one per article

        message.get_by_text("Compare the wording of each source").click()
        versions = message.locator(".na-compare .na-version")
        versions.first.wait_for()
        assert versions.count() >= 2 and message.locator("mark.na-diff").first.is_visible()
        differing = " ".join(message.locator("mark.na-diff").all_inner_texts())
        assert "Peskov" in differing and "he" in differing.split()

        message.get_by_text("Timeline of the sources").click()
        point = message.get_by_test_id("stVegaLiteChart").locator("path[role='graphics-symbol']").first
        point.wait_for()
        assert message.get_by_text("Undated:").is_visible()
        point.click()
        wait_until_idle(page)
        picked = message.get_by_test_id("stExpanderDetails").nth(1).locator(".na-source")
        picked.wait_for()
        assert "Sputnik" in picked.inner_text()  # selecting the point shows that source
        page.screenshot(path=str(OUTPUT / "compare-timeline.png"), full_page=True)

        marker = message.locator("a.na-cite").last
        target = marker.inner_text().strip("[]")
        page.mouse.wheel(0, -200)  # a reader scrolls back up to the answer: Streamlit stops keeping the chat at its end
        marker.click()
        excerpt = message.locator(f"[id='cite-0-{target}']")
        in_view = lambda: 0 <= _top(excerpt) < page.viewport_size["height"] - 150  # noqa: E731
        assert _settles(page, in_view)  # the marker took the reader to its source

        ask(page, NATO)
        answer = page.locator(".na-answer").nth(1)
        answer.wait_for()
        wait_until_idle(page)
        page.wait_for_timeout(2500)  # the page scrolls the new answer up once it is drawn, and keeps it there
        at_top = lambda: 40 <= _top(answer) <= 140 or (_scrolled_to_end(answer) and _top(answer) >= 40)  # noqa: E731
        assert _settles(page, at_top), _top(answer)  # the new answer's first line is at the top


def test_hostile_metadata_stays_inert_in_chart_tooltips_and_filters(page_url):
    with browser_page(page_url) as page:
        ask(page, "How many okapis did the survey in the Ituri forest count?")
        page.locator(".na-answer").first.wait_for()
        wait_until_idle(page)
        message = page.get_by_test_id("stChatMessage").last
        assert "<b>Forest</b> Post" in message.locator(".na-source-head").first.inner_text()
        message.get_by_text("Timeline of the sources").click()
        point = message.get_by_test_id("stVegaLiteChart").locator("path[role='graphics-symbol']").first
        point.wait_for()
        point.hover()
        tooltip = page.locator("#vg-tooltip-element")
        tooltip.wait_for()
        assert '<img src="x"' in tooltip.inner_text() and tooltip.locator("img").count() == 0
        _assert_nothing_ran(page)


def test_empty_page_examples_filters_labels_and_export(page_url, tmp_path):
    with browser_page(page_url) as page:
        examples = page.locator("[class*='st-key-example-'] button")
        examples.first.wait_for()
        assert 3 <= examples.count() <= 4
        question = examples.first.inner_text().split("\n")[-1]  # after the icon's name
        examples.first.click()
        page.locator(".na-answer").first.wait_for()
        wait_until_idle(page)
        assert page.locator(".na-question").first.inner_text() == question

        page.get_by_test_id("stSidebar").get_by_test_id("stMultiSelect").locator("input").click()
        page.get_by_role("option", name="Unknown outlet").click()
        page.keyboard.press("Escape")
        wait_until_idle(page)
        ask(page, NATO)
        filters = page.get_by_test_id("stChatMessage").nth(2).locator(".na-filters")
        filters.wait_for()
        assert filters.inner_text() == "Asked with filters: outlet Unknown outlet"
        wait_until_idle(page)

        with page.expect_download() as download:
            page.get_by_test_id("stSidebar").get_by_role("button", name=re.compile("Export")).click()
        path = tmp_path / "conversation.md"
        download.value.save_as(path)
        markdown = path.read_text(encoding="utf-8")
        assert markdown.startswith("# Conversation with the news assistant") and "Exported " in markdown
        assert f"## 1. {question}" in markdown and "Filters: outlet Unknown outlet" in markdown
        assert "seeds/002_33777394e2f2ac98.txt" in markdown and "/tmp" not in markdown and str(tmp_path) not in markdown
        for needless in ("\\[1\\]", "1\\.", "\\(", "000\\_", "\\-"):
            assert needless not in markdown, needless


def test_upload_lists_what_was_detected(page_url, tmp_path):
    article = tmp_path / "lynx.txt"
    article.write_text(
        "date 2024-09-03 GOSLAR (Nature Desk) - Wildlife officers said the lynx "
        "population in the Harz mountains doubled in five years.\n",
        encoding="utf-8",
    )
    with browser_page(page_url) as page:
        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_test_id("stFileUploaderDropzoneInput").set_input_files([article])
        sidebar.get_by_test_id("stFileChip").first.wait_for()
        sidebar.get_by_role("button", name="Add to the corpus").click()
        added = sidebar.get_by_text("Added 1 file to the corpus:")
        added.wait_for()
        wait_until_idle(page)
        listing = sidebar.locator(".na-added").inner_text()
        assert "lynx.txt (added)" in listing and "no title found · Nature Desk · 3 Sep 2024" in listing
        added.scroll_into_view_if_needed()
        page.screenshot(path=str(OUTPUT / "upload.png"))


def test_phone_layout_fits_the_screen(page_url):
    with browser_page(page_url, width=390, height=844) as page:
        ask(page, SHARED)
        answer = page.locator(".na-answer").first
        answer.wait_for()
        wait_until_idle(page)
        page.wait_for_timeout(3000)  # after the page has settled (Streamlit scrolls a chat to its end)
        assert _settles(page, lambda: 40 <= _top(answer) <= 140), _top(answer)  # its first line at the screen's top
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # nothing runs off the side
        page.screenshot(path=str(OUTPUT / "phone.png"))
