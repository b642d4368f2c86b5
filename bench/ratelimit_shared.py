"""Rate-limit reservations: the in-process token buckets against the ones shared in PostgreSQL (issue 18).

    .venv/bin/python bench/ratelimit_shared.py [--sends 3000] [--postgres URL]

What the outbox asks before each send: `reserve(keys)` with a Telegram send's two buckets (overall and the chat,
a new chat each time, as in a broadcast) plus the broadcast bucket. Rates are set high, so every reservation is
granted and each one writes. Measured per reservation: this process's CPU (time.process_time) and wall time; on
PostgreSQL also the server's CPU (its processes' utime+stime from /proc, with the throwaway server this script
starts when no --postgres URL is given). The last line is one JSON object with all numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.clock import SystemClock  # noqa: E402
from bot.ratelimit import Limiter, RateLimiter  # noqa: E402
from bot.ratelimit_shared import SharedRateLimiter  # noqa: E402
from channels.base import RateKey  # noqa: E402
from store import create_database  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from tests.support.pgserver import PostgresServer  # noqa: E402


def server_cpu_s(server: PostgresServer | None) -> float:
    """CPU seconds of every process of the throwaway server's user running from its data folder (0 without it)."""
    if server is None:
        return 0.0
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if not cmdline.startswith(b"postgres"):
                continue
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(stat[11]) + int(stat[12])) / tick
        except OSError:
            continue
    return total


def measure(limiter: Limiter, sends: int, server: PostgresServer | None) -> dict[str, Any]:
    keys = [[RateKey("telegram:global", 1e6), RateKey(f"telegram:chat:{n}", 1e6),
             RateKey("broadcast:telegram", 1e6, burst=1e5)] for n in range(sends)]
    for batch in keys[:50]:  # warm up: connections, statement caches
        limiter.reserve(batch)
    cpu, wall, db = time.process_time(), time.perf_counter(), server_cpu_s(server)
    refused = sum(limiter.reserve(batch) > 0 for batch in keys[50:])
    count = sends - 50
    return {"reservations": count, "refused": refused,
            "cpu_ms": (time.process_time() - cpu) * 1000 / count,
            "wall_ms": (time.perf_counter() - wall) * 1000 / count,
            "db_cpu_ms": (server_cpu_s(server) - db) * 1000 / count}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=3000)
    parser.add_argument("--postgres", metavar="URL", help="an empty, throwaway PostgreSQL database")
    args = parser.parse_args(argv)
    server = None
    url = args.postgres
    if url is None:
        server = PostgresServer().start()
        url = server.url()
    try:
        upgrade(url)
        database = create_database(url)
        results = {"in_process": measure(RateLimiter(SystemClock()), args.sends, None),
                   "postgres_shared": measure(SharedRateLimiter(database, SystemClock()), args.sends, server)}
        database.dispose()
    finally:
        if server is not None:
            server.stop()
    print(f"{'limiter':18}{'reservations':>14}{'CPU ms':>10}{'wall ms':>10}{'PG CPU ms':>11}")
    for name, row in results.items():
        print(f"{name:18}{row['reservations']:>14}{row['cpu_ms']:>10.3f}{row['wall_ms']:>10.3f}"
              f"{row['db_cpu_ms']:>11.3f}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
