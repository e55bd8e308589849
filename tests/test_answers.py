"""Answers: cited verbatim sentences for covered questions, corroboration across outlets, declines, follow-ups."""

from __future__ import annotations

import shutil

import bm25s
import numpy as np
import pytest

from assistant import retrieval
from assistant.answer import DECLINE
from assistant.conversation import Conversation
from assistant.retrieval import Filters, reciprocal_rank_fusion
from assistant.service import Assistant
from embeddings import store as index_store
from embeddings.indexer import update_index
from embeddings.passages import passage_document
from embeddings.terms import terms
from tests.conftest import BACKENDS, SEEDS, new_location

# Questions about the seeds, each with a string that the answer's cited excerpts must contain.
KNOWN = [
    ("What weapons will the US station in Germany?", "Tomahawk cruise missiles"),
    ("Who did Belousov call?", "Lloyd Austin"),
    ("How much Ukrainian territory does Russia control?", "nearly a fifth of Ukrainian territory"),
    ("What did Peskov say about China?", "China is a huge, powerful country"),
    ("Has Macron asked for a call with Putin?", "there were no (such) requests"),
    ("What does Article 5 of NATO's treaty say?", "an attack on one member as an attack on all"),
    ("Who posted the interview video on Telegram?", "Pavel Zarubin"),
    ("Who is mainly doing the work between Russia and the US?", "military diplomats"),
    ("When did Russian forces launch the invasion of Ukraine?", "February 24, 2022"),
    ("What did Stoltenberg tell Bloomberg TV?", "when the time is right"),
    ("How did Peskov describe the US missile deployment plan?", "highly provocative"),
    ("Where was the NATO summit held?", "Washington"),
    ("What should relations between countries be based on, according to Peskov?", "mutually beneficial"),
    ("When was the Peskov interview recorded?", "July 11"),
    ("Which countries does Peskov say are fighting against Russia?", "France, England and the USA"),
    ("What did Western countries do after Putin suspended the nuclear arms treaty?", "uncompromising condemnation"),
]
OFF_TOPIC = [
    "How do I bake sourdough bread?",
    "Who won the 2018 FIFA World Cup?",
    "How many moons does Jupiter have?",
    "What is the capital of Australia?",
    "How do I reset my router password?",
    "What is the best recipe for lasagna?",
    "Which team won the Super Bowl?",
    "What is the boiling point of water?",
    "How do vaccines work?",
    "What is the price of Bitcoin today?",
]
SEED_TEXT = {path.stem: path.read_bytes().decode("utf-8") for path in SEEDS.iterdir()}


@pytest.fixture(scope="module", params=BACKENDS)
def seed_assistant(request, seed_index, encoder, tmp_path_factory) -> Assistant:
    """Return an assistant over the seed articles on each backend in turn: every answer test runs on each."""
    if request.param == "local":
        return Assistant(seed_index, encoder=encoder)
    location = new_location(request.param, tmp_path_factory.mktemp("seeds"), request)
    update_index([SEEDS], index_dir=location, encoder=encoder, progress=False)
    return Assistant(location, encoder=encoder)


def assert_exact_spans(answer) -> None:
    for citation in answer.citations:
        assert SEED_TEXT[citation.article_id][citation.start : citation.end] == citation.excerpt
        assert 0 <= citation.passage_start < citation.passage_end <= len(SEED_TEXT[citation.article_id])
        assert citation.start < citation.passage_end and citation.end > citation.passage_start  # overlaps it


@pytest.mark.parametrize(("question", "gold"), KNOWN)
def test_known_questions_cite_the_answer(seed_assistant, question, gold):
    answer = seed_assistant.ask(question)
    assert not answer.abstained, answer.evidence
    assert 1 <= len({c.excerpt for c in answer.citations}) <= 3 * 5
    assert any(gold in c.excerpt for c in answer.citations), answer.answer
    assert_exact_spans(answer)
    for citation in answer.citations:  # each quoted excerpt appears verbatim, followed by its marker
        assert f"[{citation.n}]" in answer.answer


def test_tomahawk_question_cites_bloomberg_first(seed_assistant):
    answer = seed_assistant.ask("What weapons will the US station in Germany?")
    first = answer.citations[0]
    assert first.outlet == "Bloomberg" and first.article_id.startswith("004_") and "Tomahawk" in first.excerpt
    assert answer.answer.startswith(first.excerpt)


def test_a_statement_carried_by_several_outlets_is_said_once_and_cites_each(seed_assistant):
    answer = seed_assistant.ask("Are there prerequisites for negotiations?")
    carriers = [c for c in answer.citations if "no prerequisites for" in c.excerpt and "negotiations yet" in c.excerpt]
    assert len({c.article_id for c in carriers}) >= 2  # Sputnik and the 002 report both carry it
    assert answer.answer.count("prerequisites for") == 1  # quoted once ...
    assert "".join(f"[{c.n}]" for c in carriers) in answer.answer  # ... with every carrier's marker
    assert_exact_spans(answer)


