"""Property tests of the loaders and the chunker: they never crash, and every offset they return is valid."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embeddings.articles import SUPPORTED_SUFFIXES, Article, LoadError, read_articles, read_layout
from embeddings.passages import chunk_article, split_sentences

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text built from the pieces that steer the parsers: sentence ends, quotes, abbreviations, datelines,
# Markdown markers, copyright lines, odd line breaks and whitespace, digits and non-Latin letters.
PIECES = [
    *"ab Zé.!?…\"'“”‘’«»()[],;:-#>*\n\r\t\x0b\x0c\x85\u2028\u00a0",
    "Mr. ",
    "U.S. ",
    "e.g. ",
    "The Kremlin said. ",
    "MOSCOW, July 14. /TASS/. ",
    "LONDON (Reuters) - ",
    "LONDON, July 15 (Reuters) - ",
    "Washington CNN — ",
    "Moscow – ",
    "SAN FRANCISCO, March 3 - ",
    "Published: 15 Jul 2024 10:02 GMT",
    "Updated July 32, 2024",
    "Source: Al Jazeera",
    "2024-07-15",
    "(Bloomberg) -- ",
    "© 2024 Bloomberg L.P.",
    "date 2024-07-14 ",
    "\n\n",
    "# Title\n",
    "> quote ",
    "1. ",
    "- item ",
    "Advertisement\n",
    "<script>alert(1)</script>",
    "12345",
    "Путин заявил. ",
    "北京。",
]
texts = st.one_of(st.lists(st.sampled_from(PIECES), max_size=40).map("".join), st.text(max_size=200))


def check_blocks(text: str, blocks) -> None:
    """Assert that content blocks are ordered, non-empty and inside the text."""
    previous_end = 0
    for start, end in blocks:
        assert previous_end <= start <= end <= len(text)
        previous_end = end


def check_sentences(text: str, spans, start: int, end: int) -> None:
    """Assert that sentence spans are ordered, disjoint, inside [start, end), trimmed and not empty."""
    previous_end = start
    for a, b in spans:
        assert previous_end <= a < b <= end
        assert text[a:b] == text[a:b].strip()
        previous_end = b


@FUZZ
@given(texts, st.booleans())
def test_read_layout_returns_blocks_inside_the_text(text, markdown):
    layout = read_layout(text, markdown=markdown)
    check_blocks(text, layout.blocks)
    assert layout.date is None or len(layout.date) == 10


@FUZZ
@given(texts, st.data())
def test_split_sentences_returns_valid_spans_of_any_range(text, data):
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    check_sentences(text, split_sentences(text, start, end), start, end)


@FUZZ
@given(texts)
def test_passages_are_runs_of_whole_sentences_inside_one_block(text):
    layout = read_layout(text)
    article = Article("fuzz", text, "fuzz.txt", blocks=layout.blocks)
    sentences, passages = chunk_article(article, passage_words=12, max_sentences=3)
    block_of = []
    for number, (start, end) in enumerate(layout.blocks):
        spans = split_sentences(text, start, end)
        check_sentences(text, spans, start, end)
        block_of += [number] * len(spans)
    assert len(block_of) == len(sentences)
    covered = set()
    for passage in passages:
        assert 0 <= passage.first_sentence < passage.sentence_stop <= len(sentences)
        assert passage.start == sentences[passage.first_sentence][0]
        assert passage.end == sentences[passage.sentence_stop - 1][1]
        assert len({block_of[i] for i in range(passage.first_sentence, passage.sentence_stop)}) == 1
        covered.update(range(passage.first_sentence, passage.sentence_stop))
    assert covered == set(range(len(sentences)))


def check_loaded(data: bytes, suffix: str) -> None:
    """Read `data` as a file with `suffix`: only LoadError may be raised, and every article must be valid."""
    try:
        articles, skipped = read_articles(Path(f"fuzz{suffix}"), data, display_path=f"fuzz{suffix}")
    except LoadError as error:
        assert str(error)
        return
    assert articles
    for article in articles:
        check_blocks(article.text, article.blocks)
        assert article.blocks and article.id
        sentences, passages = chunk_article(article)
        assert sentences and passages
        json.dumps(article.to_json(), ensure_ascii=False).encode("utf-8")  # storable as UTF-8
        assert Article.from_json(article.to_json()) == article
    assert all(s.path.startswith(f"fuzz{suffix}:") and s.reason for s in skipped)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([*SUPPORTED_SUFFIXES, ".pdf", ""]))
def test_read_articles_of_arbitrary_bytes_raises_only_load_error(data, suffix):
    check_loaded(data, suffix)


@FUZZ
@given(texts, st.sampled_from([".txt", ".md", ".html"]))
def test_read_articles_of_arbitrary_text_raises_only_load_error(text, suffix):
    if suffix == ".html":
        text = f"<html><body><article><h1>T</h1><p>{text}</p></article></body></html>"
    check_loaded(text.encode("utf-8", "surrogatepass"), suffix)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
records = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=10), json_values),
        "text": st.one_of(texts, json_values),
        "title": st.one_of(st.text(max_size=20), json_values),
        "date": st.one_of(
            st.sampled_from(["2024-07-14", "2024-07-14T10:00:00Z", "July 14", "31-MAR-1987 605:12", "2024-02-30"]),
            json_values,
        ),
        "published_at": json_values,
        "outlet": json_values,
        "source": st.one_of(st.sampled_from(["Associated Press", "BBC News"]), json_values),
        "url": json_values,
    },
)


@FUZZ
@given(st.lists(st.one_of(records.map(json.dumps), st.text(max_size=40)), max_size=5))
def test_read_articles_of_arbitrary_jsonl_lines_raises_only_load_error(lines):
    check_loaded("\n".join(lines).encode("utf-8", "surrogatepass"), ".jsonl")
