"""`make bench`: issue 18's figures side by side from one run, against the goals.

    .venv/bin/python bench/run.py [--quick] [--skip-postgres] [--only inbound|others] [--seconds 20]

1. SQLite, one `sapa serve` (bench/inbound.py's server, config with BENCH_OVERRIDES): 128 web chat sessions, then
   wrk at concurrency 16 for --seconds (maximum rate); server CPU (utime + stime from /proc) from before the load
   to after the outbox drained, per 200 response. The same wrk run against the bare FastAPI endpoint.
2. An open-loop run at half the measured maximum rate for 15 s: p50/p99 latency from each message's due time.
3. PostgreSQL (a throwaway server from the machine's binaries, pg_stat_statements loaded): the same wrk run with
   one `sapa serve`, then two on the same database (two wrk processes at once, one per server, 16 connections
   each): CPU per message per Sapa process, PostgreSQL's own CPU, SQL statements per message, 2/1 throughput.
4. bench/scheduler_lag.py, bench/broadcast_queue.py, bench/outbox_send.py as subprocesses (each with a time limit);
   their last stdout line is JSON, mapped to table rows by EXTERNAL_BENCHES below.

Cores (inbound.placement): each `sapa serve` runs with `--cpu`, a core of its own, as docs/deployment.md recommends,
and the load generators (wrk, the open-loop sender) on another core while there is one; the bare endpoint gets the
same cores as Sapa. One SQLite run without any of that comes first, as every run did before `--cpu`, for context.
PostgreSQL's server is placed by the OS. On a machine with one core nothing is pinned.

Prints one table (figure | this run | issue 18 baseline | goal | met?) and, last, one JSON line with everything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import inbound
from workspace import BENCH_OVERRIDES, ROOT, prepare_sapa

sys.path.append(str(ROOT))  # tests.support.pgserver
from tests.support.pgserver import PostgresServer  # noqa: E402

CONNECTIONS = 16  # the wrk concurrency
SESSIONS = 128
HALF_RATE_SECONDS = 15.0
WARMUP_S = 3.0  # an unmeasured wrk run before each measured one
DRAIN_LIMIT_S = 120.0


# ---------------------------------------------------------------- the goal table (issue 18)


@dataclass(frozen=True)
class Row:
    key: str
    figure: str
    unit: str
    baseline: str = ""  # the "today" column, as filed
    goal: str = ""
    met: Callable[[float], bool] | None = None  # None: a figure for context, no goal


ROWS: list[Row] = [
    Row("cpu_ms_per_message", "server CPU per inbound web chat message, reply sent through the outbox (SQLite)",
        "ms", "17.5 ms", "<= 2.2 ms", lambda v: v <= 2.2),
    Row("sql_per_message", "SQL statements per message, request + outbox (PostgreSQL, pg_stat_statements)", "",
        "~30", "<= 8", lambda v: v <= 8),
    Row("bare_ratio", "throughput vs the bare FastAPI endpoint in the same wrk run", "", "0.016", ">= 0.12",
        lambda v: v >= 0.12),
    Row("bare_cpu_ratio", "same, from CPU: bare CPU per request / Sapa CPU per message (holds on a busy machine)",
        "", "0.016", ">= 0.12", lambda v: v >= 0.12),
    Row("p99_half_rate_ms", "p99 latency at half the measured maximum rate (SQLite)", "ms", "—", "<= 50 ms",
        lambda v: v <= 50),
    Row("pg_cpu_ms_per_message", "PostgreSQL: server CPU per message (Sapa process, 1 process)", "ms",
        "~30 msg/s per process", "<= 3 ms", lambda v: v <= 3),
    Row("pg_two_process_ratio", "PostgreSQL: 2 processes' throughput / 1 process'", "x", "61/30 = 2.0",
        ">= 1.8", lambda v: v >= 1.8),
    Row("pg_two_process_cpu_ratio", "same, from CPU: 2 x Sapa CPU per message with 1 process / with 2 (a core each)",
        "x", "", ">= 1.8", lambda v: v >= 1.8),
    Row("broadcast_queue_s", "100,000-recipient broadcast selected and queued", "s", "~33 s", "<= 5 s",
        lambda v: v <= 5),
    Row("broadcast_send_cpu_ms", "server CPU per broadcast send", "ms", "~6 ms", "<= 1 ms", lambda v: v <= 1),
    Row("scheduler_lag_p99_s", "100,000 due tasks arriving at 1,000 tasks/s, lag p99", "s", "30 s (3,000)",
        "<= 1 s at 1,000 tasks/s", lambda v: v <= 1),
    # context, no goal
    Row("cpu_ms_per_message_os_placed", "same, without --cpu: the OS places the server's threads and wrk", "ms"),
    Row("sapa_msg_per_s", "Sapa msg/s, wrk max rate (SQLite)", "/s", "58"),
    Row("bare_req_per_s", "bare FastAPI req/s, same wrk run", "/s", "3,600"),
    Row("bare_cpu_ms_per_request", "bare endpoint CPU per request", "ms", "0.28 ms"),
    Row("p50_half_rate_ms", "p50 latency at half the maximum rate (SQLite)", "ms"),
    Row("pg_msg_per_s_1", "PostgreSQL: msg/s, 1 process", "/s", "~30"),
    Row("pg_msg_per_s_2", "PostgreSQL: msg/s, 2 processes", "/s", "~61"),
    Row("pg_cpu_ms_per_message_2", "PostgreSQL: CPU per message per Sapa process, 2 processes", "ms"),
    Row("pg_server_cpu_ms_per_message", "PostgreSQL server's own CPU per message (1 process)", "ms", "4-5 ms"),
    Row("pg_transactions_per_message", "PostgreSQL: transactions (COMMIT/ROLLBACK) per message", ""),
    Row("broadcast_queue_cpu_s", "broadcast select + queue CPU (process + PostgreSQL if any)", "s"),
    Row("scheduler_burst_lag_p99_s", "scheduler lag p99, a burst all due at once", "s", "30 s (3,000)"),
    Row("scheduler_burst_per_s", "scheduler burst drain, tasks/s", "/s", "~100 (3,000 due)"),
    Row("scheduler_burst_undone", "burst tasks not done when the bench gave up (lag p99 then a lower bound)", ""),
    Row("webchat_outbox_sql_per_reply", "outbox SQL statements per web chat reply (bench/outbox_send.py)", "", "~9"),
]


# ---------------------------------------------------------------- the other helpers' benchmarks

# A value spec: a dotted path into the bench's JSON (list items by index), optionally with a factor (s -> ms).
ValueSpec = str | tuple[str, float]


@dataclass(frozen=True)
class ExternalBench:
    name: str
    command: list[str]  # run from the checkout's root with this interpreter
    quick_args: list[str]
    full_args: list[str]
    timeout_s: float
    rows: dict[str, ValueSpec] = field(default_factory=dict)  # ROWS key -> where its value is in the JSON


EXTERNAL_BENCHES: list[ExternalBench] = [
    ExternalBench(
        "scheduler", ["bench/scheduler_lag.py"],
        quick_args=["--burst", "3000", "--rate", "1000", "--seconds", "5", "--max-wait", "20"],
        # The goal's 100,000 tasks arrive at 1,000/s (the steady phase, 100 s); the burst is context.
        full_args=["--burst", "20000", "--rate", "1000", "--seconds", "100", "--max-wait", "60"],
        timeout_s=420,
        rows={"scheduler_lag_p99_s": "runs.0.results.1.lag_p99_s",
              "scheduler_burst_per_s": "runs.0.results.0.rate_per_s",
              "scheduler_burst_lag_p99_s": "runs.0.results.0.lag_p99_s",
              "scheduler_burst_undone": "runs.0.results.0.undone"},
    ),
    ExternalBench(
        "broadcast_queue", ["-m", "bench.broadcast_queue"],
        quick_args=["--customers", "10000"], full_args=["--customers", "100000"],
        timeout_s=330,
        rows={"broadcast_queue_s": "runs.0.total_wall_s", "broadcast_queue_cpu_s": "runs.0.total_cpu_s"},
    ),
    ExternalBench(
        "outbox_send", ["bench/outbox_send.py"],
        quick_args=["--rows", "300"], full_args=["--rows", "3000"],
        timeout_s=240,
        rows={"broadcast_send_cpu_ms": "results.broadcast.cpu_ms_per_send",
              "webchat_outbox_sql_per_reply": "results.webchat.statements_per_send"},
    ),
]


def lookup(data: Any, spec: ValueSpec) -> float | None:
    path, factor = (spec, 1.0) if isinstance(spec, str) else spec
    node = data
    for part in path.split("."):
        if isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return float(node) * factor if isinstance(node, int | float) and not isinstance(node, bool) else None


def stop_group(process: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGINT first (the bench's `finally` blocks stop what it started), then SIGKILL to whatever is left."""
    output: tuple[str, str] = ("", "")
    try:
        os.killpg(process.pid, signal.SIGINT)
        output = process.communicate(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if process.poll() is None:
        output = process.communicate()
    return output


def run_external(bench: ExternalBench, quick: bool) -> dict[str, Any]:
    """Run one bench script; its last stdout line is its JSON. A failure is reported, never raised."""
    command = [sys.executable, *bench.command, *(bench.quick_args if quick else bench.full_args)]
    started = time.perf_counter()
    report: dict[str, Any] = {"command": " ".join(command[1:])}
    if bench.command[0].endswith(".py") and not (ROOT / bench.command[0]).is_file():
        return {**report, "error": f"{bench.command[0]} is missing"}
    print(f"\n== {bench.name}: {report['command']} (limit {bench.timeout_s:.0f} s)", flush=True)
    # Its own process group: on time-out the whole group is stopped, servers the bench started included.
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=bench.timeout_s)
    except subprocess.TimeoutExpired:
        stdout, stderr = stop_group(process)
        return {**report, "error": f"timed out after {bench.timeout_s:.0f} s", "output_tail": stdout[-600:]}
    done = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    for line in lines[:-1][-25:]:  # its own table, for the log
        print(f"   {line}")
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if done.returncode != 0 or not isinstance(result, dict):
        return {**report, "error": f"exit {done.returncode}" + ("" if isinstance(result, dict) else ", no JSON"),
                "output_tail": (done.stdout[-600:] + done.stderr[-1200:]), "json": result}
    report["json"] = result
    report["values"] = {key: lookup(result, spec) for key, spec in bench.rows.items()}
    return report


