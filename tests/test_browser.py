"""End to end: `streamlit run app.py` in a real headless Chromium (Debian's /usr/bin/chromium), via Playwright.

Without the browser or Playwright the test is skipped, except under CI=true, where it fails.
Screenshots go to test-output/.
"""

from __future__ import annotations

import re
import shutil

import pytest

from embeddings.indexer import update_index
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, OUTPUT, ask, require_browser, serve_page, wait_until_idle

NATO = "How did Peskov describe the results of the NATO summit?"
HOSTILE = (
    "date 2024-08-02 BERLIN (Zebra News) - The zebra census in Kenya counted 40,000 animals this year, "
    "officials said on Friday. <script>window.pwned = 1; alert('script ran')</script> The census team reported "
    'that the zebra herds crossed the river early. <img src="x" onerror="window.pwned = 2; alert(2)"> Rangers '
    "said the zebra count in Kenya was the highest in a decade, see [the report](javascript:alert(1)) for more.\n"
)


@pytest.fixture(scope="module")
def page_url(seed_index, encoder, tmp_path_factory):
    """Serve the page with `streamlit run` on a free loopback port, over the seeds plus a hostile article."""
    require_browser()
    work = tmp_path_factory.mktemp("browser")
    index_dir = work / "index"
    shutil.copytree(seed_index, index_dir)
    (work / "hostile").mkdir()
    (work / "hostile" / "zebras.txt").write_text(HOSTILE, encoding="utf-8")
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


def test_page_answers_cites_opens_sources_and_runs_nothing_from_articles(page_url):
    sync_playwright = require_browser()
    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.set_default_timeout(90_000)
        page.goto(page_url)

        ask(page, NATO)
        answer = page.locator(".na-answer").first
        answer.wait_for()
        wait_until_idle(page)
        assert "Peskov" in answer.inner_text()
        assert page.locator(".na-answer .na-cite").count() >= 2
        sources = page.locator(".na-source")
        assert sources.count() >= 2
        outlets = " ".join(sources.all_inner_texts())
        assert sum(name in outlets for name in ("Bloomberg", "Sputnik", "TASS")) >= 2  # several outlets
        assert sources.first.locator("mark").is_visible()
        page.screenshot(path=str(OUTPUT / "answer.png"), full_page=True)

        page.get_by_role("button", name=re.compile("Open article")).first.click()
        dialog = page.get_by_role("dialog")
        dialog.wait_for()
        frame = page.frame_locator('[role="dialog"] iframe')
        cited = frame.locator("mark#cited")
        cited.wait_for()
        excerpt = page.locator(".na-source").first.locator("mark").inner_text()
        assert cited.inner_text() == excerpt
        assert _mark_is_in_view(cited.element_handle().owner_frame())
        page.screenshot(path=str(OUTPUT / "article.png"))
        page.keyboard.press("Escape")
        dialog.wait_for(state="hidden")

        ask(page, "What did the zebra census in Kenya find?")
        page.get_by_text("zebra census in Kenya counted").first.wait_for()
        wait_until_idle(page)
        hostile = page.locator(".na-source", has_text="Zebra News").first
        hostile.wait_for()
        shown = hostile.inner_text()  # the markup shows as text
        assert "<script>window.pwned" in shown and '<img src="x" onerror=' in shown and "(javascript:" in shown
        page.get_by_role("button", name=re.compile("Open article")).last.click()
        page.frame_locator('[role="dialog"] iframe').locator("mark#cited").wait_for()
        page.screenshot(path=str(OUTPUT / "hostile.png"), full_page=True)
        for frame in page.frames:
            assert frame.evaluate("() => window.pwned") is None
            assert frame.locator("img[onerror], a[href^='javascript']").count() == 0
            scripts = frame.evaluate("() => [...document.scripts].map(s => s.textContent)")
            assert not any("pwned" in text for text in scripts)
        assert dialogs == []
        browser.close()
