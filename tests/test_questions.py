"""Questions read for what they name: outlets select outlets, dates select articles by date, events date a time."""

from __future__ import annotations

import pytest

from assistant.answer import answer_shape, has_shape
from assistant.question import read_question
from assistant.retrieval import Filters
from tests.test_answers import assert_exact_spans

OUTLETS = ["TASS", "Sputnik", "Bloomberg", "Reuters", "Time"]
LATEST = "2024-07-14"


@pytest.mark.parametrize(
    ("question", "outlets", "query"),
    [
        ("Compare what TASS and Bloomberg said about the US election", {"TASS", "Bloomberg"},
         "what said about the US election"),
        ("How did TASS, Sputnik and Bloomberg word the Kremlin's reaction?", {"TASS", "Sputnik", "Bloomberg"},
         "How did word the Kremlin's reaction?"),
        ("What did Peskov say, according to tass?", {"TASS"}, "What did Peskov say?"),
        ("What was in Reuters' report on the vote?", {"Reuters"}, "What was in report on the vote?"),
        ("What did TASS's article say?", {"TASS"}, "What did article say?"),
        ("What did Peskov say at the time?", None, "What did Peskov say at the time?"),  # "time" is not Time
    ],
)  # fmt: skip
def test_outlets_named_in_a_question_are_read_and_left_out_of_the_query(question, outlets, query):
    reading = read_question(question, outlets=OUTLETS, latest=LATEST)
    assert reading.outlets == (frozenset(outlets) if outlets else None)
    assert reading.query == query


@pytest.mark.parametrize(
    ("question", "first", "last"),
    [
        ("What happened on July 14?", "2024-07-14", "2024-07-14"),
        ("What was reported on 14 July 2024?", "2024-07-14", "2024-07-14"),
        ("What was reported on 2024-07-14?", "2024-07-14", "2024-07-14"),
        ("What did Peskov say in July 2024?", "2024-07-01", "2024-07-31"),
        ("What did Peskov say after July 11?", "2024-07-12", None),
        ("What did Peskov say before July 14?", None, "2024-07-13"),
        ("What did Peskov say since July 11?", "2024-07-11", None),
        ("What was said between July 9 and July 11?", "2024-07-09", "2024-07-11"),
        ("What was said last week?", "2024-07-07", "2024-07-14"),
        ("What was said yesterday?", "2024-07-13", "2024-07-13"),
        ("What happened on December 30?", "2023-12-30", "2023-12-30"),  # later than the corpus: the year before
        ("What did the Kremlin say in May?", "2024-05-01", "2024-05-31"),
    ],
)
def test_dates_named_in_a_question_are_read_relative_to_the_corpus(question, first, last):
    reading = read_question(question, outlets=OUTLETS, latest=LATEST)
    assert (reading.dates.first, reading.dates.last) == (first, last)


def test_words_that_look_like_dates_are_not_read_as_dates():
    for question in ("May I ask what Peskov said?", "How many of the 2,850 jobs go?", "Why did he call him?"):
        assert read_question(question, outlets=OUTLETS, latest=LATEST).dates is None


def test_a_question_naming_outlets_is_answered_from_each_of_them(seed_assistant):
    answer = seed_assistant.ask("Compare what TASS and Bloomberg said about the US election")
    assert not answer.abstained, answer.evidence  # declined with probability 0.033 before questions were read
    assert "TASS" not in answer.query and "Compare" not in answer.query
    assert {c.outlet for c in answer.citations} == {"TASS", "Bloomberg"}
    assert any("election" in c.excerpt for c in answer.citations if c.outlet == "Bloomberg")
    assert any("election" in c.excerpt for c in answer.citations if c.outlet == "TASS")
    assert answer.evidence["reading"]["outlets"] == ["Bloomberg", "TASS"]
    assert_exact_spans(answer)


def test_outlets_in_the_question_narrow_the_filters_given():
    reading = read_question("What did TASS and Sputnik say?", outlets=OUTLETS, latest=LATEST)
    assert reading.filters(Filters(frozenset({"TASS", "Bloomberg"}))).outlets == {"TASS"}
    assert reading.filters(None).outlets == {"TASS", "Sputnik"}


@pytest.mark.parametrize("question", ["What happened on July 14?", "What was reported on July 14?"])
def test_a_question_naming_only_a_date_quotes_the_leads_of_that_days_articles(seed_assistant, question):
    answer = seed_assistant.ask(question)
    assert not answer.abstained, answer.evidence
    assert {c.article_id[:3] for c in answer.citations} == {"000", "001"}  # TASS and Sputnik, dated 2024-07-14
    assert all(c.date == "2024-07-14" for c in answer.citations)
    assert_exact_spans(answer)


def test_a_date_no_article_has_is_left_in_the_query(seed_assistant):
    answer = seed_assistant.ask("What happened on February 24, 2022?")
    assert answer.evidence["reading"]["date_from"] is None and "February 24, 2022" in answer.query
    assert any("February 24, 2022" in c.excerpt for c in answer.citations)  # the date in the 002 report's text


def test_after_an_event_is_answered_from_articles_dated_after_it_in_date_order(seed_assistant):
    answer = seed_assistant.ask("What did the Kremlin say after the summit?")
    reading = answer.evidence["reading"]
    assert reading["event"] == "the summit" and reading["date_from"] == "2024-07-12"  # the summit: July 9-11
    assert reading["time_order"] and not answer.abstained
    assert answer.citations and all(c.date and c.date >= "2024-07-12" for c in answer.citations)
    dates = [s.first_date for s in answer.statements]
    assert dates == sorted(dates)
    assert_exact_spans(answer)


def test_an_event_no_article_dates_filters_nothing(seed_assistant):
    answer = seed_assistant.ask("What did Western countries do after Putin suspended the nuclear arms treaty?")
    assert answer.evidence["reading"]["date_from"] is None
    assert any("uncompromising condemnation" in c.excerpt for c in answer.citations)  # in the undated 003 article


@pytest.mark.parametrize(
    ("question", "asks"),
    [("Why did he say that?", "reason"), ("What caused it?", "reason"),
     ("How did the Kremlin react to that?", "reaction"), ("What is it called?", "name"),
     ("Who did Belousov call?", None), ("How did Peskov describe the summit?", None)],
)  # fmt: skip
def test_what_a_question_asks_for_is_read(question, asks):
    assert read_question(question, outlets=OUTLETS, latest=LATEST).asks == asks


def test_off_topic_follow_ups_are_still_declined(seed_assistant):
    history = ["How did Peskov describe the results of the NATO summit?"]
    for question in (
        "How do I bake sourdough bread?",
        "Who won the 2018 FIFA World Cup?",
        "What is the capital of Australia?",
    ):
        assert seed_assistant.ask(question, history=history).abstained


def test_a_follow_up_asking_when_or_where_wants_a_time_or_a_place_not_a_verb_or_a_month():
    when = "And when did he leave?"
    times = answer_shape(when, fine=True)
    assert has_shape(times, "He left the club in March 1997.", when)
    assert not has_shape(times, "Russia may respond in kind, and protesters march on.", when)
    where = "Where did they meet?"
    places = answer_shape(where, fine=True)
    assert has_shape(places, "They met in Geneva.", where)
    assert not has_shape(places, "They met in March.", where)