def test_nato_summit_question_cites_several_outlets(seed_assistant):
    answer = seed_assistant.ask("How did Peskov describe the results of the NATO summit?")
    assert len({c.article_id for c in answer.citations}) >= 2
    assert_exact_spans(answer)


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_off_topic_questions_are_declined(seed_assistant, question):
    answer = seed_assistant.ask(question)
    assert answer.abstained and answer.answer == DECLINE and answer.citations == []


def test_follow_up_uses_the_earlier_question(seed_assistant):
    conversation = Conversation()
    first = seed_assistant.ask("Who did Belousov call?", history=conversation.questions)
    conversation.add("Who did Belousov call?")
    assert "Lloyd Austin" in first.citations[0].excerpt
    follow_up = seed_assistant.ask("Why did he call him?", history=conversation.questions)
    assert "Belousov" in follow_up.query and not follow_up.abstained
    assert "reducing the risk of possible escalation" in follow_up.citations[0].excerpt
    assert_exact_spans(follow_up)
    alone = seed_assistant.ask("Why did he call him?")
    assert not any("reducing the risk" in c.excerpt for c in alone.citations[:1])


def test_filters_restrict_the_sources(seed_assistant):
    only_tass = seed_assistant.ask("What did Peskov say about the US election?", filters=Filters(frozenset({"TASS"})))
    assert only_tass.citations and {c.outlet for c in only_tass.citations} == {"TASS"}
    dated = seed_assistant.ask("What did Peskov say about NATO?", filters=Filters(date_from="2024-07-01"))
    assert dated.citations and all(c.date and c.date >= "2024-07-01" for c in dated.citations)
    nothing = seed_assistant.ask("What did Peskov say about NATO?", filters=Filters(date_to="2000-01-01"))
    assert nothing.abstained


def gold_rank(store, rows, gold: str) -> int | None:
    for rank, row in enumerate(rows, start=1):
        if gold in store.passage_text(int(row)):
            return rank
    return None


def test_fusion_finds_at_least_what_each_search_finds(seed_assistant):
    retriever = seed_assistant.retriever
    total = retriever.store.passage_count
    ranks = {"dense": [], "lexical": [], "fused": []}
    for question, gold in KNOWN:
        _, dense = retriever.dense(retriever.encode_query(question), k=total)
        lexical = retriever.lexical(terms(question), k=total)
        fused = [hit.row for hit in retriever.search(question, k=total)]  # dense, BM25 and sentence ranks
        ranks["dense"].append(gold_rank(retriever.store, dense, gold))
        ranks["lexical"].append(gold_rank(retriever.store, lexical, gold))
        ranks["fused"].append(gold_rank(retriever.store, fused, gold))
    recall = {name: np.mean([r is not None and r <= 3 for r in found]) for name, found in ranks.items()}
    print(f"passage recall@3 on {len(KNOWN)} seed questions: {recall}")
    assert recall["fused"] >= max(recall["dense"], recall["lexical"])
    # Brute force: reciprocal rank fusion scores are sums of 1/(60 + rank).
    fused = reciprocal_rank_fusion([np.array([4, 7]), np.array([7, 9])])
    assert fused == pytest.approx({4: 1 / 61, 7: 1 / 62 + 1 / 61, 9: 1 / 62})


@pytest.mark.parametrize("filters", [None, Filters(frozenset({"TASS", "Bloomberg"}))], ids=["all", "outlets"])
def test_search_adds_the_sentence_ranking_to_the_fusion_of_dense_and_bm25_made_by_the_index(
    seed_assistant, encoder, filters, monkeypatch
):
    """The index fuses dense and BM25 (Milvus in the engine); with the sentence ranking added, the scores and their
    order are those of reciprocal rank fusion of the three rankings, each searched alone (the fusion before Milvus)."""
    store = seed_assistant.store
    retriever = retrieval.Retriever(store, encoder, candidates=5)  # 5 of 18 passages: the two rankings differ
    for exhaustive in (index_store.EXHAUSTIVE_SENTENCES, 0):  # 0: local sentence search only among the candidates
        monkeypatch.setattr(index_store, "EXHAUSTIVE_SENTENCES", exhaustive)
        for question, _ in KNOWN:
            vector = retriever.encode_query(question)
            dense_scores, dense = store.dense(vector, k=5, filters=filters)
            lexical = store.lexical(terms(question), k=5, filters=filters)[1]
            candidates = np.concatenate([dense, lexical])
            sentences = store.sentence_dense(vector, k=5, filters=filters, candidates=candidates)
            expected = reciprocal_rank_fusion([dense, lexical, sentences])
            hits = retriever.search(question, k=8, filters=filters, query_vector=vector)
            best = sorted(expected.values(), reverse=True)[:8]
            assert [hit.score for hit in hits] == pytest.approx(best, rel=1e-6)  # best first, none left out
            dense_by_row = dict(zip(dense.tolist(), dense_scores.tolist()))
            for hit in hits:
                assert hit.score == pytest.approx(expected[hit.row], rel=1e-6)
                exact = dense_by_row.get(hit.row, store.dense_scores(vector, [hit.row])[0])
                assert hit.dense_score == pytest.approx(exact, abs=1e-5)
    with pytest.raises(ValueError, match="dense and BM25 weights must be equal"):
        retrieval.Retriever(store, encoder, weights=(1.0, 0.5, 1.0))


