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


IZVESTIA_TITLE = "Peskov: NATO is in conflict with Russia, Macron is not calling and they are not listening to Russia"


@pytest.mark.parametrize(
    ("prefix", "title", "outlet", "date", "label", "opening"),
    [
        ("000", None, "TASS", "2024-07-14", "TASS", "The countries of the collective West"),
        (
            "001",
            "NATO Summit Results Are 'Threatening' for Russia - Kremlin",
            "Sputnik",
            "2024-07-14",
            "Sputnik",
            "Kremlin spokesman Dmitry Peskov commented",
        ),
        ("002", None, None, None, "Tensions between Russia and the West are on …", "Tensions between Russia"),
        ("003", IZVESTIA_TITLE, None, None, IZVESTIA_TITLE, "Dmitry Peskov, spokesman for Russian President"),
        ("004", None, "Bloomberg", None, "Bloomberg", "The Kremlin said it views the results"),
    ],
)
def test_seed_metadata(prefix, title, outlet, date, label, opening):
    article = load_seed(prefix)
    assert (article.title, article.outlet, article.date, article.label) == (title, outlet, date, label)
    assert article.id == next(SEEDS.glob(f"{prefix}_*.txt")).stem
    assert content(article).startswith(opening)


def test_seed_datelines_are_never_content():
    assert content(load_seed("003")).splitlines()[1].startswith("In a newspaper interview, the spokesman")
    datelines = {"000": "MOSCOW, July 14", "001": "(Sputnik)", "003": "Moscow –", "004": "(Bloomberg)"}
    for prefix, dateline in datelines.items():
        assert dateline not in content(load_seed(prefix))


def read_text(tmp_path, text: str, suffix: str = ".txt"):
    """Return the one article read from `text` saved as a file."""
    path = tmp_path / f"article{suffix}"
    path.write_text(text, encoding="utf-8")
    (article,), _ = load(path)
    return article


BODY = "The ministry said talks would resume. Officials gave no further details."


# Each row of the README's table of detected metadata: the text's first line, then the outlet and date read from it.
@pytest.mark.parametrize(
    ("opening", "outlet", "date"),
    [
        ("LONDON, July 15 (Reuters) - ", "Reuters", None),
        ("LONDON, 15 July (Reuters) - ", "Reuters", None),
        ("LONDON, July 15, 2024 (Reuters) - ", "Reuters", "2024-07-15"),
        ("WASHINGTON (AP) — ", "AP", None),
        ("KYIV, Ukraine (AP) — ", "AP", None),
        ("(CNN) — ", "CNN", None),
        ("Washington (CNN) — ", "CNN", None),
        ("Washington CNN — ", "CNN", None),
        ("MOSCOW, July 14. /TASS/. ", "TASS", None),
        ("MOSCOW, July 14. /ITAR-TASS/. ", "TASS", None),
        ("MOSCOW (Sputnik) - ", "Sputnik", None),
        ("(Bloomberg) -- ", "Bloomberg", None),
        ("PARIS (AFP) - ", "AFP", None),
        ("Paris (AFP) – ", "AFP", None),
        ("BEIJING, July 15 (Xinhua) -- ", "Xinhua", None),
        ("MOSCOW. July 15 (Interfax) - ", "Interfax", None),
        ("MOSCOW, July 15 (RIA Novosti) - ", "RIA Novosti", None),
        ("MOSCOW, July 15 - RIA Novosti. ", "RIA Novosti", None),
        ("ANKARA (AA) - ", "Anadolu", None),
        ("ISTANBUL (Anadolu Agency) - ", "Anadolu", None),
        ("DOHA (Al Jazeera) - ", "Al Jazeera", None),
        ("LONDON (BBC) - ", "BBC", None),
        ("WASHINGTON, July 15 (UPI) -- ", "UPI", None),
        ("KYIV (Kyiv Independent) - ", "Kyiv Independent", None),  # an outlet not in the list, in a dateline
        ("SAN FRANCISCO, March 3, 1987 - ", None, "1987-03-03"),
        ("PORTLAND, Ore., Feb 26, 1987 - ", None, "1987-02-26"),
        ("Moscow – ", None, None),
    ],
)
def test_datelines(tmp_path, opening, outlet, date):
    article = read_text(tmp_path, f"Talks to resume\n\n{opening}{BODY}\n")
    assert (article.outlet, article.date, article.title) == (outlet, date, "Talks to resume")
    assert content(article).startswith("The ministry said talks would resume.")  # the dateline is never quoted


