"""Inbound benchmark: web chat messages through the real HTTP path of a real `sapa serve`.

    .venv/bin/python bench/inbound.py [--messages 2000] [--concurrency 16] [--postgres URL]

1. `sapa db upgrade` migrates a fresh SQLite database in a temporary folder (or the --postgres URL).
2. `sapa --log-level WARNING serve` starts (uvicorn, one process); we wait for GET /healthz = 200.
3. concurrency x sessions-per-worker web chat sessions are created (POST /api/webchat/sessions).
4. N messages are POSTed to /api/webchat/messages by C concurrent workers. Each worker owns its
   sessions and waits for each reply before sending the next message, like a person would; no
   session ever has two messages in flight.
5. The same load runs against a bare FastAPI app (one POST route returning a small JSON) served by
   uvicorn the same way (one process, --log-level warning): the framework's ceiling on this machine.

Prints a small table and a final JSON line. Throughput counts 200 responses only; every non-200
response and every transport error is counted and shown, never hidden.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from workspace import prepare_sapa, sapa_command

BENCH_DIR = Path(__file__).resolve().parent
START_TIMEOUT_S = 60.0

# What customers type, with rough weights. "complaint" hands the conversation to a human: later
# messages of that session are stored but get no bot reply, which is part of the realistic mix.
TEXTS: list[tuple[str, int]] = [
    ("halo", 14),
    ("selamat pagi min", 6),
    ("pesanan saya sudah sampai mana?", 10),
    ("cek status order INV-2024-00123 dong", 6),
    ("paket aku udh dikirim blm?", 6),
    ("jam buka toko jam berapa?", 6),
    ("ongkir ke surabaya brp kak", 5),
    ("bisa bayar pakai ovo?", 4),
    ("poin saya berapa ya?", 4),
    ("nama saya Budi Santoso", 4),
    ("terima kasih", 10),
    ("oke makasih kak", 5),
    ("mau komplain barang rusak", 2),
    ("hello, where is my order?", 3),
    ("thank you", 3),
    ("dadah", 2),
    ("asdfgh", 1),
]


@dataclass
class Result:
    name: str
    messages: int
    concurrency: int
    wall_s: float = 0.0
    client_cpu_s: float = 0.0  # CPU the load generator itself used: near wall_s means it was the bottleneck
    latencies_ms: list[float] = field(default_factory=list)  # every HTTP response, whatever its status
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # transport errors: no HTTP response at all
    samples: list[str] = field(default_factory=list)  # first few non-200 bodies / errors, verbatim
    no_reply: int = 0  # 200 responses with an empty "replies" list (e.g. after a handoff)
    finished_at: list[float] = field(default_factory=list)  # perf_counter() of each response

    @property
    def longest_stall_ms(self) -> float:
        """The longest time in which no request at all completed: the server stood still."""
        times = sorted(self.finished_at)
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0) * 1000

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def non_200(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)

    @property
    def slow(self) -> int:
        return sum(1 for ms in self.latencies_ms if ms > 1000)

    @property
    def throughput(self) -> float:
        return self.ok / self.wall_s if self.wall_s else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))  # nearest rank
        return ordered[rank]

    def as_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "concurrency": self.concurrency,
            "ok": self.ok,
            "non_200": self.non_200,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "transport_errors": dict(self.errors),
            "wall_s": round(self.wall_s, 3),
            "client_cpu_s": round(self.client_cpu_s, 3),
            "msg_per_s": round(self.throughput, 1),
            "p50_ms": round(self.percentile(50), 2),
            "p99_ms": round(self.percentile(99), 2),
            "max_ms": round(max(self.latencies_ms), 2) if self.latencies_ms else None,
            "over_1s": self.slow,
            "longest_stall_ms": round(self.longest_stall_ms, 1),
            "empty_replies": self.no_reply,
        }


# ---------------------------------------------------------------- the bare comparison app


def make_bare_app() -> FastAPI:
    """The web framework alone: one POST route that reads the JSON body and answers a small JSON."""
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.post("/api/webchat/messages")
    async def echo(request: Request) -> JSONResponse:
        data = await request.json()
        return JSONResponse({"message_id": 1, "duplicate": False, "replies": [], "echo": len(data)})

    return app


# ---------------------------------------------------------------- server processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server subprocess with its log in a file; always stopped by stop()."""

    def __init__(self, name: str, command: list[str], cwd: Path, env: dict[str, str], port: int) -> None:
        self.name = name
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = cwd / f"{name}.log"
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                command, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def wait_healthy(self) -> dict[str, Any]:
        deadline = time.monotonic() + START_TIMEOUT_S
        last = "no answer yet"
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
                try:
                    response = client.get(f"{self.base_url}/healthz")
                    if response.status_code == 200:
                        return dict(response.json())
                    last = f"HTTP {response.status_code}: {response.text[:300]}"
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                time.sleep(0.25)
        raise RuntimeError(f"{self.name} not healthy after {START_TIMEOUT_S:.0f}s ({last}):\n{self.log()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_sapa(workdir: Path, env: dict[str, str]) -> Server:
    port = free_port()
    command = [*sapa_command(), "--log-level", "WARNING", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return Server("sapa", command, workdir, env, port)


def start_bare(workdir: Path) -> Server:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(BENCH_DIR),
        "--factory",
        "inbound:make_bare_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return Server("bare", command, workdir, env, port)


# ---------------------------------------------------------------- load


def client(concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0), trust_env=False)


async def create_sessions(base_url: str, count: int, concurrency: int) -> list[str]:
    sessions: list[str] = []
    failures: Counter[str] = Counter()
    semaphore = asyncio.Semaphore(concurrency)
    async with client(concurrency) as http:

        async def one() -> None:
            async with semaphore:
                try:
                    response = await http.post(f"{base_url}/api/webchat/sessions", json={"language": "id"})
                except httpx.HTTPError as exc:
                    failures[type(exc).__name__] += 1
                    return
                if response.status_code == 201:
                    sessions.append(response.json()["session_id"])
                else:
                    failures[f"HTTP {response.status_code}: {response.text[:200]}"] += 1

        await asyncio.gather(*(one() for _ in range(count)))
    if failures:
        print(f"  session creation failures: {dict(failures)}")
    if len(sessions) < count:
        raise RuntimeError(f"only {len(sessions)} of {count} web chat sessions could be created")
    return sessions


def message_plan(messages: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = [t for t, _ in TEXTS]
    weights = [w for _, w in TEXTS]
    return rng.choices(texts, weights=weights, k=messages)


async def run_load(
    name: str, base_url: str, sessions: list[str], texts: list[str], concurrency: int, run_id: str
) -> Result:
    """Worker w sends messages w, w+C, w+2C, ... to its own sessions, one at a time."""
    result = Result(name, len(texts), concurrency)
    url = f"{base_url}/api/webchat/messages"

    async def worker(http: httpx.AsyncClient, w: int) -> None:
        for i in range(w, len(texts), concurrency):
            body = {"session_id": sessions[i % len(sessions)], "client_message_id": f"{run_id}-{i}", "text": texts[i]}
            started = time.perf_counter()
            try:
                response = await http.post(url, json=body)
            except httpx.HTTPError as exc:
                result.errors[type(exc).__name__] += 1
                if len(result.samples) < 5:
                    result.samples.append(f"{type(exc).__name__}: {exc}")
                continue
            finished = time.perf_counter()
            result.latencies_ms.append((finished - started) * 1000)
            result.finished_at.append(finished)
            result.statuses[response.status_code] += 1
            if response.status_code != 200:
                if len(result.samples) < 5:
                    result.samples.append(f"HTTP {response.status_code}: {response.text[:300]}")
            elif not response.json().get("replies"):
                result.no_reply += 1

    async with client(concurrency) as http:
        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(http, w) for w in range(concurrency)))
        result.wall_s = time.perf_counter() - started
        result.client_cpu_s = time.process_time() - cpu_started
    return result


