"""Helpers for the browser tests: find Chromium and Playwright, serve app.py with `streamlit run`, ask a question."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

OUTPUT = ROOT / "test-output"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_browser():
    """Return playwright's sync_playwright, or skip (fail under CI=true) saying what is missing."""
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "the playwright package is not installed (pip install playwright)"
    if missing is None and not CHROMIUM.exists():
        missing = f"no browser at {CHROMIUM} (apt-get install -y chromium)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test cannot run under CI: {missing}")
        pytest.skip(f"browser test skipped: {missing}")
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serve_page(*, index_dir: Path, upload_dir: Path, log_path: Path):
    """Serve app.py with `streamlit run` on a free loopback port over `index_dir`; yield its URL."""
    port = _free_port()
    env = dict(os.environ, ASSISTANT_INDEX_DIR=str(index_dir), ASSISTANT_UPLOAD_DIR=str(upload_dir))
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
    command += ["--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    log = log_path.open("wb")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


@contextlib.contextmanager
def browser_page(url: str, *, width: int = 1400, height: int = 1000):
    """Open `url` in a new headless Chromium page of the given size; yield the page once the chat input shows."""
    sync_playwright = require_browser()
    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, accept_downloads=True)
            page.set_default_timeout(90_000)
            page.goto(url)
            page.get_by_test_id("stChatInputTextArea").wait_for()
            wait_until_idle(page)
            yield page
        finally:
            browser.close()


def ask(page, question: str) -> None:
    """Type `question` into the page's chat input and send it."""
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    box.press("Enter")


def wait_until_idle(page) -> None:
    """Wait until the page's script run has ended, so everything it draws is on the page."""
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for()