@pytest.mark.parametrize(
    ("line", "outlet"),
    [
        ("©2024 Bloomberg L.P.", "Bloomberg"),
        ("© Sputnik / Alexei Danichev", "Sputnik"),
        ("Copyright 2024 The Associated Press. All rights reserved.", "AP"),
        ("(c) 2024 Thomson Reuters", "Reuters"),
        ("© 2024 BBC", "BBC"),
        ("Source: Al Jazeera", "Al Jazeera"),
        ("SOURCE: AL JAZEERA AND NEWS AGENCIES", "Al Jazeera"),
        ("*Reuters*", "Reuters"),
        ("Copyright 2024 Example Daily.", "Example Daily"),  # an outlet not in the list, in a copyright line
    ],
)
def test_credit_lines(tmp_path, line, outlet):
    article = read_text(tmp_path, f"{BODY}\n{line}\n")
    assert article.outlet == outlet
    assert content(article) == BODY.replace(". ", ".\n")  # the credit is never quoted


@pytest.mark.parametrize(
    ("line", "date"),
    [
        ("Published July 15, 2024", "2024-07-15"),
        ("Published: 15 Jul 2024 10:02 GMT", "2024-07-15"),
        ("Published On 15 Jul 2024", "2024-07-15"),
        ("Posted Monday, Jul. 15th, 2024 at 10:02 a.m.", "2024-07-15"),
        ("Updated 2024-07-15", "2024-07-15"),
        ("Last updated: 2024/07/15 10:02.", "2024-07-15"),
        ("Published 14 July 2024\nUpdated 15 July 2024", "2024-07-14"),  # the first publication wins
        ("Updated 15 July 2024\nMOSCOW, July 14. /TASS/. ", "2024-07-14"),  # a dateline beats an update
        ("Published July 32, 2024", None),  # not a date
    ],
)
def test_date_stamps(tmp_path, line, date):
    article = read_text(tmp_path, f"Talks to resume\n{line}\n{BODY}\n")
    assert (article.date, article.title) == (date, "Talks to resume")
    assert content(article).startswith("The ministry said talks would resume.")


def test_a_sentence_starting_like_a_stamp_is_content(tmp_path):
    line = "Updated figures: the ministry said on 15 July 2024 that talks with both delegations would resume soon."
    article = read_text(tmp_path, f"{line}\n{BODY}\n")
    assert content(article).startswith(line) and article.date is None


@pytest.mark.parametrize(
    ("rest", "date"),
    [
        ("\n©2024 TASS", "2024-07-14"),  # a copyright year
        (" The interview was recorded on July 11, 2024.", "2024-07-14"),  # a full date elsewhere
        (" In 2022 talks stalled. The plan runs to 1 March 2023.", "2023-07-14"),  # the latest
        (" The war began in 2022.", "2022-07-14"),  # the only year the text mentions
        (" The war began in 2022 and the plan runs to 2026.", None),  # two years, no full date: no date
        ("", None),  # no year anywhere: no date
    ],
)
def test_dateline_year_is_inferred_from_the_text(tmp_path, rest, date):
    article = read_text(tmp_path, f"MOSCOW, July 14. /TASS/. Peskov spoke to reporters.{rest}\n")
    assert (article.outlet, article.date) == ("TASS", date)
    assert content(article).startswith("Peskov spoke to reporters.")


