"""Loading articles: metadata found in each format, boilerplate kept out of content, text kept exactly as read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embeddings.articles import LoadError, read_articles
from embeddings.passages import chunk_article
from tests.conftest import SEEDS


def load(path: Path):
    return read_articles(path, path.read_bytes(), display_path=str(path))


def load_seed(stem_prefix: str):
    (path,) = SEEDS.glob(f"{stem_prefix}_*.txt")
    articles, skipped = load(path)
    assert len(articles) == 1 and not skipped
    return articles[0]


def content(article) -> str:
    """Return all content sentences of an article, joined."""
    sentences, _ = chunk_article(article)
    return "\n".join(article.text[a:b] for a, b in sentences)


@pytest.mark.parametrize(
    ("prefix", "title", "outlet", "date"),
    [
        ("000", None, "TASS", "2024-07-14"),
        ("001", "NATO Summit Results Are 'Threatening' for Russia - Kremlin", "Sputnik", "2024-07-14"),
        ("002", None, None, None),
        (
            "003",
            "Peskov: NATO is in conflict with Russia, Macron is not calling and they are not listening to Russia",
            None,
            None,
        ),
        ("004", None, "Bloomberg", None),
    ],
)
def test_seed_metadata(prefix, title, outlet, date):
    article = load_seed(prefix)
    assert (article.title, article.outlet, article.date) == (title, outlet, date)
    assert article.id == next(SEEDS.glob(f"{prefix}_*.txt")).stem


def test_text_is_kept_exactly_as_read():
    for path in SEEDS.iterdir():
        (article,) = load(path)[0]
        assert article.text == path.read_bytes().decode("utf-8")
        for start, end in article.blocks:
            assert 0 <= start < end <= len(article.text)


def test_boilerplate_is_never_content():
    izvestia = content(load_seed("003"))
    assert "Advertisement" not in izvestia
    assert "Macron does not call and do not listen" not in izvestia  # the third, reworded copy of the headline
    assert izvestia.count("NATO is in conflict with Russia") == 0
    sputnik = content(load_seed("001"))
    assert "© Sputnik" not in sputnik and "Russia and US in Deep Confrontation" not in sputnik
    bloomberg = content(load_seed("004"))
    assert "©2024 Bloomberg L.P." not in bloomberg and not bloomberg.startswith("(Bloomberg)")
    tass = content(load_seed("000"))
    assert tass.startswith("The countries of the collective West") and "date 2024-07-14" not in tass


def test_markdown(tmp_path):
    path = tmp_path / "brief.md"
    path.write_text(
        "# Kremlin rejects talks\n\n*Reuters*\n\nMOSCOW (Reuters) - The Kremlin said on Monday that talks were off. "
        "Officials gave no date.\n\n## Background\n\n- The summit ended on Thursday after three days.\n",
        encoding="utf-8",
    )
    (article,), _skipped = load(path)
    assert (article.id, article.title, article.outlet) == ("brief", "Kremlin rejects talks", "Reuters")
    text = content(article)
    assert text.startswith("The Kremlin said on Monday") and "Background" not in text and "#" not in text
    assert "The summit ended on Thursday after three days." in text.splitlines()


def test_html_uses_an_article_extractor(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Kremlin calls NATO summit threatening | Example News</title>"
        "<meta property='og:site_name' content='Example News'>"
        "<meta property='article:published_time' content='2024-07-14T10:00:00Z'></head>"
        "<body><nav><a href='/'>Home</a> | <a href='/world'>World</a></nav><article>"
        "<h1>Kremlin calls NATO summit threatening</h1>"
        "<p>The Kremlin said on Sunday that the results of the NATO summit were threatening for Russia.</p>"
        "<p>Peskov said there were no prerequisites for talks with the alliance at this point.</p>"
        "</article><footer>Contact us | Privacy policy</footer></body></html>",
        encoding="utf-8",
    )
    (article,), _ = load(path)
    assert article.title.startswith("Kremlin calls NATO summit threatening")
    assert article.outlet == "Example News" and article.date == "2024-07-14"
    text = content(article)
    assert "prerequisites for talks" in text and "Privacy policy" not in text and "Home" not in text


def test_jsonl_fields_and_bad_lines(tmp_path):
    records = [
        {"id": "a1", "title": "Missiles for Germany", "text": "The US will station missiles in Germany.",
         "date": "2024-07-10T08:00:00", "outlet": "Example Wire", "url": "https://example.org/a1"},
        {"id": "a2", "text": "Peskov said the plan was provocative.", "source": "Other Daily"},
    ]  # fmt: skip
    lines = [json.dumps(records[0]), "{not json", json.dumps({"id": "a3"}), json.dumps(records[1])]
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    articles, skipped = load(path)
    assert [(a.id, a.title, a.outlet, a.date, a.url) for a in articles] == [
        ("a1", "Missiles for Germany", "Example Wire", "2024-07-10", "https://example.org/a1"),
        ("a2", None, "Other Daily", None, None),
    ]
    assert [s.path for s in skipped] == [f"{path}:2", f"{path}:3"]
    assert "invalid JSON" in skipped[0].reason and "'text'" in skipped[1].reason


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"  \n", "empty file"),
        ("binary.txt", b"\x00\x01\x02binary", "binary file"),
        ("latin1.txt", "Café au lait près de la gare.".encode("latin-1"), "not valid UTF-8"),
        ("scan.pdf", b"%PDF-1.4", "unsupported file type .pdf"),
        ("nobody.html", b"<html><head><title>x</title></head><body></body></html>", "no article text"),
    ],
)
def test_unreadable_files_say_why(tmp_path, name, data, reason):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(LoadError, match=reason):
        load(path)
