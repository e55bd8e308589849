"""Evaluation: metric arithmetic against a hand count of the same run, question files, and the SQuAD adapter."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from assistant.cli import main
from assistant.evaluate import (
    Question,
    contains_answer,
    evaluate,
    grouping_metrics,
    metrics,
    read_pairs,
    read_questions,
    sample,
    score,
)
from assistant.squad import read_squad
from assistant.statements import Grouping

BLOOMBERG, TASS, IZVESTIYA = "004_aa9b3008a461e9e9", "000_a59ac2337c62729e", "003_55d34379ba40b207"

QUESTIONS = [
    {"question": "Who did Defense Minister Andrey Belousov call?", "sources": [BLOOMBERG], "answers": ["Lloyd Austin"]},
    {"question": "When was the Peskov interview recorded?", "sources": [TASS], "answers": ["July 11"]},
    {"question": "What did they discuss?", "history": ["Who did Andrey Belousov call?"], "sources": [BLOOMBERG],
     "answers": ["reducing the risk of possible escalation"]},
    {"question": "Which newspaper published the interview?", "sources": [IZVESTIYA], "answers": ["no such words"]},
    {"question": "How many moons does Jupiter have?", "unanswerable": True},
]  # fmt: skip


@pytest.fixture(scope="module")
def question_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("questions") / "five.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8")
    return path


def test_metrics_match_a_hand_count_of_the_same_run(seed_assistant, question_file):
    questions = read_questions(question_file)
    report = evaluate(seed_assistant, questions)
    answers = [seed_assistant.ask(q.question, history=list(q.history)) for q in questions]
    answerable = [(q, a, o) for q, a, o in zip(questions, answers, report.outcomes) if not q.unanswerable]

    def rank(outcome, sources):
        return next((i for i, article in enumerate(outcome.retrieved, start=1) if article in sources), None)

    ranks = [rank(o, q.sources) for q, _, o in answerable]
    m = report.metrics
    assert (m["questions"], m["answerable"], m["unanswerable"]) == (5, 4, 1)
    assert m["source recall@1"] == sum(r == 1 for r in ranks) / 4
    assert m["source recall@5"] == sum(r is not None and r <= 5 for r in ranks) / 4
    assert m["MRR"] == pytest.approx(sum(1 / r for r in ranks if r) / 4)
    in_citations = [any(contains_answer(c.excerpt, q.answers) for c in a.citations) for q, a, _ in answerable]
    assert m["answer in citations"] == sum(in_citations) / 4
    in_first = [bool(a.citations) and contains_answer(a.citations[0].excerpt, q.answers) for q, a, _ in answerable]
    assert m["answer in first citation"] == sum(in_first) / 4
    declined = [q.unanswerable for q, a in zip(questions, answers) if a.abstained]
    assert m["abstention precision"] == (sum(declined) / len(declined) if declined else None)
    assert m["abstention recall"] == float(answers[-1].abstained)
    answered = [a for a in answers if not a.abstained]
    assert m["mean citations per answer"] == pytest.approx(sum(len(a.citations) for a in answered) / len(answered))
    assert m["questions/s"] > 0
    follow_ups = [(q, a) for q, a, _ in answerable if q.history]
    cited_fact = [any(c.article_id in q.sources and contains_answer(c.excerpt, q.answers) for c in a.citations)
                  for q, a in follow_ups]  # fmt: skip
    assert len(follow_ups) == 1 and m["follow-ups citing the asked-for fact"] == sum(cited_fact) / len(follow_ups)
    assert m["clipped quotations"] == 0 and m["quoted datelines, credits or headlines"] == 0
    # The gold string of the fourth question is nowhere in the articles: it must be listed as a failure.
    failed = {f["question"]: f["problems"] for f in report.failures()}
    assert "no answer string in the cited excerpts" in failed["Which newspaper published the interview?"]


def test_excerpts_clipping_a_quotation_or_quoting_a_dateline_are_counted(seed_assistant):
    question = Question("How did Peskov describe the results of the NATO summit?", sources=(TASS,), answers=("x",))
    answer = seed_assistant.ask(question.question)
    articles = seed_assistant.store.article_by_id
    text = articles[TASS].text
    opening = text.index('"[The results of the NATO summit]')
    clipped = (opening, text.index("for us.", opening) + len("for us."))  # its quotation runs three more sentences
    dateline = (text.index("MOSCOW, July 14. /TASS/."), text.index(" so far,"))
    excerpts = [
        dataclasses.replace(answer.citations[0], article_id=TASS, start=a, end=b, excerpt=text[a:b])
        for a, b in (clipped, dateline)
    ]
    bad = score(question, dataclasses.replace(answer, citations=excerpts), [], articles)
    good = score(question, answer, [], articles)
    assert (bad.clipped, bad.outside_content) == (1, 1) and (good.clipped, good.outside_content) == (0, 0)
    m = metrics([good, bad, bad], seconds=1.0)
    assert (m["clipped quotations"], m["quoted datelines, credits or headlines"]) == (2, 2)


# Identical sentences are always one statement, and sentences on unrelated subjects never are; each split labels
# some of each rightly and some wrongly, so its precision and recall are known from the labels alone.
SAME_WORDS = [
    "The central bank raised its main interest rate by half a point on Tuesday.",
    "Peskov said there are no prerequisites for negotiations yet.",
    "The striking miners rejected the company's latest wage offer.",
]
UNRELATED = [
    ("The blue whale is the largest animal known to have lived.", "Quarterly profits at the media group jumped."),
    ("Saturn's rings are made mostly of ice.", "The football club sacked its manager after five defeats."),
]
TINY_SPLITS = {
    # split: (identical pairs labelled same, identical labelled not same, unrelated labelled same, unrelated not)
    "one": (2, 1, 2, 0),
    "two": (3, 0, 1, 1),
}


def tiny_pairs() -> list[dict]:
    pairs = []
    for split, (same_right, same_wrong, other_wrong, other_right) in TINY_SPLITS.items():
        identical = [(t, t) for t in SAME_WORDS]
        labelled = [(*identical[i], True) for i in range(same_right)] + [
            (*identical[i], False) for i in range(same_wrong)
        ]
        labelled += [(*UNRELATED[i], True) for i in range(other_wrong)] + [
            (*UNRELATED[i], False) for i in range(other_right)
        ]
        pairs += [{"split": split, "same": same, "a": a, "b": b} for a, b, same in labelled]
    return pairs


def expected(split: str) -> tuple[float, float]:
    same_right, same_wrong, other_wrong, _ = TINY_SPLITS[split]
    return same_right / (same_right + same_wrong), same_right / (same_right + other_wrong)


def test_grouping_precision_and_recall_of_each_split_follow_from_the_labels(tmp_path, encoder):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in tiny_pairs()), encoding="utf-8")
    m = grouping_metrics(read_pairs(path), encoder)
    for split in TINY_SPLITS:
        precision, recall = expected(split)
        assert m[f"grouping precision ({split})"] == pytest.approx(precision)
        assert m[f"grouping recall ({split})"] == pytest.approx(recall)


def test_cli_prints_the_table_and_writes_the_report(seed_index, question_file, tmp_path, capsys):
    report_file, pairs = tmp_path / "report.json", tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(p) + "\n" for p in tiny_pairs()), encoding="utf-8")
    argv = ["eval", str(question_file), "--index-dir", str(seed_index), "--report", str(report_file)]
    assert main([*argv, "--grouping", str(pairs)]) == 0
    printed = capsys.readouterr().out
    assert "| answer in citations |" in printed and "FAIL 'Which newspaper published the interview?'" in printed
    for row in ("follow-ups citing the asked-for fact", "clipped quotations", "quoted datelines, credits or headlines"):
        assert f"| {row} |" in printed
    assert f"| grouping precision (one) | {expected('one')[0]:.3f} |" in printed
    assert f"| grouping recall (two) | {expected('two')[1]:.3f} |" in printed
    report = json.loads(report_file.read_text(encoding="utf-8"))
    assert report["metrics"]["questions"] == 5 and len(report["outcomes"]) == 5
    assert main(["eval", "--grouping", str(pairs)]) == 0  # grouping alone needs no index
    assert f"| grouping recall (one) | {expected('one')[1]:.3f} |" in capsys.readouterr().out
    assert any(f["question"] == "Which newspaper published the interview?" for f in report["failures"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 1: invalid JSON"),
        ('{"question": ""}', "non-empty string"),
        ('{"question": "Who?", "sources": ["a"]}', 'give "sources" and "answers"'),
        ('{"question": "Who?", "sources": "a", "answers": ["b"]}', "'sources' must be a list"),
        ('{"question": "Who?", "history": [1], "unanswerable": true}', "'history' must be a list"),
    ],
)
def test_bad_question_lines_are_refused_with_their_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_questions(path)


@pytest.mark.parametrize("line", ['{"a": "One.", "b": "Two."}', '{"a": "", "b": "Two.", "same": true}', "[1]"])
def test_bad_pair_lines_are_refused_with_their_line(tmp_path, line):
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 1: expected an object with strings"):
        read_pairs(path)


def test_answer_matching_ignores_case_spacing_and_quote_style():
    assert contains_answer("Peskov said it was “highly  provocative.”", ('"Highly provocative',))
    assert not contains_answer("Peskov said it was provocative.", ("highly provocative",))


def test_sample_is_spread_evenly_and_deterministic():
    questions = [Question(str(i), sources=("a",), answers=("b",)) for i in range(10)]
    assert [q.question for q in sample(questions, 4)] == ["0", "2", "5", "7"]
    assert sample(questions, None) == questions == sample(questions, 50)


SQUAD = {
    "version": "v2.0",
    "data": [
        {"title": "Blue_Whale", "paragraphs": [
            {"context": "The blue whale is the largest animal known to have lived. It can reach 30 metres in length.",
             "qas": [{"id": "q1", "question": "How long can a blue whale be?", "is_impossible": False,
                      "answers": [{"text": "30 metres", "answer_start": 71},
                                  {"text": "30 metres", "answer_start": 71}]},
                     {"id": "q2", "question": "How long can a red whale be?", "is_impossible": True, "answers": [],
                      "plausible_answers": [{"text": "30 metres", "answer_start": 71}]}]},
            {"context": "Blue whales eat krill almost exclusively. An adult eats up to four tonnes of krill a day.",
             "qas": [{"id": "q3", "question": "What do blue whales eat?", "is_impossible": False,
                      "answers": [{"text": "krill", "answer_start": 16}]}]},
        ]},
        {"title": "Saturn", "paragraphs": [
            {"context": "Saturn is the sixth planet from the Sun. Its rings are made mostly of ice.",
             "qas": [{"id": "q4", "question": "What are Saturn's rings made of?", "is_impossible": False,
                      "answers": [{"text": "mostly of ice", "answer_start": 60},
                                  {"text": "ice", "answer_start": 70}]}]},
        ]},
    ],
}  # fmt: skip


def test_squad_paragraphs_become_articles_and_answerable_questions_become_questions(tmp_path):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(SQUAD), encoding="utf-8")
    articles, questions = read_squad(path)
    assert [(a["id"], a["title"]) for a in articles] == [
        ("Blue_Whale-001", "Blue Whale"),
        ("Blue_Whale-002", "Blue Whale"),
        ("Saturn-001", "Saturn"),
    ]
    assert articles[2]["text"] == SQUAD["data"][1]["paragraphs"][0]["context"]
    assert questions == [
        Question("How long can a blue whale be?", sources=("Blue_Whale-001",), answers=("30 metres",)),
        Question("What do blue whales eat?", sources=("Blue_Whale-002",), answers=("krill",)),
        Question("What are Saturn's rings made of?", sources=("Saturn-001",), answers=("mostly of ice", "ice")),
    ]


def test_squad_eval_indexes_the_paragraphs_and_reports(tmp_path, capsys):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(SQUAD), encoding="utf-8")
    index_dir, report_file = tmp_path / "index", tmp_path / "report.json"
    argv = ["eval", "--squad", str(path), "--index-dir", str(index_dir), "--report", str(report_file)]
    assert main(argv) == 0
    metrics = json.loads(report_file.read_text(encoding="utf-8"))["metrics"]
    # Three paragraphs, each its own passage: every answer is among the top five passages.
    assert (metrics["questions"], metrics["answer in top-5 passages"], metrics["source recall@5"]) == (3, 1.0, 1.0)
    assert "Indexed 3 articles" in capsys.readouterr().out
    assert main(argv) == 0  # the second run reuses the index
    assert "Nothing changed" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"not a SQuAD 2\.0 file"):
        read_squad(report_file)


def test_the_grouping_search_is_cross_validated_with_settings_chosen_without_each_fold():
    from eval.grouping import cross_validated

    same = np.array([True, False] * 5)
    folds = np.repeat(np.arange(5), 2)
    # A is right everywhere but in fold 0, where it also groups the other pair; B misses one pair, in fold 1.
    loose, strict = Grouping(close_vector=0.6), Grouping()
    decided = {loose: same | (folds == 0), strict: same & (np.arange(10) != 2)}
    # On all folds the search would choose B (precision 1.0, recall 0.8). Without fold 0 it chooses A, so fold 0
    # groups a wrong pair; without fold 1 it chooses B, which misses that fold's pair; elsewhere B is right.
    assert cross_validated(decided, same, folds) == pytest.approx((0.8, 0.8))