@pytest.mark.parametrize(
    "text",
    [
        "(in Russian) - The Kremlin said talks would resume.",
        "The Kremlin said the alliance (NATO) - and its allies - would meet.",
        "NATO (North Atlantic Treaty Organization) - The alliance met on Thursday.",
        "Gould Inc (GLD) - Offering of two mln shares.",
        "The Kremlin said talks would resume.\nGould Inc (GLD) - Offering of two mln shares.",
        "The Kremlin said talks would resume.\n(Continued) - The talks stalled.",
        "Peskov cited a report (Reuters) - and denied it.",
        "The talks stalled.\nPeskov said: © 2024 Bloomberg L.P. was wrong.",
    ],
)
def test_no_outlet_from_parentheses_in_sentences(tmp_path, text):
    article = read_text(tmp_path, text + "\n")
    assert article.outlet is None
    assert content(article).replace("\n", " ") == text.replace("\n", " ")  # nothing is cut from the content


def test_html_dateline_beats_site_name_and_is_not_content(tmp_path):
    article = read_text(
        tmp_path,
        "<html><head><title>Senate votes</title><meta property='og:site_name' content='Associated Press'></head>"
        "<body><article><h1>Senate votes</h1><p>WASHINGTON (AP) — The Senate voted on Tuesday to fund the "
        "government through September.</p><p>The bill now goes to the House, where a vote is expected.</p>"
        "</article></body></html>",
        ".html",
    )
    assert article.outlet == "AP"
    assert content(article).startswith("The Senate voted on Tuesday")


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


@pytest.mark.parametrize(
    ("fields", "outlet", "date"),
    [
        ({"source": "Associated Press", "published_at": "2024-07-15T23:10:00-04:00"}, "AP", "2024-07-15"),
        ({"source": {"name": "Reuters"}, "publishedAt": "2024-07-15T10:02:00Z"}, "Reuters", "2024-07-15"),
        ({"source": "BBC News", "date": None, "published": "Mon, 15 Jul 2024 10:02:00 GMT"}, "BBC", "2024-07-15"),
        ({"publisher": "Example Daily", "pubDate": "15 July 2024"}, "Example Daily", "2024-07-15"),
        ({"outlet": "ITAR-TASS", "datetime": "2024-07-15 10:02"}, "TASS", "2024-07-15"),
        ({"date": "31-MAR-1987 605:12:19.12", "source": "Reuters"}, "Reuters", "1987-03-31"),  # Reuters-21578's odd one
        ({"date": "July 14", "outlet": " "}, None, None),
    ],
)
def test_jsonl_date_and_outlet_fields(tmp_path, fields, outlet, date):
    article = read_text(tmp_path, json.dumps({"id": "a1", "text": BODY, **fields}) + "\n", ".jsonl")
    assert (article.outlet, article.date) == (outlet, date)


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


def test_answers_cite_the_dateline_outlet_and_date_but_never_quote_the_dateline(tmp_path, encoder):
    from assistant.service import Assistant
    from embeddings.indexer import update_index

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "wire.txt").write_text(
        "LONDON, July 15 (Reuters) - Russia will not take part in the peace conference in Switzerland, Kremlin "
        "spokesman Dmitry Peskov said on Monday. He said Moscow had not been invited.\n©2024 Reuters\n",
        encoding="utf-8",
    )
    update_index([SEEDS, corpus], index_dir=tmp_path / "index", encoder=encoder, progress=False)
    answer = Assistant(tmp_path / "index", encoder=encoder).ask("Will Russia take part in the peace conference?")
    (citation,) = [c for c in answer.citations if c.article_id == "wire"]
    assert (citation.outlet, citation.date, citation.label) == ("Reuters", "2024-07-15", "Reuters")
    text = (corpus / "wire.txt").read_text(encoding="utf-8")
    for quoted in (citation.excerpt, text[citation.passage_start : citation.passage_end]):
        assert quoted.startswith("Russia will not take part") and "(Reuters)" not in quoted