def test_lexical_search_returns_the_best_bm25s_scores_best_first(seed_assistant):
    retriever = seed_assistant.retriever
    store = retriever.store
    table = store.passage_table(np.arange(store.passage_count))
    sentences = store.sentence_table(np.arange(store.sentence_rows))[:, 1:].tolist()
    documents = [passage_document(store.article(a), sentences[f:t]) for a, _, _, f, t in table.tolist()]
    bm25 = bm25s.BM25()  # the reference: bm25s's own scoring over the same passage terms
    bm25.index([terms(document) for document in documents], show_progress=False)
    tass = np.array([store.article(a).outlet == "TASS" for a in table[:, 0]])
    for question, _ in KNOWN:
        query = terms(question)
        full = bm25.get_scores([t for t in query if t in bm25.vocab_dict])
        for filters in (None, Filters(frozenset({"TASS"}))):
            expected = full if filters is None else np.where(tass, full, 0)
            rows = retriever.lexical(query, k=5, filters=filters)
            assert len(rows) == min(5, int((expected > 0).sum())) and (expected[rows] > 0).all()
            if not len(rows):
                continue
            assert (np.diff(expected[rows]) <= 1e-6).all()  # best first
            assert expected[rows].min() >= np.sort(expected)[-len(rows)] - 1e-6  # no better passage left out
            scores = store.lexical(query, k=5, filters=filters)[0]
            np.testing.assert_allclose(scores, expected[rows], rtol=1e-5)  # the same BM25 scores as bm25s


def test_follow_up_about_a_person_keeps_its_own_focus(seed_assistant):
    history = ["How did Peskov describe the results of the NATO summit?"]
    answer = seed_assistant.ask("What did he say about Macron?", history=history)
    # the names in the question before, and the full names the answer to it quoted first
    assert answer.query.startswith("What did he say about Macron? Peskov NATO ") and "Dmitry Peskov" in answer.query
    assert "Macron" in answer.citations[0].excerpt
    topic = seed_assistant.ask("Why was it founded?", history=["When was NATO founded?"])
    assert topic.query == "When was NATO founded? Why was it founded?"
    assert "to counter the Soviet Union" in topic.citations[0].excerpt


@pytest.mark.parametrize("filters", [None, Filters(frozenset({"TASS", "Sputnik"}))])
def test_small_corpus_sentence_search_ranks_every_admitted_passage_by_its_best_sentence(seed_index, encoder, filters):
    store = index_store.load(seed_index, model_fingerprint=encoder.fingerprint)
    assert store.exhaustive
    vector = encoder.encode(["What weapons will the US station in Germany?"])[0]
    found = store.sentence_dense(vector, k=store.passage_count, filters=filters)
    # Brute force: each admitted passage scored by the best sentence it holds first (float16 values, as stored).
    table = store.passage_table(np.arange(store.passage_count))
    vectors = store.sentence_vectors(np.arange(store.sentence_rows))
    owner = {}
    for row, (article, _, _, first, stop) in enumerate(table.tolist()):
        if filters is None or filters.admits(store.article(article)):
            for sentence in range(first, stop):
                owner.setdefault(sentence, row)
    best = {}
    for sentence, row in owner.items():
        best[row] = max(best.get(row, -1.0), float(vectors[sentence] @ vector))
    assert found.tolist() == sorted(best, key=lambda row: -best[row])
    assert 0 < len(found) <= store.passage_count


def test_large_corpus_sentence_search_ranks_candidates_by_their_best_sentence(
    seed_index, encoder, tmp_path, monkeypatch
):
    shutil.copytree(seed_index, tmp_path / "index")
    store = index_store.load(tmp_path / "index", model_fingerprint=encoder.fingerprint)
    monkeypatch.setattr(index_store, "EXHAUSTIVE_SENTENCES", 0)  # as if the corpus had more sentences than that
    retriever = retrieval.Retriever(store, encoder)
    vector = retriever.encode_query("What weapons will the US station in Germany?")
    candidates = np.arange(0, store.passage_count, 2)
    on_disk = np.load(tmp_path / "index" / store.segments[0].name / "sentences.f16.npy").astype(np.float32)
    # A later index run deletes old segments: questions to a store loaded before must still be answered.
    shutil.rmtree(tmp_path / "index" / store.segments[0].name)
    bounded = retriever.sentence_dense(vector, k=len(candidates), candidates=candidates)
    # Brute force: each candidate passage scored by its best sentence, from the float16 vectors on disk.
    best = {
        int(row): max(on_disk[first:stop] @ vector)
        for row, (first, stop) in zip(candidates, store.passage_table(candidates)[:, 3:5])
    }
    assert bounded.tolist() == sorted(best, key=lambda row: -best[row])
