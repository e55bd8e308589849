"""Do the encoder backends rank alike? Retrieval recall@5 per backend on the seed questions and on SQuAD 2.0 dev.

Run: python bench/encoder_recall.py [--squad-questions N]

Seeds: the known questions of tests/test_answers.py over an index of seeds/ built with each backend; a hit is a
top-5 passage (hybrid search, as the assistant does it) that contains the question's gold string.
SQuAD: dense search of every paragraph of ../shared/data's SQuAD 2.0 dev half by answerable questions; a hit is
the question's own paragraph among the top 5.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.retrieval import Retriever  # noqa: E402
from embeddings import store as index_store  # noqa: E402
from embeddings.encoder import BACKENDS, Encoder  # noqa: E402
from embeddings.indexer import update_index  # noqa: E402
from tests.test_answers import KNOWN  # noqa: E402

SQUAD = Path("/work/shared/data/squad_v2_dev_cs224n/dev-v2.0.json")


def seed_recall(encoder: Encoder, *, k: int = 5) -> float:
    """Return the share of known seed questions with the gold string in one of the top-k passages."""
    with tempfile.TemporaryDirectory() as folder:
        update_index([ROOT / "seeds"], index_dir=Path(folder), encoder=encoder, progress=False)
        retriever = Retriever(index_store.load(Path(folder), model_fingerprint=encoder.fingerprint), encoder)
        found = [
            any(gold in retriever.store.passage_text(hit.row) for hit in retriever.search(question, k=k))
            for question, gold in KNOWN
        ]
    return float(np.mean(found))


def squad_set(limit: int) -> tuple[list[str], list[str], np.ndarray]:
    """Return the paragraphs, up to `limit` answerable questions spread over all articles, and each one's paragraph."""
    paragraphs, questions, gold = [], [], []
    for article in json.loads(SQUAD.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                if not qa["is_impossible"]:
                    questions.append(qa["question"])
                    gold.append(len(paragraphs))
            paragraphs.append(paragraph["context"])
    step = max(1, len(questions) // limit)
    return paragraphs, questions[::step][:limit], np.array(gold[::step][:limit])


def squad_recall(encoder: Encoder, paragraphs, questions, gold, *, k: int = 5) -> float:
    """Return the share of questions whose own paragraph is among the k nearest by dense search."""
    scores = encoder.encode(questions) @ encoder.encode(paragraphs).T
    top = np.argsort(-scores, axis=1)[:, :k]
    return float(np.mean([g in row for g, row in zip(gold, top)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad-questions", type=int, default=600)
    args = parser.parse_args()
    paragraphs, questions, gold = squad_set(args.squad_questions)
    print(f"recall@5; seeds: {len(KNOWN)} questions; SQuAD: {len(questions)} questions, {len(paragraphs)} paragraphs")
    results = {}
    for backend in BACKENDS:
        encoder = Encoder(backend=backend)
        results[backend] = (seed_recall(encoder), squad_recall(encoder, paragraphs, questions, gold))
        print(f"{backend:10}  seeds {results[backend][0]:.3f}  SQuAD {results[backend][1]:.3f}", flush=True)
    (seed_a, squad_a), (seed_b, squad_b) = results.values()
    keeps = abs(seed_a - seed_b) <= 0.01 and abs(squad_a - squad_b) <= 0.01
    print(f"difference  seeds {seed_b - seed_a:+.3f}  SQuAD {squad_b - squad_a:+.3f}  (within 1 point: {keeps})")


if __name__ == "__main__":
    main()
