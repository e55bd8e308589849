"""Timelines: the statements answering a question in date order, with outlet and date; undated sources apart."""

from __future__ import annotations

import json

import pytest

from assistant.cli import main
from assistant.timeline import in_time_order
from embeddings.indexer import update_index

# A dam's story told over four days by three outlets, and once by an undated report; written out of order.
ARTICLES = [
    {"id": "day3", "date": "2024-03-12", "outlet": "Reuters", "text":
        "Engineers said the Lornsby dam would reopen its spillway next week. The repairs to the Lornsby dam cost "
        "four million euros, the river authority said."},
    {"id": "day1", "date": "2024-03-10", "outlet": "AP", "text":
        "A crack appeared in the Lornsby dam on Sunday, and the river authority closed its spillway. Residents "
        "downstream were told to stay away from the river banks."},
    {"id": "undated", "text":
        "The Lornsby dam was built in 1962 and holds back the largest reservoir in the valley. Its spillway was "
        "last rebuilt in 1998."},
    {"id": "day2", "date": "2024-03-11", "outlet": "BBC News", "text":
        "Divers inspected the crack in the Lornsby dam on Monday and found it smaller than feared. The river "
        "authority said the Lornsby dam was safe."},
]  # fmt: skip


@pytest.fixture(scope="module")
def dam_index(tmp_path_factory, encoder):
    folder = tmp_path_factory.mktemp("dam")
    (folder / "dam.jsonl").write_text("".join(json.dumps(a) + "\n" for a in ARTICLES), encoding="utf-8")
    index_dir = folder / "index"
    update_index([folder / "dam.jsonl"], index_dir=index_dir, encoder=encoder, progress=False)
    return index_dir


def timeline_json(index_dir, question, capsys, *options) -> dict:
    assert main(["timeline", question, "--json", "--index-dir", str(index_dir), *options]) == 0
    return json.loads(capsys.readouterr().out)


def test_timeline_lists_statements_in_date_order_and_undated_sources_apart(dam_index, capsys):
    timeline = timeline_json(dam_index, "What happened to the Lornsby dam?", capsys)
    dates = [entry["date"] for entry in timeline["dated"]]
    assert dates == sorted(dates) and set(dates) == {"2024-03-10", "2024-03-11", "2024-03-12"}
    assert timeline["undated"] and all(entry["date"] is None for entry in timeline["undated"])
    by_n = {c["n"]: c for c in timeline["citations"]}
    for entry in timeline["dated"]:
        assert all(by_n[n]["date"] for n in entry["citations"]) and entry["sources"]
        assert min(by_n[n]["date"] for n in entry["citations"]) == entry["date"]
    for entry in timeline["undated"]:
        assert all(by_n[n]["article_id"] == "undated" for n in entry["citations"])
    numbers = [n for entry in timeline["dated"] + timeline["undated"] for n in entry["citations"]]
    assert numbers == list(range(1, len(timeline["citations"]) + 1))  # numbered in the order shown


def test_timeline_text_shows_each_date_with_outlets(dam_index, capsys):
    assert main(["timeline", "What happened to the Lornsby dam?", "--index-dir", str(dam_index)]) == 0
    out = capsys.readouterr().out
    assert out.index("2024-03-10") < out.index("2024-03-11") < out.index("2024-03-12") < out.index("Undated sources:")
    assert "  AP: A crack appeared in the Lornsby dam on Sunday" in out


def test_timeline_after_a_date_leaves_out_earlier_and_undated_articles(dam_index, capsys):
    timeline = timeline_json(dam_index, "What was said about the Lornsby dam after March 10?", capsys)
    assert timeline["reading"]["date_from"] == "2024-03-11"
    assert {entry["date"] for entry in timeline["dated"]} <= {"2024-03-11", "2024-03-12"} and not timeline["undated"]


def test_an_off_topic_timeline_is_declined(dam_index, capsys):
    timeline = timeline_json(dam_index, "How do I bake sourdough bread?", capsys)
    assert timeline["abstained"] and timeline["dated"] == timeline["undated"] == []


def test_time_order_keeps_each_statement_with_its_citations(seed_assistant):
    answer = seed_assistant.ask("What did Peskov say about NATO?")
    ordered = in_time_order(answer)
    dates = [s.first_date or "9999" for s in ordered.statements]
    assert dates == sorted(dates)
    excerpts = {s.text: [answer.citations[n - 1].excerpt for n in s.citations] for s in answer.statements}
    assert {s.text: [ordered.citations[n - 1].excerpt for n in s.citations] for s in ordered.statements} == excerpts
