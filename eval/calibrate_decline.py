"""Fit the decline model (assistant/decline_model.json) on the evidence of answerable and unanswerable questions.

Answerable: SQuAD questions over an index of their own paragraphs. Unanswerable: the same questions over a news index
that lacks those paragraphs, and the off-topic questions of eval/off-topic-dev.jsonl over it (weighted up: they are
few, but they are the kind users ask). The seed question set is left out: it tests the result. The threshold is the
answer probability that keeps `--keep` of the SQuAD questions whose citations hold the answer.

    assistant eval --squad ../shared/data/squad_v2_dev_cs224n/dev-v2.0.json --index-dir /tmp/squad   # builds the index
    assistant index seeds ../shared/data/bbc_news/bbc_news.jsonl /tmp/reuters3000.jsonl --index-dir /tmp/distractors
    python eval/calibrate_decline.py --squad ../shared/data/squad_v2_dev_cs224n/dev-v2.0.json \\
        --squad-index /tmp/squad --news-index /tmp/distractors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.answer import AnswerSettings  # noqa: E402
from assistant.decline import FEATURES, MODEL_FILE, DeclineModel  # noqa: E402
from assistant.evaluate import contains_answer, read_questions  # noqa: E402
from assistant.service import Assistant  # noqa: E402
from assistant.squad import read_squad  # noqa: E402

NEVER_DECLINE = AnswerSettings(min_answer_probability=0.0)


def features(assistant: Assistant, questions) -> tuple[np.ndarray, np.ndarray]:
    """Return the evidence features of each question that retrieved anything, and whether its citations answer it."""
    rows, answered = [], []
    for question in questions:
        answer = assistant.ask(question.question, history=list(question.history), settings=NEVER_DECLINE)
        if "features" not in answer.evidence:
            continue
        rows.append([answer.evidence["features"][name] for name in FEATURES])
        excerpts = " ".join(citation.excerpt for citation in answer.citations)
        answered.append(bool(question.answers) and contains_answer(excerpts, question.answers))
    return np.array(rows), np.array(answered)


def fit_logistic(x: np.ndarray, y: np.ndarray, weight: np.ndarray, *, l2: float = 1.0) -> tuple[np.ndarray, float]:
    """Return the coefficients and bias of an L2-penalized logistic regression, fitted by Newton's method."""
    design = np.hstack([x, np.ones((len(x), 1))])
    theta = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 0.0  # the bias is not penalized
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-design @ theta))
        gradient = design.T @ (weight * (p - y)) + penalty * theta
        hessian = design.T @ (design * (weight * p * (1 - p))[:, None]) + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return theta[:-1], float(theta[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--squad", type=Path, required=True, help="SQuAD 2.0 JSON file")
    parser.add_argument("--squad-index", type=Path, required=True, help="index of the SQuAD file's paragraphs")
    parser.add_argument("--news-index", type=Path, required=True, help="index of news articles without them")
    parser.add_argument("--off-topic", type=Path, default=ROOT / "eval" / "off-topic-dev.jsonl")
    parser.add_argument("--off-topic-weight", type=float, default=5.0)
    parser.add_argument("--keep", type=float, default=0.99, help="share of correctly answered SQuAD questions kept")
    parser.add_argument("--output", type=Path, default=MODEL_FILE)
    args = parser.parse_args()

    _, squad = read_squad(args.squad)
    own, correct = features(Assistant(args.squad_index), squad)
    news = Assistant(args.news_index)
    elsewhere, _ = features(news, squad)
    off_topic, _ = features(news, read_questions(args.off_topic))
    x = np.vstack([own, elsewhere, off_topic])
    y = np.concatenate([np.ones(len(own)), np.zeros(len(elsewhere) + len(off_topic))])
    weight = np.concatenate([np.ones(len(own) + len(elsewhere)), np.full(len(off_topic), args.off_topic_weight)])
    coefficients, bias = fit_logistic(x, y, weight)
    coefficients, bias = np.round(coefficients, 4), round(bias, 4)

    def probability(rows: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(rows @ coefficients + bias)))

    threshold = float(np.quantile(probability(own[correct]), 1 - args.keep))
    declined = {
        "SQuAD over its own paragraphs, answer in citations": f"{int((probability(own[correct]) < threshold).sum())}"
        f" of {int(correct.sum())}",
        "SQuAD over the news index": f"{int((probability(elsewhere) < threshold).sum())} of {len(elsewhere)}",
        "off-topic over the news index": f"{int((probability(off_topic) < threshold).sum())} of {len(off_topic)}",
    }
    model = DeclineModel(dict(zip(FEATURES, coefficients.tolist())), bias, round(threshold, 4))
    calibration = {
        "command": "python eval/calibrate_decline.py " + " ".join(sys.argv[1:]),
        "keep": args.keep,
        "declined": declined,
    }
    model.save(args.output, calibration=calibration)
    for name, value in model.weights.items():
        print(f"{name:>24} {value:+.4f}")
    print(f"{'bias':>24} {model.bias:+.4f}\n{'threshold':>24} {model.threshold:.4f}")
    for name, value in declined.items():
        print(f"declined: {name}: {value}")
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
