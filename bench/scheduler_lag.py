"""Scheduler benchmark: how far behind its due time a task runs, in a burst and under steady arrival (issue 18).

    .venv/bin/python bench/scheduler_lag.py [--burst 100000] [--rate 1000] [--seconds 20] [--max-wait 120]
                                        [--postgres URL | --start-postgres] [--poll 1.0]

A fresh SQLite database in a temporary folder (or the --postgres URL, or a throwaway PostgreSQL server started from
the machine's binaries with --start-postgres; tests/support/pgserver.py) is migrated with the project's migrations
and given 1,000 customers. The task kind `bench.touch` sets one customer's `updated_at` with one UPDATE (--orm-task:
reads the customer and sets it through the ORM), so every task's transaction does real work. The real
`SchedulerClock` and `TaskRunner` run with the real `SystemClock` and `scheduler.poll_interval_s` (--poll, default
the shipped 1.0 s), in this process.

(a) burst: --burst tasks all due now are inserted before the clock starts; measured: drain rate (tasks / seconds
    from start to the last task finished) and lag p50/p99/max.
(b) steady: a feeder thread inserts tasks due at their arrival time, --rate per second for --seconds, in slices
    every 10 ms; measured: lag p50/p99/max.

Lag is a task's `finished_at` (set by the runner when it marks the task done) minus its `due_at`. A task still not
done --max-wait seconds after its phase's last arrival counts with the lag it had then (a lower bound; the table
shows how many). The write column is a one-row write transaction every 20 ms meanwhile (what an inbound message
waits for the writer lock on SQLite), p99 and max. CPU per task is the CPU time of this process's scheduler threads
(the process's CPU minus the feeder's and the watcher's own threads), plus with --start-postgres the PostgreSQL
server's CPU. The last line is one JSON object with all numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, text, update
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bot.clock import SystemClock  # noqa: E402
from scheduler.clock import SchedulerClock  # noqa: E402
from scheduler.runner import TaskRunner  # noqa: E402
from store.db import Database, create_database  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import Customer, Task  # noqa: E402
from tests.support.pgserver import PostgresServer  # noqa: E402

CUSTOMERS = 1000
KIND = "bench.touch"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def touch(session: Session, task: Task, now: datetime) -> None:
    """The benchmark's task: one row written, like a reminder marking what it sent."""
    customers = cast(Table, Customer.__table__)  # Core, not the ORM's bulk-update path: the cheapest real write
    session.execute(update(customers).where(customers.c.id == task.payload["customer"]).values(updated_at=now))


def touch_orm(session: Session, task: Task, now: datetime) -> None:
    """The same through the ORM (read the row, set the attribute, flushed by the runner): most task kinds in
    scheduler/jobs.py work this way, at several such reads and writes each."""
    customer = session.get_one(Customer, task.payload["customer"])
    customer.updated_at = now


# ---------------------------------------------------------------- database


def prepare(database: Database) -> None:
    now = datetime.now(UTC)
    with database.unit_of_work() as session:
        session.execute(text("DELETE FROM tasks WHERE kind = :kind"), {"kind": KIND})
        if session.execute(select(func.count()).select_from(Customer)).scalar_one() < CUSTOMERS:
            session.execute(insert(Customer), [
                {"name": f"bench {i}", "phone": f"+6281{i:09d}", "source": "bench", "is_vip": False,
                 "created_at": now, "updated_at": now} for i in range(CUSTOMERS)])


def insert_tasks(database: Database, count: int, phase: str, due_at: datetime, offset: int) -> None:
    rows = [{"kind": KIND, "due_at": due_at, "payload": {"customer": 1 + (offset + i) % CUSTOMERS, "phase": phase},
             "status": "pending", "attempts": 0, "created_at": due_at} for i in range(count)]
    with database.unit_of_work() as session:
        for start in range(0, len(rows), 5000):
            session.execute(insert(Task), rows[start:start + 5000])


def open_count(database: Database) -> int:
    with database.unit_of_work(read_only=True) as session:
        return int(session.execute(select(func.count()).select_from(Task).where(
            Task.kind == KIND, Task.status.in_(("pending", "running")))).scalar_one())