def outbox_drain(base_url: str, limit_s: float = 60.0) -> dict[str, Any]:
    """/healthz right after the load, then how long the outbox took to empty (the replies' delivery)."""
    started = time.perf_counter()
    first: dict[str, Any] = {}
    with httpx.Client(trust_env=False, timeout=10) as http:
        while True:
            response = http.get(f"{base_url}/healthz")
            body = {"status_code": response.status_code, **response.json()}
            first = first or body
            pending = body.get("outbox", {}).get("pending")
            elapsed = time.perf_counter() - started
            if pending == 0 or elapsed > limit_s:
                return {
                    **first,
                    "drain_s": round(elapsed, 2) if pending == 0 else None,
                    "outbox_last": body.get("outbox"),
                }
            time.sleep(0.25)


def problems_in_log(log: str) -> tuple[Counter[str], list[str]]:
    """Warnings, errors and tracebacks a server logged during the run."""
    kinds: Counter[str] = Counter()
    lines: list[str] = []
    for line in log.splitlines():
        lowered = line.lower()
        flagged = False
        for marker in (" warning ", " error ", " critical ", "traceback", "database is locked", "deadlock"):
            if marker in lowered:
                kinds[marker.strip()] += 1
                flagged = True
        if flagged and len(lines) < 20:
            lines.append(line[:300])
    return kinds, lines


# ---------------------------------------------------------------- report


