"""Passages: whole sentences only, a few per passage, consecutive passages overlapping by one sentence."""

from __future__ import annotations

import itertools

from embeddings.articles import Article, read_layout
from embeddings.passages import chunk_article, passage_document, split_sentences
from tests.conftest import SEEDS
from tests.test_articles import load


def sentences_of(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text, 0, len(text))]


def test_sentence_splitting_respects_abbreviations_initials_and_quotes():
    text = (
        "Mr. Peskov spoke to the U.S. press on Jan. 5 in St. Petersburg. J. Smith listened. "
        '"We will see," he said. Was it over? "Yes." It was the "Moscow. Kremlin. Putin" show.'
    )
    assert sentences_of(text) == [
        "Mr. Peskov spoke to the U.S. press on Jan. 5 in St. Petersburg.",
        "J. Smith listened.",
        '"We will see," he said.',
        "Was it over?",
        '"Yes."',
        'It was the "Moscow. Kremlin. Putin" show.',
    ]


def test_line_breaks_end_sentences_unless_the_line_stops_mid_sentence():
    text = "First paragraph ends here.\nSecond one starts\nand continues on a wrapped line.\nThird."
    assert sentences_of(text) == [
        "First paragraph ends here.",
        "Second one starts\nand continues on a wrapped line.",
        "Third.",
    ]


def test_passages_are_whole_sentences_with_one_sentence_overlap():
    for path in SEEDS.iterdir():
        (article,) = load(path)[0]
        sentences, passages = chunk_article(article, passage_words=60, max_sentences=4, overlap_sentences=1)
        assert passages, article.id
        starts = {a for a, _ in sentences}
        ends = {b for _, b in sentences}
        for passage in passages:
            assert passage.start in starts and passage.end in ends  # never cuts a sentence
            assert 1 <= passage.sentence_stop - passage.first_sentence <= 4
            assert (passage.start, passage.end) == (
                sentences[passage.first_sentence][0],
                sentences[passage.sentence_stop - 1][1],
            )
        for before, after in itertools.pairwise(passages):
            same_block = any(a <= before.start and after.end <= b for a, b in article.blocks)
            if same_block:  # one shared sentence, unless the earlier passage is a single long sentence
                assert after.first_sentence == max(before.sentence_stop - 1, before.first_sentence + 1)
        covered = {i for p in passages for i in range(p.first_sentence, p.sentence_stop)}
        assert covered == set(range(len(sentences)))  # every sentence is in some passage


def test_sentences_stay_inside_content_blocks():
    text = "Headline Of The Story\nFirst fact is here. Second fact too.\nAdvertisement'; }\nThird fact follows."
    layout = read_layout(text)
    article = Article("x", text, "x.txt", layout.title, layout.outlet, layout.date, None, layout.blocks)
    sentences, passages = chunk_article(article)
    assert [text[a:b] for a, b in sentences] == ["First fact is here.", "Second fact too.", "Third fact follows."]
    assert len(passages) == 2  # the advertisement line splits the content into two blocks
    assert passage_document(article, sentences[:2]) == "Headline Of The Story\nFirst fact is here. Second fact too."


def test_chunking_defaults_are_the_indexers_settings():
    from embeddings.indexer import CHUNKING as indexer_chunking

    text = " ".join(f"Sentence number {i} says one more thing about the story." for i in range(60))
    article = Article("long", text, "long.txt", blocks=((0, len(text)),))
    assert chunk_article(article) == chunk_article(article, **indexer_chunking)