def cancel_open(database: Database) -> None:
    with database.unit_of_work() as session:
        session.execute(text("UPDATE tasks SET status = 'cancelled' WHERE kind = :kind AND status = 'pending'"),
                        {"kind": KIND})


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def lags(database: Database, phase: str, cut_off: datetime) -> tuple[list[float], int, datetime | None]:
    """Seconds from due to done per task of the phase (undone tasks: to cut_off), how many were undone, last done."""
    with database.unit_of_work(read_only=True) as session:
        rows = session.execute(select(Task.due_at, Task.finished_at, Task.status, Task.payload).where(
            Task.kind == KIND)).all()
    values: list[float] = []
    undone = 0
    last: datetime | None = None
    for due_at, finished_at, status, payload in rows:
        if payload.get("phase") != phase:
            continue
        if status == "done" and finished_at is not None:
            done = aware(finished_at)
            last = done if last is None or done > last else last
        else:
            done, undone = cut_off, undone + 1
        values.append((done - aware(due_at)).total_seconds())
    return values, undone, last


# ---------------------------------------------------------------- CPU


def postgres_cpu_s(server: PostgresServer | None) -> float:
    """The server's CPU: the postmaster with its ended children, plus every live backend."""
    if server is None:
        return 0.0
    pid_file = server.data / "postmaster.pid"
    try:
        postmaster = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        if pid == postmaster:
            total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        elif ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


@dataclass
class Cpu:
    process_s: float
    postgres_s: float

    @classmethod
    def now(cls, server: PostgresServer | None) -> Cpu:
        return cls(time.process_time(), postgres_cpu_s(server))


