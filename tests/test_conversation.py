"""Follow-ups: they quote what they ask for, not the previous answer again; conversations bounded by the setting."""

from __future__ import annotations

import json

import pytest

from assistant.answer import answer_shape, has_shape
from assistant.cli import main
from assistant.conversation import Conversation, Turn, contextual_query, is_elliptical, is_follow_up, topic_chain
from assistant.question import asking_terms
from assistant.service import Assistant
from embeddings import settings
from embeddings.indexer import update_index
from tests.test_answers import assert_exact_spans

NATO = "How did Peskov describe the results of the NATO summit?"
REASON = ("main concern", "key concern", "Russia’s concerns")


def test_why_after_the_nato_question_cites_peskovs_reason_not_the_first_answer(seed_assistant):
    conversation = Conversation()
    first = seed_assistant.ask(NATO, history=conversation.turns)
    conversation.add(NATO, first)
    follow_up = seed_assistant.ask("Why did he say that?", history=conversation.turns)
    assert not follow_up.abstained, follow_up.evidence
    first_spans = {(c.article_id, c.start, c.end) for c in first.citations}
    assert not first_spans & {(c.article_id, c.start, c.end) for c in follow_up.citations}  # nothing re-quoted
    reasons = [c for c in follow_up.citations if any(words in c.excerpt for words in REASON)]
    assert {c.article_id[:3] for c in reasons} & {"000", "002"}  # TASS or the 002 report carry the reason
    assert any(words in follow_up.statements[0].text for words in REASON)  # and it is said first
    assert_exact_spans(follow_up)


def test_a_history_of_bare_questions_answers_the_earlier_question_again(seed_assistant):
    with_turns = seed_assistant.ask("Why did he say that?", history=[Turn.of(NATO, seed_assistant.ask(NATO))])
    with_questions = seed_assistant.ask("Why did he say that?", history=[NATO])
    assert with_questions.to_json() == with_turns.to_json()


def test_a_follow_up_that_asks_again_quotes_the_earlier_answer(seed_assistant):
    china = "What did Peskov say about China?"
    again = seed_assistant.ask("Quote that again, please.", history=[Turn.of(china, seed_assistant.ask(china))])
    assert any("China is a huge, powerful country" in c.excerpt for c in again.citations)


def test_a_follow_up_whose_fact_is_in_the_earlier_sentence_still_quotes_it(seed_assistant):
    question = "Who did Defense Minister Andrey Belousov call?"
    follow_up = seed_assistant.ask("What did they discuss?", history=[Turn.of(question, seed_assistant.ask(question))])
    assert any("reducing the risk of possible escalation" in c.excerpt for c in follow_up.citations)


def test_conversation_keeps_as_many_turns_as_the_setting(monkeypatch):
    assert Conversation().limit == settings.history_turns() == 30
    monkeypatch.setenv("ASSISTANT_HISTORY_TURNS", "2")
    conversation = Conversation()
    for question in ("one?", "two?", "three?"):
        conversation.add(question)
    assert conversation.questions == ["two?", "three?"] and conversation.turns[0] == Turn("two?")


