"""Page timing: app.py driven by Streamlit's AppTest over the seeds, turns asked and reruns that redraw them.

Run from the repository root:  python bench/page.py [--turns N] [--repeat N]
Prints the seconds a turn takes (question answered and page drawn) and a rerun that redraws every turn.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "Are there prerequisites for negotiations?",
    "How did Peskov describe the results of the NATO summit?",
    "What weapons will the US station in Germany?",
    "Who did Belousov call?",
    "What did Peskov say about China?",
    "How do I bake sourdough bread?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description="Time the chat page's turns and reruns on the seeds.")
    parser.add_argument("--turns", type=int, default=len(QUESTIONS), help="questions asked in one session")
    parser.add_argument("--repeat", type=int, default=5, help="reruns timed after the last turn")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        os.environ["ASSISTANT_INDEX_DIR"] = str(Path(work) / "index")
        os.environ["ASSISTANT_UPLOAD_DIR"] = str(Path(work) / "uploads")
        from streamlit.testing.v1 import AppTest

        page = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        page.run()  # first run: indexes the seeds and loads the model
        turns = []
        for question in (QUESTIONS * args.turns)[: args.turns]:
            started = time.perf_counter()
            page.chat_input[0].set_value(question).run()
            turns.append(time.perf_counter() - started)
            if page.exception:
                raise SystemExit(f"the page failed: {page.exception[0].message}")
        reruns = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            page.run()
            reruns.append(time.perf_counter() - started)
    print(
        f"turn (answer and page), s: median {statistics.median(turns):.3f}, max {max(turns):.3f} "
        f"over {len(turns)} turns (the first one also warms the page up)"
    )
    print(
        f"rerun redrawing {len(turns)} turns, s: median {statistics.median(reruns):.3f}, "
        f"max {max(reruns):.3f} over {len(reruns)} reruns"
    )


if __name__ == "__main__":
    main()
