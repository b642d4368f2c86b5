"""Embedded NLU against a real Rasa 3.6 server, trained on the same nlu/data, judged on the same split.

    .venv/bin/python bench/nlu_compare.py                 # test set tests/nlu/testset.jsonl
    .venv/bin/python bench/nlu_compare.py --split FILE.jsonl

Both backends train from nlu/data/*.yml; the held-aside split (by default the test set, which no
training file contains) is scored with the same `nlu.evaluation.evaluate` the CLI uses. Measured per
backend: training wall seconds (Rasa: `rasa train nlu`, process start included, since that is what a
user waits for; embedded: a fresh fit, no cache), accuracy, macro-F1, entity F1, milliseconds per
message as Sapa sees it (embedded: in-process call; Rasa: the HTTP round trip plus our entity
normalisation), and memory (embedded: resident size of a process holding only the model; Rasa: the
server's resident size after the run). Needs the Rasa environment: `sapa nlu rasa setup`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nlu.embedded import EmbeddedInterpreter, train  # noqa: E402
from nlu.evaluation import Report, evaluate, load_cases  # noqa: E402
from nlu.rasa_backend import RasaInterpreter  # noqa: E402
from nlu.rasa_server import serve, setup_venv  # noqa: E402
from nlu.rasa_server import train as train_rasa  # noqa: E402
from nlu.training_data import load_examples  # noqa: E402

THRESHOLD = 0.35
# The resident size of a fresh interpreter that has trained and holds the embedded model.
_EMBEDDED_RSS = """
import resource, sys
sys.path.insert(0, sys.argv[1])
from nlu.embedded import EmbeddedInterpreter, train
from nlu.training_data import load_examples
interpreter = EmbeddedInterpreter(train(load_examples()), 0.35)
interpreter.interpret("pesanan saya belum sampai")
base = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) * 1024
print(base)
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def row(name: str, seconds: float, report: Report, memory: int) -> dict[str, object]:
    return {"backend": name, "train_s": round(seconds, 2), "accuracy": round(report.accuracy, 4),
            "macro_f1": round(report.macro_f1, 4), "entity_f1": round(report.entity_f1, 4),
            "ms_per_message": round(report.ms_per_message, 3), "memory_mb": round(memory / 2**20, 1),
            "n": report.n, "answered_by": report.backends}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", type=Path, default=ROOT / "tests" / "nlu" / "testset.jsonl")
    args = parser.parse_args()
    cases = load_cases(args.split)
    examples = load_examples()
    print(f"training data: {len(examples)} examples; split: {args.split.name}, {len(cases)} messages", flush=True)

    started = time.perf_counter()
    embedded = EmbeddedInterpreter(train(examples), THRESHOLD)
    embedded_train = time.perf_counter() - started
    evaluate(embedded, cases[:20])  # warm caches (dateparser's language data) as a running server would be
    embedded_report = evaluate(embedded, cases)
    rss = subprocess.run([sys.executable, "-c", _EMBEDDED_RSS, str(ROOT)], capture_output=True, text=True,
                         check=True)
    results = [row("embedded", embedded_train, embedded_report, int(rss.stdout.strip()))]
    print(json.dumps(results[-1]), flush=True)

    venv = setup_venv()
    with tempfile.TemporaryDirectory(prefix="sapa-rasa-bench-") as tmp:
        model = train_rasa(venv, Path(tmp), force=True)
        with serve(venv, model.path, free_port(), Path(tmp) / "rasa.log") as server:
            rasa = RasaInterpreter(server.url, embedded, THRESHOLD, timeout_s=30.0)
            evaluate(rasa, cases[:20])
            rasa_report = evaluate(rasa, cases)
            results.append(row("rasa", model.seconds, rasa_report, server.rss_bytes()))
    print(json.dumps(results[-1]), flush=True)

    print()
    print(f"{'backend':<10}{'train s':>9}{'accuracy':>10}{'macro-F1':>10}{'entity F1':>11}{'ms/msg':>9}{'MB':>8}")
    for r in results:
        print(f"{r['backend']:<10}{r['train_s']:>9}{r['accuracy']:>10}{r['macro_f1']:>10}{r['entity_f1']:>11}"
              f"{r['ms_per_message']:>9}{r['memory_mb']:>8}")
    e, r = results
    ratios = {"train_speedup": round(float(r["train_s"]) / float(e["train_s"]), 1),  # type: ignore[arg-type]
              "parse_speedup": round(float(r["ms_per_message"]) / float(e["ms_per_message"]), 1)}  # type: ignore[arg-type]
    print(f"embedded trains {ratios['train_speedup']}x faster and parses {ratios['parse_speedup']}x faster")
    print(json.dumps({"results": results, **ratios}))


if __name__ == "__main__":
    main()
