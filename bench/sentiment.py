"""Time `nlu.sentiment.analyse` per message, over the NLU test set and the labelled sentiment cases.

    .venv/bin/python bench/sentiment.py [--rounds 20]

The result cache is bypassed (every call computes), so the figure is the cost of a first reading. The
normaliser's word cache stays warm, as it is in a running Sapa. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nlu.sentiment import analyse  # noqa: E402


def texts() -> list[str]:
    found = []
    for name in ("testset.jsonl", "sentiment_cases.jsonl"):
        for line in (ROOT / "tests" / "nlu" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                found.append(str(json.loads(line)["text"]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    messages = texts()
    compute = analyse.__wrapped__  # the uncached function
    for text in messages:
        compute(text)  # warm the normaliser's word cache
    per_round = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for text in messages:
            compute(text)
        per_round.append((time.perf_counter() - start) / len(messages))
    median_us = statistics.median(per_round) * 1e6
    print(f"{len(messages)} messages, median {median_us:.1f} µs per message over {args.rounds} rounds")
    print(json.dumps({"messages": len(messages), "rounds": args.rounds, "us_per_message": round(median_us, 1)}))


if __name__ == "__main__":
    main()