def print_table(results: list[Result]) -> None:
    header = (
        f"{'target':<6} {'msgs':>6} {'conc':>5} {'200':>6} {'non-200':>8} {'errors':>7} "
        f"{'wall s':>7} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'>1s':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.name:<6} {r.messages:>6} {r.concurrency:>5} {r.ok:>6} {r.non_200:>8} "
            f"{sum(r.errors.values()):>7} {r.wall_s:>7.2f} {r.throughput:>8.1f} "
            f"{r.percentile(50):>8.1f} {r.percentile(99):>8.1f} "
            f"{max(r.latencies_ms, default=float('nan')):>8.1f} {r.slow:>5}"
        )
    for r in results:
        print(
            f"{r.name}: longest stretch with no response completing: {r.longest_stall_ms:.0f} ms; "
            f"load generator CPU {r.client_cpu_s:.1f}s of {r.wall_s:.1f}s wall"
        )
    for r in results:
        if r.non_200 or r.errors:
            print(f"\n{r.name}: statuses {dict(sorted(r.statuses.items()))}, transport errors {dict(r.errors)}")
            for sample in r.samples:
                print(f"  e.g. {sample}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages to send (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent senders (default 16)")
    parser.add_argument(
        "--sessions-per-worker",
        type=int,
        default=8,
        help="web chat sessions per sender (default 8: 128 sessions at concurrency 16, "
        "about 16 messages each with the default 2000 messages)",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=None,
        help="use this DATABASE_URL (postgresql+psycopg://...) instead of a temporary SQLite file",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed for the message mix")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database)")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.concurrency < 1 or args.sessions_per_worker < 1:
        parser.error("--messages, --concurrency and --sessions-per-worker must be at least 1")

    workdir = Path(tempfile.mkdtemp(prefix="sapa-bench-inbound-"))
    database_url = args.postgres or f"sqlite:///{workdir / 'sapa.db'}"
    backend = "postgresql" if args.postgres else "sqlite"
    texts = message_plan(args.messages, args.seed)
    run_id = f"bench{int(time.time())}"
    results: list[Result] = []
    health_after: dict[str, Any] = {}
    log_problems: Counter[str] = Counter()
    print(
        f"Sapa inbound benchmark: {args.messages} web chat messages, concurrency {args.concurrency}, "
        f"{backend} database, python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(f"work folder: {workdir}")
    try:
        env = prepare_sapa(workdir, database_url, reuse_nlu=True)
        sapa = start_sapa(workdir, env)
        try:
            t0 = time.perf_counter()
            sapa.wait_healthy()
            print(f"sapa serve healthy after {time.perf_counter() - t0:.1f}s")
            sessions = asyncio.run(
                create_sessions(sapa.base_url, args.concurrency * args.sessions_per_worker, args.concurrency)
            )
            print(f"created {len(sessions)} web chat sessions; sending {args.messages} messages ...")
            results.append(asyncio.run(run_load("sapa", sapa.base_url, sessions, texts, args.concurrency, run_id)))
            health_after = outbox_drain(sapa.base_url)
        finally:
            sapa.stop()
        log_problems, problem_lines = problems_in_log(sapa.log())
        if log_problems:
            print(f"sapa serve logged problems during the run: {dict(log_problems)}")
            for line in problem_lines:
                print(f"  {line}")

        bare = start_bare(workdir)
        try:
            bare.wait_healthy()
            fake_sessions = [f"bare-session-{n:04d}-xxxxxxxxxxxx" for n in range(len(sessions))]
            results.append(asyncio.run(run_load("bare", bare.base_url, fake_sessions, texts, args.concurrency, run_id)))
        finally:
            bare.stop()
    except Exception as exc:
        print(f"\nBENCHMARK FAILED: {exc}", file=sys.stderr)
        print(f"logs and database kept in {workdir}", file=sys.stderr)
        return 1

    print()
    print_table(results)
    sapa_result, bare_result = results
    ratio = sapa_result.throughput / bare_result.throughput if bare_result.throughput else float("nan")
    print(f"\nthroughput ratio sapa / bare FastAPI: {ratio:.3f}")
    print(
        f"sapa: {sapa_result.no_reply} of {sapa_result.ok} answered messages got no bot reply "
        "(conversations handed to a human)"
    )
    outbox = health_after.get("outbox", {})
    print(
        f"sapa /healthz after the run: {health_after.get('status')} (HTTP {health_after.get('status_code')}), "
        f"outbox pending {outbox.get('pending')}, failed {outbox.get('failed')}; "
        + (
            f"outbox empty {health_after['drain_s']:.1f}s later"
            if health_after.get("drain_s") is not None
            else f"outbox NOT empty after 60s: {health_after.get('outbox_last')}"
        )
    )
    summary = {
        "benchmark": "inbound",
        "backend": backend,
        "messages": args.messages,
        "concurrency": args.concurrency,
        "sessions": args.concurrency * args.sessions_per_worker,
        "sapa": sapa_result.as_json(),
        "bare": bare_result.as_json(),
        "ratio": round(ratio, 4),
        "sapa_log_problems": dict(log_problems),
        "sapa_health_after": {
            "status": health_after.get("status"),
            "outbox": outbox,
            "outbox_drain_s": health_after.get("drain_s"),
        },
    }
    if args.keep:
        print(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(summary, sort_keys=True))
    return 0 if not (sapa_result.non_200 or sapa_result.errors or bare_result.non_200 or bare_result.errors) else 3


if __name__ == "__main__":
    sys.exit(main())