# ---------------------------------------------------------------- inbound on SQLite


def wait_outbox_empty(base_url: str) -> dict[str, Any]:
    drained = inbound.outbox_drain(base_url, limit_s=DRAIN_LIMIT_S)
    if drained.get("drain_s") is None:
        print(f"   outbox NOT empty after {DRAIN_LIMIT_S:.0f} s: {drained.get('outbox_last')}")
    return drained


def measured_max_rate(
    name: str, servers: list[inbound.Server], sessions: list[list[str]], texts: list[str], run_id: str,
    workdir: Path, seconds: float, database_url: str, measuring_starts: Callable[[], None] | None = None,
    wrk_cpu: int | None = None,
) -> tuple[list[inbound.WrkResult], list[float], dict[str, Any], int]:
    """wrk at full speed against each server at once; each server's CPU from before the load to the outbox empty.

    A short unmeasured wrk run first: the first messages of a fresh process fill SQLAlchemy's statement cache,
    connection pools and the NLU's lazy parts, a start-up cost a short measured run would spread over few messages."""
    def scripts(tag: str) -> list[Path]:
        return [inbound.write_wrk_script(workdir / f"{name}-{tag}-{n}.lua", own, texts, f"{run_id}-{name}{tag}{n}")
                for n, own in enumerate(sessions)]

    warm = [inbound.start_wrk(s.base_url, script, WARMUP_S, CONNECTIONS, cpu=wrk_cpu)
            for s, script in zip(servers, scripts("w"), strict=True)]
    for process in warm:
        inbound.finish_wrk("warm-up", process, CONNECTIONS, WARMUP_S + 90)
    for server in servers:
        wait_outbox_empty(server.base_url)
    if measuring_starts:
        measuring_starts()
    stored_before = inbound.messages_by_direction(database_url).get("in", 0)
    cpu_before = [inbound.process_cpu_s(s.process.pid) for s in servers]
    running = [inbound.start_wrk(s.base_url, script, seconds, CONNECTIONS, cpu=wrk_cpu)
               for s, script in zip(servers, scripts("m"), strict=True)]
    results = [inbound.finish_wrk(f"{name}-{n}", p, CONNECTIONS, seconds + 90) for n, p in enumerate(running)]
    drained = {s.name: wait_outbox_empty(s.base_url) for s in servers}
    cpu = [inbound.process_cpu_s(s.process.pid) - before for s, before in zip(servers, cpu_before, strict=True)]
    stored = inbound.messages_by_direction(database_url).get("in", 0) - stored_before
    return results, cpu, drained, stored