class WriterProbe:
    """Stands in for inbound traffic: a one-row write unit of work every 20 ms, timed from asking for the
    transaction to its commit. On SQLite it waits for the one writer lock the scheduler's batches hold."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.times: list[float] = []
        self.cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-probe")

    def _loop(self) -> None:
        began = time.thread_time()
        while not self._stop.wait(0.02):
            started = time.perf_counter()
            with self.database.unit_of_work() as session:
                session.execute(text("UPDATE customers SET updated_at = updated_at WHERE id = 1"))
            self.times.append(time.perf_counter() - started)
        self.cpu_s = time.thread_time() - began

    def __enter__(self) -> WriterProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------- phases


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def wait_drained(database: Database, until: float) -> None:
    while time.monotonic() < until and open_count(database) > 0:
        time.sleep(0.25)


def summarize(name: str, values: list[float], undone: int, tasks: int, seconds: float, scheduler_cpu_s: float,
              postgres_s: float, probe: WriterProbe) -> dict[str, Any]:
    return {
        "phase": name, "tasks": tasks, "undone": undone, "seconds": round(seconds, 2),
        "rate_per_s": round((tasks - undone) / seconds, 1) if seconds > 0 else None,
        "probe_write_p99_ms": round(1000 * percentile(probe.times, 99), 1),
        "probe_write_max_ms": round(1000 * max(probe.times), 1) if probe.times else None,
        "lag_p50_s": round(percentile(values, 50), 3), "lag_p99_s": round(percentile(values, 99), 3),
        "lag_max_s": round(max(values), 3) if values else None,
        "cpu_ms_per_task": round(1000 * scheduler_cpu_s / max(tasks - undone, 1), 3),
        "postgres_cpu_ms_per_task": round(1000 * postgres_s / max(tasks - undone, 1), 3) if postgres_s else None,
    }


def burst(database: Database, clock: SchedulerClock, count: int, max_wait: float,
          server: PostgresServer | None) -> dict[str, Any]:
    due_at = datetime.now(UTC)
    insert_tasks(database, count, "burst", due_at, 0)
    watcher_before, before = time.thread_time(), Cpu.now(server)
    start = time.monotonic()
    with WriterProbe(database) as probe:
        clock.start()
        clock.wake()
        wait_drained(database, start + max_wait)
    watcher, after = time.thread_time() - watcher_before, Cpu.now(server)
    values, undone, last = lags(database, "burst", datetime.now(UTC))
    seconds = (last - due_at).total_seconds() if last and not undone else time.monotonic() - start
    return summarize("burst", values, undone, count, seconds,
                     after.process_s - before.process_s - watcher - probe.cpu_s,
                     after.postgres_s - before.postgres_s, probe)


def steady(database: Database, rate: int, seconds: float, max_wait: float,
           server: PostgresServer | None) -> dict[str, Any]:
    feeder_cpu: list[float] = []
    inserted = [0]

    def feed() -> None:
        started, began = time.monotonic(), time.thread_time()
        while (elapsed := time.monotonic() - started) < seconds:
            owed = int(elapsed * rate) - inserted[0]
            if owed > 0:
                insert_tasks(database, owed, "steady", datetime.now(UTC), inserted[0])
                inserted[0] += owed
            time.sleep(0.01)
        feeder_cpu.append(time.thread_time() - began)

    watcher_before, before = time.thread_time(), Cpu.now(server)
    start = time.monotonic()
    feeder = threading.Thread(target=feed, name="bench-feeder")
    with WriterProbe(database) as probe:
        feeder.start()
        feeder.join()
        wait_drained(database, time.monotonic() + max_wait)
    watcher, after = time.thread_time() - watcher_before, Cpu.now(server)
    values, undone, _last = lags(database, "steady", datetime.now(UTC))
    return summarize("steady", values, undone, inserted[0], time.monotonic() - start,
                     after.process_s - before.process_s - watcher - feeder_cpu[0] - probe.cpu_s,
                     after.postgres_s - before.postgres_s, probe)


# ---------------------------------------------------------------- main


def print_table(backend: str, results: list[dict[str, Any]]) -> None:
    print(f"\n{backend}")
    print(f"{'phase':<8} {'tasks':>7} {'undone':>6} {'rate/s':>8} {'lag p50':>8} {'lag p99':>8} {'lag max':>8} "
          f"{'CPU ms/task':>11} {'PG ms/task':>10} {'write p99/max ms':>16}")
    for r in results:
        print(f"{r['phase']:<8} {r['tasks']:>7} {r['undone']:>6} {r['rate_per_s'] or '-':>8} "
              f"{r['lag_p50_s']:>8} {r['lag_p99_s']:>8} {r['lag_max_s']:>8} {r['cpu_ms_per_task']:>11} "
              f"{r['postgres_cpu_ms_per_task'] or '-':>10} "
              f"{str(r['probe_write_p99_ms']) + '/' + str(r['probe_write_max_ms']):>16}")


def run(url: str, backend: str, args: argparse.Namespace, server: PostgresServer | None) -> dict[str, Any]:
    upgrade(url)
    database = create_database(url)
    try:
        prepare(database)
        runner = TaskRunner(database, SystemClock(), {KIND: touch_orm if args.orm_task else touch})
        clock = SchedulerClock(runner, poll_interval_s=args.poll, timezone="UTC")
        try:
            results = []
            if args.burst:
                results.append(burst(database, clock, args.burst, args.max_wait, server))
            clock.start()
            if args.rate and args.seconds:
                cancel_open(database)  # a burst left unfinished must not count against the steady phase
                results.append(steady(database, args.rate, args.seconds, args.max_wait, server))
        finally:
            clock.stop()
            time.sleep(2)  # the tick ends its current claim (stop() does not wait) before the database goes
        print_table(backend, results)
        return {"backend": backend, "results": results}
    finally:
        database.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burst", type=int, default=100_000, help="tasks due at once (default 100000; 0: skip)")
    parser.add_argument("--rate", type=int, default=1000, help="steady arrivals per second (default 1000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="steady phase length (default 20; 0: skip)")
    parser.add_argument("--max-wait", type=float, default=120.0, help="give up on a phase this long after its "
                        "last arrival (default 120 s)")
    parser.add_argument("--poll", type=float, default=1.0, help="scheduler.poll_interval_s (default 1.0)")
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL database")
    parser.add_argument("--start-postgres", action="store_true",
                        help="also run on a throwaway PostgreSQL server started from the machine's binaries")
    parser.add_argument("--orm-task", action="store_true",
                        help="the task reads and writes its row through the ORM (default: one UPDATE statement)")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args(argv)
    # A time limit's SIGTERM (bench/run.py) still stops the PostgreSQL server started here.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sapa-bench-scheduler-") as workdir:
        if not args.no_sqlite:
            runs.append(run(f"sqlite:///{Path(workdir) / 'sapa.db'}", "sqlite", args, None))
        if args.postgres:
            runs.append(run(args.postgres, "postgresql", args, None))
        if args.start_postgres:
            server = PostgresServer().start()
            try:
                runs.append(run(server.url(), "postgresql", args, server))
            finally:
                server.stop()
    print(json.dumps({"bench": "scheduler", "task": "orm" if args.orm_task else "update", "burst": args.burst,
                      "rate": args.rate, "seconds": args.seconds,
                      "poll_s": args.poll, "runs": runs,
                      "cpus": os.cpu_count(), "load": statistics.fmean(os.getloadavg())}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
