"""Declines: unrelated articles that share a question's words do not make it answered; the decline model's fit."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from assistant.answer import DECLINE_MODEL, AnswerSettings
from assistant.decline import FEATURES, DeclineModel
from assistant.service import Assistant
from embeddings.indexer import update_index
from eval.calibrate_decline import fit_logistic
from tests.conftest import SEEDS

# Articles that share words with off-topic questions without answering them (the failures the issue describes).
DISTRACTORS = {
    "jupiter-research": "Jupiter Research's index is calculated using 40 different variables across net users, digital "
    "TV adoption, wireless and mobile, online activity, and digital devices. Recent research by Jupiter suggested that "
    "people would prefer a device that was dedicated to music.",
    "world-cup-1994": "In their last meeting, the Irish beat Italy in the 1994 World Cup finals. Fifa president Sepp "
    "Blatter hopes the team will be named the best of the year on Monday.",
    "australia-mining": "Xstrata is a global mining giant with operations in Australia, South Africa, Spain and the "
    "UK. "
    "More than 90% of the airline's staff are based in Australia.",
}


@pytest.fixture(scope="module")
def distracted(tmp_path_factory, encoder) -> Assistant:
    """Return an assistant over the seeds plus articles that share words with off-topic questions."""
    folder = tmp_path_factory.mktemp("distracted")
    corpus = folder / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in DISTRACTORS.items()))
    update_index([SEEDS, corpus], index_dir=folder / "index", encoder=encoder)
    return Assistant(folder / "index", encoder=encoder)


OFF_TOPIC = [
    "How many moons does Jupiter have?",
    "Who won the 2018 FIFA World Cup?",
    "What is the capital of Australia?",
]
ON_TOPIC = [
    "Who did Defense Minister Andrey Belousov call?",
    "What did Peskov say about China?",
    "When was NATO founded?",
]


def test_shared_words_give_less_evidence_than_an_answer(distracted):
    off_topic = [distracted.ask(q).evidence["answer_probability"] for q in OFF_TOPIC]
    on_topic = [distracted.ask(q) for q in ON_TOPIC]
    assert all(not answer.abstained for answer in on_topic)
    assert max(off_topic) < min(answer.evidence["answer_probability"] for answer in on_topic)


def test_a_year_the_articles_lack_counts_against_an_answer(distracted):
    features = distracted.ask("Who won the 2018 FIFA World Cup?", settings=AnswerSettings(min_answer_probability=0.0))
    assert features.evidence["features"]["numbers_found"] == 0.0
    assert distracted.ask("Who won the 1994 World Cup?").evidence["features"]["numbers_found"] == 1.0


def test_the_calibrated_model_answers_what_the_seeds_cover(distracted):
    answer = distracted.ask("Who did Defense Minister Andrey Belousov call?")
    assert not answer.abstained and "Lloyd Austin" in " ".join(c.excerpt for c in answer.citations)
    assert set(answer.evidence["features"]) == set(FEATURES)
    assert answer.evidence["answer_probability"] >= DECLINE_MODEL.threshold


def test_a_zero_threshold_never_declines(distracted):
    answer = distracted.ask("How many moons does Jupiter have?", settings=AnswerSettings(min_answer_probability=0.0))
    assert not answer.abstained and answer.citations


def test_model_probability_is_the_logistic_of_its_weighted_features(tmp_path):
    model = DeclineModel({name: 0.5 * i for i, name in enumerate(FEATURES)}, -2.0, 0.3)
    model.save(tmp_path / "model.json", calibration={"note": "test"})
    loaded = DeclineModel.load(tmp_path / "model.json")
    features = {name: 0.1 * i for i, name in enumerate(FEATURES)}
    z = -2.0 + sum(0.5 * i * 0.1 * i for i in range(len(FEATURES)))
    assert loaded == model and math.isclose(loaded.probability(features), 1 / (1 + math.exp(-z)))


def test_fit_logistic_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    y = (x @ [1.5, -2.0, 0.5, 0.0] + 0.3 + rng.normal(size=400) > 0).astype(float)
    weight = rng.uniform(0.5, 3.0, size=400)
    coefficients, bias = fit_logistic(x, y, weight)
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(x, y, sample_weight=weight)
    np.testing.assert_allclose(coefficients, reference.coef_[0], atol=1e-4)
    assert math.isclose(bias, reference.intercept_[0], abs_tol=1e-4)
