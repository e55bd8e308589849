"""Warm ask latency and CPU time over the seed questions, to compare two checkouts (run with each one's PYTHONPATH).

PYTHONPATH=CHECKOUT python eval/grouping_latency.py --index-dir /tmp/seed-index [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import assistant
from assistant.service import Assistant

QUESTIONS = Path(__file__).with_name("seeds.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-dir", type=Path, required=True, help="an index of seeds/")
    parser.add_argument("--repeat", type=int, default=5, help="passes over the questions after a warm-up pass")
    args = parser.parse_args()
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [row["question"] for row in rows if not row.get("history")]
    helper = Assistant(args.index_dir)
    for question in questions:
        helper.ask(question)
    seconds = []
    cpu = time.process_time()
    for _ in range(args.repeat):
        for question in questions:
            start = time.perf_counter()
            helper.ask(question)
            seconds.append(time.perf_counter() - start)
    cpu_ms = (time.process_time() - cpu) * 1000 / len(seconds)
    ms = np.array(seconds) * 1000
    print(
        f"{Path(assistant.__file__).parent.parent}: ask p50 {np.percentile(ms, 50):.2f} ms, "
        f"p95 {np.percentile(ms, 95):.2f} ms, CPU {cpu_ms:.2f} ms an ask, over {len(ms)} asks"
    )


if __name__ == "__main__":
    main()