def test_eval_of_a_conversation_file_reports_follow_ups_citing_the_fact(seed_index, tmp_path, capsys):
    seeds = "000_a59ac2337c62729e", "002_33777394e2f2ac98", "004_aa9b3008a461e9e9"
    cases = [
        {"id": "a", "split": "dev", "turns": [
            {"question": NATO, "sources": list(seeds), "answers": ["alarming", "threatening"]},
            {"question": "Why did he say that?", "sources": list(seeds), "answers": list(REASON)}]},
        {"id": "b", "split": "test", "turns": [
            {"question": "Who did Andrey Belousov call?", "sources": [seeds[2]], "answers": ["Austin"]},
            {"question": "What did they discuss?", "sources": [seeds[2]], "answers": ["no such words"]}]},
    ]  # fmt: skip
    path = tmp_path / "conversations.jsonl"
    path.write_text("".join(json.dumps(case) + "\n" for case in cases), encoding="utf-8")
    report = tmp_path / "report.json"
    assert main(["eval", str(path), "--index-dir", str(seed_index), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "| follow-ups citing the asked-for fact (dev) | 1.000 |" in out
    assert "| follow-ups citing the asked-for fact (test) | 0.000 |" in out
    assert "| follow-ups citing the asked-for fact (all) | 0.500 |" in out
    assert "FAIL 'What did they discuss?'" in out
    assert json.loads(report.read_text())["failures"][0]["conversation"] == "b"


HALE = (
    "Manager Alan Brooks has asked the league to punish striker Tom Hale for an incident involving defender Marco"
    " Ruiz.\n\nBrooks believes Hale deliberately caught Ruiz on the head with his knee during Sunday's match. Hale"
    " protested his innocence, and the referee ruled the collision accidental. Brooks was also upset by the visitors'"
    " overall discipline, saying they committed 24 fouls.\n"
)
PENALTY = (
    "A late refereeing decision sparked a row at Oakfield on Saturday.\n\nThe referee decided to award a penalty after"
    " a handball in the box. Fans booed when the referee decided the goal would stand. Oakfield's coach said the"
    " referee's decision cost his team the match.\n"
)


def test_a_follow_up_naming_nothing_new_stays_on_the_article_discussed(tmp_path, encoder):
    for name, text in {"hale": HALE, "penalty": PENALTY}.items():
        (tmp_path / "articles").mkdir(exist_ok=True)
        (tmp_path / "articles" / f"{name}.txt").write_text(text, encoding="utf-8")
    update_index([tmp_path / "articles"], index_dir=tmp_path / "index", encoder=encoder, progress=False)
    assistant = Assistant(tmp_path / "index", encoder=encoder)
    conversation = Conversation()
    question = "What does Alan Brooks want the league to do about Tom Hale?"
    conversation.add(question, assistant.ask(question))
    follow_up = assistant.ask("What did the referee decide?", history=conversation.turns)  # no pronoun
    first = follow_up.citations[follow_up.statements[0].citations[0] - 1]
    assert first.article_id == "hale" and "ruled the collision accidental" in first.excerpt


def test_a_person_pronoun_carries_the_names_the_last_answer_quoted():
    quoted = "Middlesbrough mayor Ray Mallon has been drafted in to boost the Yes campaign."
    query = contextual_query("What is he nicknamed?", ["Who was drafted in to boost the campaign?"], quoted=quoted)
    assert "Ray" in query and "Mallon" in query and "drafted" not in query


DRUG = (
    "Shares in Elan and Biogen Idec plunged on Monday after the two firms suspended sales of their new multiple"
    " sclerosis drug Tysabri.\n\nOn the New York Stock Exchange, shares in Elan lost 70% while its partner Biogen Idec"
    " shed 43%. Analysts had expected the drug to become a best seller for both companies. The firms said they would"
    " review the safety data with regulators before deciding what to do next.\n"
)
DESIGNER = (
    "Games designer Peter Molyneux has been made an OBE in the New Year Honours.\n\nMr Molyneux said he would never"
    " leave the computer games industry, where he has worked for almost 20 years. His career started at Bullfrog"
    " Studios, which produced the game Populous. He left Bullfrog in 1997 to set up Lionhead Studios. He said the"
    " honour had come completely out of the blue.\n"
)
STORE = (
    "The toy retailer will leave the high street after 40 years of trading.\n\nIts owners said shoppers who want to"
    " leave a review can still do so online. About 300 staff will leave the company when the last shops close.\n"
)


@pytest.fixture(scope="module")
def news_assistant(tmp_path_factory, encoder) -> Assistant:
    """Return an assistant over three short made-up news articles: a drug recall, a games designer, a shop closure."""
    folder = tmp_path_factory.mktemp("follow-up-news")
    (folder / "articles").mkdir()
    for name, text in {"drug": DRUG, "designer": DESIGNER, "store": STORE}.items():
        (folder / "articles" / f"{name}.txt").write_text(text, encoding="utf-8")
    update_index([folder / "articles"], index_dir=folder / "index", encoder=encoder, progress=False)
    return Assistant(folder / "index", encoder=encoder)


def _converse(assistant: Assistant, questions: list[str]):
    """Return the answer to the last of `questions`, each asked with the turns before it, as the chat does."""
    conversation = Conversation()
    for question in questions[:-1]:
        conversation.add(question, assistant.ask(question, history=conversation.turns))
    return assistant.ask(questions[-1], history=conversation.turns)


def test_an_elliptical_follow_up_asks_what_the_question_before_it_asked(news_assistant):
    questions = ["Why did Elan and Biogen Idec shares plunge?", "How much did Elan lose?", "And Biogen?"]
    answer = _converse(news_assistant, questions)  # Biogen is in the first question: only the asked kind is new
    assert any("43%" in c.excerpt for c in answer.citations), answer.answer


def test_when_did_he_leave_quotes_the_year_he_left(news_assistant):
    questions = ["Which games designer was made an OBE?", "Where did his career start?", "And when did he leave?"]
    answer = _converse(news_assistant, questions)  # "left" is "leave" in the past; "almost 20 years" is no time
    first = answer.citations[answer.statements[0].citations[0] - 1]
    assert first.article_id == "designer" and "1997" in first.excerpt, answer.answer


def test_a_chain_of_follow_ups_keeps_the_question_that_set_its_topic():
    history = ["Which company developed a phone chip?", "What is it called?", "When could it appear?"]
    assert topic_chain(history) == history
    assert topic_chain(["Who is Bruce Willis suing?", *history]) == history
    query = contextual_query("Who is its competition?", topic_chain(history))
    assert query.startswith("Which company developed a phone chip?")


def test_a_short_question_naming_nothing_follows_up():
    assert is_follow_up("Who came second?") and not is_follow_up("Who won the World Cup?")
    assert is_elliptical("And Biogen?") and is_elliptical("What about 2014?")
    assert not is_elliptical("And when did he leave?")


def test_who_else_reported_it_quotes_the_other_outlets_versions(seed_assistant):
    questions = ["What did Peskov say about prerequisites for negotiations?", "What did TASS say about it?"]
    answer = _converse(seed_assistant, [*questions, "Who else reported it?"])  # beyond TASS, which was asked before
    others = [c for c in answer.citations if c.article_id[:3] in ("001", "002") and "no prerequisites" in c.excerpt]
    assert others, answer.answer
    assert_exact_spans(answer)


def test_a_bare_why_asks_about_the_act_the_last_question_named(seed_assistant):
    questions = ["Who did Defense Minister Andrey Belousov call?", "When?", "Why?"]
    answer = _converse(seed_assistant, questions)  # "When?" names nothing: the call is what "Why?" asks about
    assert any("reducing the risk of possible escalation" in c.excerpt for c in answer.citations), answer.answer


CUP = (
    "Tottenham manager Martin Jol praised his players for their patience in a 3-0 FA Cup win over Nottingham"
    ' Forest.\n\nThe win, which included goals from Noe Pamarot and Mido, was not pretty to watch, Jol said. "We had'
    ' the initiative but it was not easy. Forest played with a lot of players behind the ball," the Dutchman said.'
    ' "If we defend in the Championship like we did we\'ll not get another point," Forest manager Gary Megson said.'
    ' Looking ahead to the quarter-final, Jol said: "Newcastle have got a very good side."\n'
)
LEAGUE = (
    "Liverpool lost 2-1 at home to Southampton in the Premiership on Saturday.\n\nRafael Benitez said his side scored"
    ' too few of their chances. Steven Gerrard scored an own goal after 79 minutes. "Before the game if you had said'
    ' the score would be 2-1 to them I would not have believed it," said Benitez.\n'
)
SCORE = "3-0"


@pytest.fixture(scope="module")
def cup_assistant(tmp_path_factory, encoder) -> Assistant:
    """Return an assistant over two made-up football reports: a cup win with its scorers, a league defeat."""
    folder = tmp_path_factory.mktemp("follow-up-cup")
    (folder / "articles").mkdir()
    for name, text in {"cup": CUP, "league": LEAGUE}.items():
        (folder / "articles" / f"{name}.txt").write_text(text, encoding="utf-8")
    update_index([folder / "articles"], index_dir=folder / "index", encoder=encoder, progress=False)
    return Assistant(folder / "index", encoder=encoder)


def test_the_words_asking_for_a_kind_of_answer_are_not_its_topic():
    assert {"year"} <= asking_terms("From which year?") and {"score"} <= asking_terms("What was the score?")
    assert has_shape(answer_shape("What was the score?"), "a 3-0 win", "What was the score?")


def test_what_was_the_score_quotes_the_score_even_if_the_last_answer_quoted_it(cup_assistant):
    questions = ["What did Martin Jol say about the FA Cup win over Nottingham Forest?", "What was the score?"]
    answer = _converse(cup_assistant, questions)  # "score" asks for a number: a sentence saying "score" is no answer
    first = answer.citations[answer.statements[0].citations[0] - 1]
    assert first.article_id == "cup" and SCORE in first.excerpt, answer.answer


def test_who_scored_is_not_answered_by_the_names_the_earlier_questions_hold(cup_assistant):
    questions = ["What did Martin Jol say about the FA Cup win over Nottingham Forest?", "What was the score?"]
    answer = _converse(cup_assistant, [*questions, "Who scored?"])  # "Forest", "Jol" were asked about already
    first = answer.citations[answer.statements[0].citations[0] - 1]
    assert first.article_id == "cup" and "Noe Pamarot and Mido" in first.excerpt, answer.answer


SHOW = (
    "Bill Conti is the musical director of the Oscars show, a job not for the faint-hearted.\n\nHe has done it 17"
    " times. Conducting the orchestra is the ultimate plate-spinning assignment, he says. Conti received an Oscar in"
    " 1983 for the original score of The Right Stuff.\n"
)
NOMINEES = (
    "The Aviator leads the Oscar field with 11 nominations.\n\nThe film's three other Oscar nominations are for"
    " costume, film editing and sound mixing. A total of 267 films are eligible for the best film Oscar but only five"
    " will be nominated. The most nominated film has won best picture 18 times out of the last 20 years.\n"
)


def test_he_two_answers_later_still_searches_for_the_person_the_first_answer_named(tmp_path, encoder):
    (tmp_path / "articles").mkdir()
    for name, text in {"show": SHOW, "nominees": NOMINEES}.items():
        (tmp_path / "articles" / f"{name}.txt").write_text(text, encoding="utf-8")
    update_index([tmp_path / "articles"], index_dir=tmp_path / "index", encoder=encoder, progress=False)
    questions = ["Who is the musical director of the Oscars show?", "How many times has he done it?"]
    answer = _converse(Assistant(tmp_path / "index", encoder=encoder), [*questions, "Which film won him an Oscar?"])
    assert "Bill Conti" in answer.query  # named by the first answer, not by the second ("He has done it 17 times")
    assert any("The Right Stuff" in c.excerpt for c in answer.citations if c.article_id == "show"), answer.answer
