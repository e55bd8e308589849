"""Statements: whole quotations, one statement across outlets, speakers, independent sources, comparisons."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.cli import format_answer, main
from assistant.retrieval import Filters
from assistant.service import Assistant
from assistant.statements import (
    _SAME_MEANING,
    claim,
    dangling_marks,
    is_comparison,
    same_source,
    same_statement,
    speaker,
    whole_quotation,
)
from embeddings.indexer import update_index
from tests.conftest import SEEDS
from tests.test_answers import SEED_TEXT, assert_exact_spans

TASS, SPUTNIK, REPORT_002, IZVESTIYA, BLOOMBERG = (
    "000_a59ac2337c62729e", "001_908e128f1a3b6151", "002_33777394e2f2ac98", "003_55d34379ba40b207",
    "004_aa9b3008a461e9e9",
)  # fmt: skip
NO_PREREQUISITES = [
    "There are no prerequisites for the negotiations yet.",  # Sputnik
    "There are no prerequisites for negotiations yet.",  # 002
    "That there are no prerequisites to talks so far.",  # TASS
    "The Kremlin said it views the results of last week’s NATO summit as “threatening” for Russia and signaling no "
    "grounds to start talks to end the war in Ukraine.",  # Bloomberg
]
OTHER_CLAIMS = [
    "The Kremlin also commented on the state of US-Russian relations, stating that there are no conditions for the "
    "normalization of bilateral relations yet.",
    "We cannot see any prerequisites for exiting this spiral, this nosedive.",
]


def balanced(excerpt: str) -> bool:
    return excerpt.count("“") == excerpt.count("”") and excerpt.count('"') % 2 == 0


def test_no_sentence_of_the_seeds_is_quoted_with_half_a_quotation(seed_assistant):
    store = seed_assistant.store
    sentences = store.sentence_table(np.arange(store.sentence_rows)).tolist()
    widened = 0
    for article_row, start, end in sentences:
        article = store.article(article_row)
        around = [(a, b) for row, a, b in sentences if row == article_row]
        first, last = whole_quotation(article.text, start, end, around)
        excerpt = article.text[first:last]
        assert balanced(excerpt) and not dangling_marks(article.text, first, last), excerpt
        # Within one content block: no dateline, byline, headline or credit line.
        assert excerpt.strip() == excerpt and any(a <= first < last <= b for a, b in article.blocks)
        widened += (first, last) != (start, end)
    assert widened >= 20  # the seeds quote a lot: many sentences are only half a quotation


def test_an_answer_never_clips_a_quotation(seed_assistant):
    for question, filters in [
        ("How did Peskov describe the results of the NATO summit?", None),
        ("How did Peskov describe the results of the NATO summit?", Filters(frozenset({"TASS"}))),
        ("What did Peskov say about the US election?", Filters(frozenset({"TASS"}))),
    ]:
        answer = seed_assistant.ask(question, filters=filters)
        assert answer.citations
        for citation in answer.citations:
            assert balanced(citation.excerpt), citation.excerpt
        assert_exact_spans(answer)
    tass = seed_assistant.ask(
        "How did Peskov describe the results of the NATO summit?", filters=Filters(frozenset({"TASS"}))
    )
    assert any("alarming for us" in c.excerpt and c.excerpt.endswith("Peskov said.") for c in tass.citations)


def test_the_four_no_prerequisites_versions_are_one_statement(encoder):
    vectors = encoder.encode(NO_PREREQUISITES + OTHER_CLAIMS)
    claims = [claim(text, vector) for text, vector in zip(NO_PREREQUISITES + OTHER_CLAIMS, vectors)]
    versions, others = claims[:4], claims[4:]
    for i, a in enumerate(versions):
        for b in versions[i + 1 :]:
            assert same_statement(a, b), (a.text, b.text)
    for other in others:  # same words, another claim
        assert not same_statement(versions[1], other), other.text


def test_the_same_figures_make_fairly_close_sentences_one_statement(encoder):
    short = "Moscow produced 210 mln tonnes in 1986."
    longer = (
        "The Soviet Union produced 210 mln tonnes of grain in 1986 and the Soviet press has said heavy rain has "
        "affected the harvest this year."
    )
    other_year = longer.replace("1986", "1985").replace("210", "195")
    texts = [short, longer, other_year]
    claims = [claim(t, v) for t, v in zip(texts, encoder.encode(texts))]
    assert same_statement(claims[0], claims[1])
    assert not same_statement(claims[0], claims[2])


def test_words_joined_by_and_stay_one_clause(encoder):
    # Cut at "and", "the collective West" and "Russia ... confrontation" were clauses of their own, and the first
    # made this sentence carry the president's claim about the West.
    confrontation = (
        "The countries of the collective West and Russia are currently at the stage of deep and sharp confrontation, "
        "with no prerequisites to withdrawal from this situation in place so far, Kremlin Spokesman Dmitry Peskov said "
        'in a commentary for the "Moscow. Kremlin. Putin" program on Rossiya-1 TV channel.'
    )
    facing = (
        "Faced with Russia's failures on the battlefield in the protracted war, the Russian president claims that "
        "Russia is actually facing the entire collective West."
    )
    a, b = (claim(t, v) for t, v in zip((confrontation, facing), encoder.encode([confrontation, facing])))
    assert not same_statement(a, b)


def test_other_figures_or_the_other_direction_make_another_statement(encoder):
    raised = (
        "Sun Co said it raised the price it charges contract barge customers for heating oil by 0.50 cent a gallon."
    )
    lowered = raised.replace("raised", "is decreasing")
    april_6 = (
        "Certificated cotton stocks as of April 6 were reported at 35,082 bales, down 336 bales from the day before."
    )
    april_8 = (
        "Certificated cotton stocks as of April 8 were reported at 34,661 bales, down 421 bales from the day before."
    )
    reworded = raised.replace("it raised", "it has raised")
    texts = [raised, lowered, april_6, april_8, reworded]
    claims = dict(zip(texts, (claim(t, v) for t, v in zip(texts, encoder.encode(texts)))))
    assert not same_statement(claims[raised], claims[lowered])
    assert not same_statement(claims[april_6], claims[april_8])
    assert same_statement(claims[raised], claims[reworded])


def test_a_fairly_close_paraphrase_is_one_statement_but_a_shared_subject_is_not(seed_assistant):
    # Cosine 0.61: "would not opt for any flexibility regarding our main concern on Ukraine's NATO membership" (TASS)
    # and "NATO remains inflexible regarding Ukraine's potential membership" (002) share words besides the topic.
    answer = seed_assistant.ask("What is Russia's main concern regarding NATO?")
    flexibility = next(s for s in answer.statements if "flexibility" in s.text)
    assert {answer.citations[n - 1].article_id for n in flexibility.citations} >= {TASS, SPUTNIK, REPORT_002}
    # Cosine 0.61 too, but all they share is "the collective West": 003's call on it to change its approach is
    # another claim than its "insane, unprecedented pressure".
    pressure = seed_assistant.ask("What pressure is the collective West putting on other countries?")
    assert IZVESTIYA not in {c.article_id for c in pressure.citations}


def test_the_four_versions_are_cited_as_one_statement_of_the_answer(seed_assistant):
    answer = seed_assistant.ask("Are there prerequisites for negotiations?")
    by_n = {c.n: c for c in answer.citations}
    first = answer.statements[0]
    assert [by_n[n].article_id for n in first.citations] == [SPUTNIK, REPORT_002, TASS, BLOOMBERG]
    assert first.independent_sources == 4 and first.speaker == "Dmitry Peskov"
    assert "no grounds to start talks" in by_n[first.citations[3]].excerpt  # outside the retrieved passages
    assert_exact_spans(answer)


def test_the_nato_summit_answer_groups_the_outlets_that_carry_a_statement(seed_assistant):
    answer = seed_assistant.ask("How did Peskov describe the results of the NATO summit?")
    by_n = {c.n: c for c in answer.citations}
    grouped = [s for s in answer.statements if BLOOMBERG in {by_n[n].article_id for n in s.citations}]
    talks = next(s for s in grouped if "no grounds to start talks" in s.text)
    carriers = {by_n[n].article_id for n in talks.citations}
    assert {BLOOMBERG, SPUTNIK, TASS} <= carriers
    assert {"Bloomberg", "Sputnik", "TASS"} <= set(talks.outlets) and talks.first_date == "2024-07-14"
    assert [v.n for v in talks.versions] == talks.citations
    assert_exact_spans(answer)


def test_speakers_are_named_people_with_he_and_the_spokesman_resolved():
    cases = [
        (REPORT_002, "“There are no prerequisites for negotiations yet.", "he stressed.", "Dmitry Peskov"),
        (TASS, '"[The results of the NATO summit]', "Peskov said.", "Dmitry Peskov"),
        ("003_55d34379ba40b207", "“We have heard a lot of statements", "the spokesman said.", "Dmitry Peskov"),
        (BLOOMBERG, "The Kremlin said it views", "war in Ukraine.", None),
    ]
    for article_id, opening, closing, person in cases:
        text = SEED_TEXT[article_id]
        start = text.index(opening)
        end = text.index(closing, start) + len(closing)
        assert speaker(text, start, end) == person, text[start:end]


def republished_tass() -> str:
    """Return the TASS seed as another site republishes it: new header and footer, a few words edited."""
    body = SEED_TEXT[TASS].split("/TASS/. ", 1)[1]
    body = body.replace("deep and sharp confrontation", "a deep and sharp confrontation").replace("insane", "crazy")
    return f"Kremlin sees no basis for talks\n\nBy our Moscow desk\n\n{body}\n\nShare this article\n"


def test_a_republished_copy_counts_as_one_independent_source(tmp_path, encoder):
    copy = republished_tass()
    assert same_source(SEED_TEXT[TASS], copy) and not same_source(SEED_TEXT[TASS], SEED_TEXT[SPUTNIK])
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for path in SEEDS.iterdir():
        (corpus / path.name).write_bytes(path.read_bytes())
    (corpus / "republished.txt").write_text(copy, encoding="utf-8")
    update_index([corpus], index_dir=tmp_path / "index", encoder=encoder, progress=False)
    answer = Assistant(tmp_path / "index", encoder=encoder).ask("What did Peskov say about the US election?")
    by_n = {c.n: c for c in answer.citations}
    both = [s for s in answer.statements if {TASS, "republished"} <= {by_n[n].article_id for n in s.citations}]
    assert both, answer.answer
    for statement in both:
        articles = {by_n[n].article_id for n in statement.citations}
        assert statement.independent_sources == len(articles) - 1  # the copy adds a version, not a source


@pytest.mark.parametrize(
    ("question", "compares"),
    [
        ("How did the outlets word Peskov's remarks on negotiations?", True),
        ("Compare how TASS and Bloomberg reported the US election", True),
        ("How did TASS and Sputnik describe the summit?", True),
        ("Are there prerequisites for negotiations?", False),
        ("How did Peskov describe the results of the NATO summit?", False),
    ],
)
def test_comparison_questions_are_recognised(question, compares):
    assert is_comparison(question) is compares


def test_a_comparison_sets_each_outlets_version_side_by_side(seed_assistant, seed_index, capsys):
    question = "How did the outlets word what Peskov said about the results of the NATO summit?"
    answer = seed_assistant.ask(question)
    by_n = {c.n: c for c in answer.citations}
    compared = [s for s in answer.statements if len(s.versions) >= 2]
    assert compared
    for statement in compared:
        for version in statement.versions:
            citation = by_n[version.n]
            assert version.label == citation.label
            assert all(citation.start <= a < b <= citation.end for a, b in version.differences)
        assert any(version.differences for version in statement.versions)
    printed = format_answer(answer)
    first = compared[0].versions[1]
    assert f"[{first.n}] {first.label}: " in printed and "*" in printed
    assert main(["ask", question, "--json", "--index-dir", str(seed_index)]) == 0
    record = json.loads(capsys.readouterr().out)
    versions = record["statements"][0]["versions"]
    assert versions and {"n", "label", "differences"} <= set(versions[0])


def test_synonyms_map_straight_to_their_term():
    """Topic terms merge each synonym once, after counting: no synonym may map to another synonym."""
    assert not set(_SAME_MEANING.values()) & set(_SAME_MEANING)
