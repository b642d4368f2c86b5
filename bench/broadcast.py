"""Broadcast benchmark (CRM-4.3): a whole campaign to `--customers` customers through real `sapa serve` processes
and the fake providers, killed in the middle and restarted.

    .venv/bin/python bench/broadcast.py [--customers 100000] [--rate 50] [--kill-at 0.4] [--keep]

The same run as tests/handlers/test_broadcast_end_to_end.py (tests/support/broadcast_e2e.py): a fresh SQLite
database in a temporary folder, a mixed population (WhatsApp, SMS, Telegram; 10% opted out, 4% never asked; a
tenth English; half the WhatsApp windows closed), the broadcast created and scheduled over the HTTP API, the server
SIGKILLed after `--kill-at` of the eligible customers were sent their message and started again. It reports:

- select: from the schedule call until every customer is a recipient (pending or skipped with a reason);
- queue: from then until no recipient is pending (every message row is in the outbox);
- the sending rate held per channel (messages over that channel's busy time, the restart included) and the
  busiest second per channel against the configured `--rate`;
- the checks: problems found (a second copy, a message to someone opted out, a missing one, a rate exceeded).

The last line is one JSON object with all the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.broadcast_e2e import run_broadcast  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=50.0, help="broadcast messages per second per channel")
    parser.add_argument("--kill-at", type=float, default=0.4, help="kill after this share of the eligible were sent")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (database and server logs)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sapa-bench-broadcast-"))
    started = time.monotonic()
    try:
        result = run_broadcast(workdir, customers=args.customers, rate=args.rate, kill_at=args.kill_at,
                               log=lambda line: print(f"  {line}", flush=True))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    wall = time.monotonic() - started
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"customers {result.customers}, eligible {result.eligible}, rate {result.rate:g}/s per channel")
    print(f"select    {result.select_s:8.2f} s   (every customer a recipient or skipped)")
    print(f"queue     {result.queue_s:8.2f} s   (every recipient's message in the outbox)")
    print(f"send      {result.send_s:8.1f} s   first to last provider request, kill and restart included")
    print(f"sent      {result.sent:8d}     {result.sent_per_s:.1f} messages/s over the three channels")
    for channel, (busiest, rate) in result.busiest_second.items():
        print(f"  {channel:9s} busiest second {busiest} (rate {rate:g}/s)")
    print(f"kill after {result.killed_after} messages; {result.reconciled} interrupted Twilio sends looked up, "
          f"{result.lost_unconfirmed} Telegram send unconfirmed")
    print(f"problems  {len(result.problems)}" + "".join(f"\n  {p}" for p in result.problems[:20]))
    print(f"wall      {wall:8.1f} s   (population, two start-ups, the broadcast, the checks)")
    print(json.dumps({**result.as_dict(), "problems": len(result.problems), "wall_s": round(wall, 1)}))
    return 1 if result.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