def sapa_sessions(server: inbound.Server, count: int) -> list[str]:
    return asyncio.run(inbound.create_sessions(server.base_url, count, CONNECTIONS))


@contextmanager
def sender_on(cpu: int | None) -> Iterator[None]:
    """This process (the open-loop sender) on `cpu` for the block, then back where it may run."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def where(cpu: int | None) -> str:
    return f"on CPU {cpu}" if cpu is not None else "placed by the OS"


def log_problems(server: inbound.Server, into: dict[str, int]) -> None:
    kinds, lines = inbound.problems_in_log(server.log())
    for kind, n in kinds.items():
        into[kind] = into.get(kind, 0) + n
    for line in lines[:5]:
        print(f"   {server.name} log: {line}")


def sqlite_os_placed(workdir: Path, env: dict[str, str], database_url: str, seconds: float, texts: list[str],
                     run_id: str, problems: dict[str, int]) -> dict[str, Any]:
    """The same maximum rate with no core given to anything (as every run before `--cpu`): context for the table."""
    sapa = inbound.start_sapa(workdir, env, name="sapa-os-placed")
    try:
        sapa.wait_healthy()
        sessions = sapa_sessions(sapa, SESSIONS)
        print(f"== SQLite, no --cpu (server and wrk placed by the OS): wrk -c{CONNECTIONS} for {seconds:.0f} s",
              flush=True)
        (result,), (cpu_s,), _, stored = measured_max_rate("sqlite-os", [sapa], [sessions], texts, run_id, workdir,
                                                           seconds, database_url)
    finally:
        sapa.stop()
    log_problems(sapa, problems)
    out = {"msg_per_s": round(result.throughput, 1), "inbound_stored": stored, "server_cpu_s": round(cpu_s, 2),
           "cpu_ms_per_message": round(cpu_s / stored * 1000, 3) if stored else None}
    print(f"   {result.throughput:.1f} msg/s, {out['cpu_ms_per_message']} ms CPU per message", flush=True)
    return out


def inbound_sqlite(workdir: Path, seconds: float, texts: list[str], run_id: str) -> dict[str, Any]:
    database_url = f"sqlite:///{workdir / 'sapa.db'}"
    env = prepare_sapa(workdir, database_url, reuse_nlu=True, overrides=BENCH_OVERRIDES)
    out: dict[str, Any] = {}
    problems: dict[str, int] = {}
    (cpu,), wrk_cpu = inbound.placement(1)
    out["placement"] = {"server_cpu": cpu, "wrk_cpu": wrk_cpu}
    if cpu is not None:
        out["os_placed"] = sqlite_os_placed(workdir, env, database_url, seconds, texts, run_id, problems)
    sapa = inbound.start_sapa(workdir, env, cpu=cpu)
    try:
        sapa.wait_healthy()
        sessions = sapa_sessions(sapa, SESSIONS)
        print(f"== SQLite: wrk -c{CONNECTIONS} ({where(wrk_cpu)}) for {seconds:.0f} s against sapa serve "
              f"--cpu {cpu} ({len(sessions)} sessions)" if cpu is not None else
              f"== SQLite: wrk -c{CONNECTIONS} for {seconds:.0f} s against sapa serve ({len(sessions)} sessions)",
              flush=True)
        (result,), (cpu_s,), drained, stored = measured_max_rate("sqlite", [sapa], [sessions], texts, run_id,
                                                                 workdir, seconds, database_url, wrk_cpu=wrk_cpu)
        out["sapa"] = {**result.as_json(), "server_cpu_s": round(cpu_s, 2), "inbound_stored": stored,
                       "cpu_ms_per_message": round(cpu_s / stored * 1000, 3) if stored else None,
                       "cpu_ms_per_200": round(cpu_s / result.ok * 1000, 3) if result.ok else None,
                       "outbox_drain_s": drained["sapa"].get("drain_s")}
        print(f"   {result.throughput:.1f} msg/s, {out['sapa']['cpu_ms_per_message']} ms CPU per message, "
              f"p99 {result.latency_ms.get('p99')} ms, non-2xx {result.non_2xx}", flush=True)

        rate = result.throughput / 2
        if rate >= 1:
            print(f"== SQLite: fixed rate {rate:.1f} msg/s for {HALF_RATE_SECONDS:.0f} s (open loop)", flush=True)
            with sender_on(wrk_cpu):  # this process sends: on wrk's core, out of the server's
                half = asyncio.run(inbound.run_fixed_rate("half", sapa.base_url, sessions, texts, rate,
                                                          HALF_RATE_SECONDS, f"{run_id}-half"))
            out["half_rate"] = {"rate": round(rate, 1), **half.as_json(), "peak_in_flight": half.concurrency}
            print(f"   p50 {half.percentile(50):.1f} ms, p99 {half.percentile(99):.1f} ms, non-200 {half.non_200}, "
                  f"errors {sum(half.errors.values())}, sender CPU {half.client_cpu_s:.1f} s of {half.wall_s:.1f} s",
                  flush=True)
            wait_outbox_empty(sapa.base_url)
        out["messages_stored"] = inbound.messages_by_direction(database_url)
    finally:
        sapa.stop()
    log_problems(sapa, problems)
    out["sapa_log_problems"] = problems

    bare = inbound.start_bare(workdir, cpu=cpu)  # the same cores as Sapa's
    try:
        bare.wait_healthy()
        fake = [f"bare-session-{n:04d}-xxxxxxxxxxxx" for n in range(SESSIONS)]
        script = inbound.write_wrk_script(workdir / "bare.lua", fake, texts, f"{run_id}-bare")
        print(f"== bare FastAPI endpoint ({where(cpu)}): wrk -c{CONNECTIONS} ({where(wrk_cpu)}) for {seconds:.0f} s",
              flush=True)
        inbound.run_wrk("bare-warm-up", bare.base_url, script, WARMUP_S, CONNECTIONS, cpu=wrk_cpu)
        cpu_before = inbound.process_cpu_s(bare.process.pid)
        bare_result = inbound.run_wrk("bare", bare.base_url, script, seconds, CONNECTIONS, cpu=wrk_cpu)
        cpu_s = inbound.process_cpu_s(bare.process.pid) - cpu_before
    finally:
        bare.stop()
    out["bare"] = {**bare_result.as_json(), "server_cpu_s": round(cpu_s, 2),
                   "cpu_ms_per_request": round(cpu_s / bare_result.ok * 1000, 4) if bare_result.ok else None}
    print(f"   {bare_result.throughput:.1f} req/s, {out['bare']['cpu_ms_per_request']} ms CPU per request", flush=True)
    out["ratio"] = round(result.throughput / bare_result.throughput, 4) if bare_result.throughput else None
    return out


# ---------------------------------------------------------------- inbound on PostgreSQL


def postmaster_pid(pg: PostgresServer) -> int:
    return int((pg.data / "postmaster.pid").read_text().splitlines()[0])


def psql(pg: PostgresServer, database: str, sql: str) -> str:
    command = [str(pg.bindir / "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-d", database,
               "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"psql failed: {done.stderr.strip()}")
    return done.stdout.strip()


def start_postgres_with_statements() -> PostgresServer:
    """tests/support/pgserver's server, restarted once with pg_stat_statements preloaded (counts every statement)."""
    pg = PostgresServer().start()
    try:
        psql(pg, "postgres", "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        # -l: without a log file the server would keep our captured stdout open, and the restart never return
        pg._run(str(pg.bindir / "pg_ctl"), "-D", str(pg.data), "-l", str(pg.root / "server.log"), "-m", "fast",
                "-w", "-t", "60", "restart")
    except Exception:
        pg.stop()
        raise
    return pg


def statement_counts(pg: PostgresServer, database: str) -> tuple[int, int]:
    """(statements other than transaction control, COMMIT + ROLLBACK) in `database` since the last reset."""
    row = psql(pg, database, (
        "SELECT coalesce(sum(calls) FILTER (WHERE upper(query) NOT IN ('BEGIN', 'COMMIT', 'ROLLBACK')), 0), "
        "coalesce(sum(calls) FILTER (WHERE upper(query) IN ('COMMIT', 'ROLLBACK')), 0) "
        "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database()"))
    statements, transactions = row.split("|")
    return int(statements), int(transactions)


def inbound_postgres(workdir: Path, seconds: float, texts: list[str], run_id: str) -> dict[str, Any]:
    pg = start_postgres_with_statements()
    out: dict[str, Any] = {}
    servers: list[inbound.Server] = []
    try:
        psql(pg, "postgres", "CREATE DATABASE sapa_bench")
        psql(pg, "sapa_bench", "CREATE EXTENSION pg_stat_statements")
        env = prepare_sapa(workdir, pg.url("sapa_bench"), reuse_nlu=True, overrides=BENCH_OVERRIDES)
        for processes in (1, 2):
            cpus, wrk_cpu = inbound.placement(processes)  # the first server keeps its core in the second round
            while len(servers) < processes:
                server = inbound.start_sapa(workdir, env, name=f"sapa{len(servers) + 1}", cpu=cpus[len(servers)])
                servers.append(server)
                server.wait_healthy()
            sessions = [sapa_sessions(server, SESSIONS) for server in servers]
            out[f"placement_{processes}"] = {"server_cpus": cpus, "wrk_cpu": wrk_cpu}
            print(f"== PostgreSQL: {processes} sapa serve ({', '.join(where(c) for c in cpus)}), wrk -c{CONNECTIONS} "
                  f"each ({where(wrk_cpu)}) for {seconds:.0f} s; PostgreSQL placed by the OS", flush=True)
            pg_cpu_before: list[float] = []

            def measuring_starts(readings: list[float] = pg_cpu_before) -> None:
                psql(pg, "sapa_bench", "SELECT pg_stat_statements_reset()")
                readings.append(inbound.process_tree_cpu_s(postmaster_pid(pg)))

            results, cpu, _, stored = measured_max_rate(f"pg{processes}", servers, sessions, texts, run_id,
                                                        workdir, seconds, pg.url("sapa_bench"), measuring_starts,
                                                        wrk_cpu=wrk_cpu)
            pg_cpu = inbound.process_tree_cpu_s(postmaster_pid(pg)) - pg_cpu_before[0]
            statements, transactions = statement_counts(pg, "sapa_bench")
            ok = stored  # handled: wrk leaves out the requests in flight when its time is up
            run = {
                "msg_per_s": round(sum(r.throughput for r in results), 1), "ok": sum(r.ok for r in results),
                "inbound_stored": stored,
                "non_2xx": sum(r.non_2xx for r in results),
                "per_process": [{**r.as_json(), "server_cpu_s": round(c, 2),
                                 "cpu_ms_per_message": round(c / r.ok * 1000, 3) if r.ok else None}
                                for r, c in zip(results, cpu, strict=True)],
                "cpu_ms_per_message": round(sum(cpu) / ok * 1000, 3) if ok else None,
                "postgres_cpu_ms_per_message": round(pg_cpu / ok * 1000, 3) if ok else None,
                "sql_statements_per_message": round(statements / ok, 2) if ok else None,
                "sql_transactions_per_message": round(transactions / ok, 2) if ok else None,
            }
            out[f"processes_{processes}"] = run
            print(f"   {run['msg_per_s']} msg/s, {run['cpu_ms_per_message']} ms Sapa CPU per message, "
                  f"{run['postgres_cpu_ms_per_message']} ms PostgreSQL CPU, {run['sql_statements_per_message']} "
                  f"statements and {run['sql_transactions_per_message']} transactions per message", flush=True)
        one, two = out["processes_1"]["msg_per_s"], out["processes_2"]["msg_per_s"]
        out["two_process_ratio"] = round(two / one, 3) if one else None
        out["messages_stored"] = inbound.messages_by_direction(pg.url("sapa_bench"))
    finally:
        for server in servers:
            server.stop()
        pg.stop()
    problems: dict[str, int] = {}
    for server in servers:
        log_problems(server, problems)
    out["sapa_log_problems"] = problems
    return out


# ---------------------------------------------------------------- the table


def inbound_values(sqlite: dict[str, Any] | None, postgres: dict[str, Any] | None) -> dict[str, float | None]:
    values: dict[str, Any] = {}
    if sqlite:
        values |= {
            "cpu_ms_per_message": sqlite["sapa"]["cpu_ms_per_message"], "bare_ratio": sqlite["ratio"],
            "cpu_ms_per_message_os_placed": (sqlite.get("os_placed") or {}).get("cpu_ms_per_message"),
            "sapa_msg_per_s": sqlite["sapa"]["msg_per_s"], "bare_req_per_s": sqlite["bare"]["msg_per_s"],
            "bare_cpu_ms_per_request": sqlite["bare"]["cpu_ms_per_request"],
            "bare_cpu_ratio": (round(sqlite["bare"]["cpu_ms_per_request"] / sqlite["sapa"]["cpu_ms_per_message"], 4)
                               if sqlite["bare"]["cpu_ms_per_request"] and sqlite["sapa"]["cpu_ms_per_message"]
                               else None),
            "p99_half_rate_ms": sqlite.get("half_rate", {}).get("p99_ms"),
            "p50_half_rate_ms": sqlite.get("half_rate", {}).get("p50_ms"),
        }
    if postgres:
        one, two = postgres["processes_1"], postgres["processes_2"]
        values |= {
            "sql_per_message": one["sql_statements_per_message"], "pg_cpu_ms_per_message": one["cpu_ms_per_message"],
            "pg_two_process_ratio": postgres["two_process_ratio"], "pg_msg_per_s_1": one["msg_per_s"],
            "pg_msg_per_s_2": two["msg_per_s"], "pg_cpu_ms_per_message_2": two["cpu_ms_per_message"],
            "pg_server_cpu_ms_per_message": one["postgres_cpu_ms_per_message"],
            "pg_transactions_per_message": one["sql_transactions_per_message"],
            "pg_two_process_cpu_ratio": two_process_cpu_ratio(one["cpu_ms_per_message"], two["cpu_ms_per_message"]),
        }
    return values


def two_process_cpu_ratio(one_ms: float | None, two_ms: float | None) -> float | None:
    """What two processes would do against one if each had a core of its own: twice the messages, each costing what
    it costs when two run. On 2 cores shared with wrk and PostgreSQL the throughput ratio measures the machine; the CPU
    per message still shows what running two costs each (lock waits, a second pool, caches shared)."""
    return round(2 * one_ms / two_ms, 3) if one_ms and two_ms else None


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    text = (f"{value:.2f}" if unit == "x" else f"{value:,.0f}" if abs(value) >= 100
            else f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}")
    return f"{text} {unit}" if unit in ("ms", "s") else f"{text}x" if unit == "x" else text


def print_table(values: dict[str, float | None], missing: dict[str, str], scaled_down: set[str]) -> None:
    """scaled_down: rows measured on a smaller volume than the goal names (--quick): no verdict."""
    header = ("figure", "this run", "issue 18 (before)", "goal", "met?")
    widths = (max(len(row.figure) for row in ROWS), 12, max(len(row.baseline) for row in ROWS),
              max(len(row.goal) for row in ROWS), 4)
    print("\n" + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in ROWS:
        value = values.get(row.key)
        if value is None and row.key in missing:
            why = missing[row.key]
            shown = next((word for word in ("skipped", "no wrk", "timed out", "missing", "fail") if word in why),
                         "no value")
            met = "—"
        else:
            shown = fmt(value, row.unit)
            met = ("—" if row.met is None or value is None else "n/a" if row.key in scaled_down
                   else "yes" if row.met(value) else "NO")
        print(" | ".join(c.ljust(w) for c, w in zip((row.figure, shown, row.baseline, row.goal, met), widths,
                                                    strict=True)))
    for key, why in missing.items():
        print(f"  {key}: {why}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5 s wrk runs, small external benches")
    parser.add_argument("--skip-postgres", action="store_true", help="no PostgreSQL runs")
    parser.add_argument("--only", choices=("inbound", "others"), help="only the inbound runs, or only the others")
    parser.add_argument("--seconds", type=float, default=None, help="each wrk run's length (default 20, quick 5)")
    args = parser.parse_args(argv)
    seconds = args.seconds or (5.0 if args.quick else 20.0)
    started_at = datetime.now(UTC)
    print(f"make bench: {started_at:%Y-%m-%d %H:%M} UTC, python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}" + (" (quick)" if args.quick else ""), flush=True)
    texts = inbound.message_plan(1000, seed=7)
    run_id = f"bench{int(time.time())}"
    results: dict[str, Any] = {"started_at": started_at.isoformat(timespec="seconds"), "quick": args.quick,
                               "wrk_seconds": seconds, "connections": CONNECTIONS, "sessions": SESSIONS}
    missing: dict[str, str] = {}
    sqlite: dict[str, Any] | None = None
    postgres: dict[str, Any] | None = None

    if args.only != "others":
        if not inbound.wrk_available():
            print(inbound.WRK_INSTALL_HINT, file=sys.stderr)
            results["inbound_error"] = inbound.WRK_INSTALL_HINT
            for key in ("cpu_ms_per_message", "bare_ratio", "bare_cpu_ratio", "p99_half_rate_ms", "sql_per_message",
                        "pg_cpu_ms_per_message", "pg_two_process_ratio", "pg_two_process_cpu_ratio"):
                missing[key] = "no wrk"
        else:
            workdir = Path(tempfile.mkdtemp(prefix="sapa-bench-run-"))
            try:
                (workdir / "sqlite").mkdir()
                sqlite = inbound_sqlite(workdir / "sqlite", seconds, texts, run_id)
            except Exception as exc:  # the table says so and the rest still runs
                print(f"   SQLite inbound FAILED: {exc}", file=sys.stderr)
                for key in ("cpu_ms_per_message", "bare_ratio", "bare_cpu_ratio", "p99_half_rate_ms"):
                    missing[key] = f"failed: {type(exc).__name__}"
                results["sqlite_error"] = str(exc)[-2000:]
            if args.skip_postgres:
                for key in ("sql_per_message", "pg_cpu_ms_per_message", "pg_two_process_ratio",
                            "pg_two_process_cpu_ratio"):
                    missing[key] = "skipped"
            else:
                try:
                    (workdir / "postgres").mkdir()
                    postgres = inbound_postgres(workdir / "postgres", seconds, texts, run_id)
                except Exception as exc:  # PostgresUnavailable too: no binaries on this machine
                    print(f"   PostgreSQL inbound FAILED: {exc}", file=sys.stderr)
                    for key in ("sql_per_message", "pg_cpu_ms_per_message", "pg_two_process_ratio",
                                "pg_two_process_cpu_ratio"):
                        missing[key] = f"failed: {type(exc).__name__}"
                    results["postgres_error"] = str(exc)[-2000:]
            shutil.rmtree(workdir, ignore_errors=True)
    results["sqlite"] = sqlite
    results["postgres"] = postgres
    values = inbound_values(sqlite, postgres)

    if args.only != "inbound":
        results["external"] = {}
        for bench in EXTERNAL_BENCHES:
            report = run_external(bench, args.quick)
            results["external"][bench.name] = report
            if "error" in report:
                print(f"   {bench.name} FAILED: {report['error']}", file=sys.stderr)
                for key in bench.rows:
                    missing[key] = f"{bench.name}: {report['error']}"
            else:
                for key, value in report["values"].items():
                    values[key] = value
                    if value is None:
                        missing[key] = f"{bench.name}: no {bench.rows[key]!r} in its JSON"

    scaled_down = {key for bench in EXTERNAL_BENCHES for key in bench.rows} if args.quick else set()
    print_table(values, missing, scaled_down)
    if scaled_down:
        print("  --quick: the scheduler, broadcast and outbox rows ran on a smaller volume than the goals name (n/a)")
    results["values"] = values
    results["goals_met"] = {row.key: row.met(v) for row in ROWS
                            if row.met and row.key not in scaled_down and (v := values.get(row.key)) is not None}
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(json.dumps(results, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
