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

bench/run.py (`make bench`) uses the parts below for issue 18's figures: wrk with a generated Lua script
(write_wrk_script, start_wrk/finish_wrk) for the maximum rate, run_fixed_rate for an open-loop run, and
process_cpu_s for a server's CPU time from /proc.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from workspace import BENCH_OVERRIDES, prepare_sapa, sapa_command

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

    def transport_error(self, exc: Exception) -> None:
        """A request that got no HTTP response at all: counted by kind, the first few kept verbatim."""
        self.errors[type(exc).__name__] += 1
        if len(self.samples) < 5:
            self.samples.append(f"{type(exc).__name__}: {exc}")

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


def placement(servers: int) -> tuple[list[int | None], int | None]:
    """A core of its own for each server and one for wrk, while the machine has them (else None: the OS places it).

    `sapa serve --cpu` is the deployment docs/deployment.md recommends (bot/cpu_affinity.py); wrk on a core of its
    own keeps the load generator out of the measured server's caches. The bare endpoint gets the same treatment."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return [None] * servers, None
    server_cpus: list[int | None] = [cpus[n] if n < len(cpus) else None for n in range(servers)]
    return server_cpus, (cpus[-1] if len(cpus) > servers else None)


def on_cpu(cpu: int | None) -> Callable[[], None] | None:
    """A Popen preexec_fn that keeps the child (and its threads) on `cpu`; None leaves it to the OS."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


class Server:
    """A server subprocess with its log in a file; always stopped by stop()."""

    def __init__(self, name: str, command: list[str], cwd: Path, env: dict[str, str], port: int,
                 preexec_fn: Callable[[], None] | None = None) -> None:
        self.name = name
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = cwd / f"{name}.log"
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                command, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=preexec_fn,
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


def start_sapa(workdir: Path, env: dict[str, str], name: str = "sapa", cpu: int | None = None) -> Server:
    port = free_port()
    command = [*sapa_command(), "--log-level", "WARNING", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if cpu is not None:
        command += ["--cpu", str(cpu)]
    return Server(name, command, workdir, env, port)


def start_bare(workdir: Path, cpu: int | None = None) -> Server:
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
    return Server("bare", command, workdir, env, port, preexec_fn=on_cpu(cpu))


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
                result.transport_error(exc)
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


# ---------------------------------------------------------------- wrk (maximum rate) and a fixed-rate sender

WRK_INSTALL_HINT = "wrk is not installed: `apt-get update && apt-get install -y wrk` (Debian/Ubuntu package `wrk`)"
WRK_JSON_MARKER = "WRK_JSON "

# The Lua script wrk runs. request() is called for every request (a dynamic script), so each POST gets a fresh
# client_message_id; thread ids come from setup(). done() prints one JSON line with the summary and percentiles.
WRK_LUA = """-- generated by bench/inbound.py: web chat messages, a fresh client_message_id per request
local sessions = {%(sessions)s}
local texts = {%(texts)s}
local run_id = "%(run_id)s"
local headers = {["Content-Type"] = "application/json"}
local counter = 0
local threads_started = 0

function setup(thread)
  threads_started = threads_started + 1
  thread:set("tid", threads_started)
end

function request()
  counter = counter + 1
  local i = counter * %(threads)d + (tid or 1)
  local body = '{"session_id":"' .. sessions[i %% #sessions + 1] .. '","client_message_id":"' .. run_id
    .. '-' .. (tid or 1) .. '-' .. counter .. '","text":"' .. texts[i %% #texts + 1] .. '"}'
  return wrk.format("POST", "/api/webchat/messages", headers, body)
end

function done(summary, latency, requests)
  local p = {}
  for _, q in ipairs({50, 75, 90, 99, 99.9}) do
    p[#p + 1] = string.format('"%%s":%%.0f', tostring(q), latency:percentile(q))
  end
  local e = summary.errors
  io.write(string.format('%(marker)s{"duration_us":%%.0f,"requests":%%.0f,"bytes":%%.0f,'
    .. '"errors":{"connect":%%.0f,"read":%%.0f,"write":%%.0f,"status":%%.0f,"timeout":%%.0f},'
    .. '"latency_us":{"min":%%.0f,"max":%%.0f,"mean":%%.1f,"stdev":%%.1f,"percentiles":{%%s}}}\\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency.stdev, table.concat(p, ",")))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _lua_strings(values: list[str]) -> str:
    for value in values:  # the texts and ids go into JSON and Lua literals unescaped
        if not value.isascii() or any(c in value for c in '"\\\n'):
            raise ValueError(f"{value!r} cannot go into the generated Lua as it is")
    return ", ".join(f'"{v}"' for v in values)


def write_wrk_script(path: Path, sessions: list[str], texts: list[str], run_id: str, threads: int = 1) -> Path:
    """Messages i = 1, 2, ... go to session i mod len(sessions) with text i mod len(texts). With 16 connections and
    ~128 sessions two messages of one session are rarely, but possibly, in flight at once (the server handles it)."""
    script = WRK_LUA % {
        "sessions": _lua_strings(sessions), "texts": _lua_strings(texts), "run_id": run_id,
        "threads": threads, "marker": WRK_JSON_MARKER,
    }
    path.write_text(script, encoding="utf-8")
    return path


@dataclass
class WrkResult:
    name: str
    connections: int
    duration_s: float
    requests: int  # responses of any status
    non_2xx: int
    socket_errors: dict[str, int]
    latency_ms: dict[str, float]  # min, mean, max and p50/p75/p90/p99/p99.9 (wrk: from each request's send)
    output: str = ""

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx

    @property
    def throughput(self) -> float:
        return self.ok / self.duration_s if self.duration_s else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "connections": self.connections, "duration_s": round(self.duration_s, 2), "requests": self.requests,
            "ok": self.ok, "non_2xx": self.non_2xx, "socket_errors": self.socket_errors,
            "msg_per_s": round(self.throughput, 1), "latency_ms": self.latency_ms,
        }


def start_wrk(base_url: str, script: Path, seconds: float, connections: int, threads: int = 1,
              cpu: int | None = None) -> subprocess.Popen[str]:
    command = [
        "wrk", "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
        "--timeout", "30s", "-s", str(script), f"{base_url}/api/webchat/messages",
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=on_cpu(cpu))


def finish_wrk(name: str, process: subprocess.Popen[str], connections: int, timeout_s: float) -> WrkResult:
    output, _ = process.communicate(timeout=timeout_s)
    line = next((ln for ln in output.splitlines() if ln.startswith(WRK_JSON_MARKER)), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output}")
    data = json.loads(line[len(WRK_JSON_MARKER):])
    latency = data["latency_us"]
    errors = data["errors"]
    return WrkResult(
        name=name, connections=connections, duration_s=data["duration_us"] / 1e6, requests=int(data["requests"]),
        non_2xx=int(errors.pop("status")), socket_errors={k: int(v) for k, v in errors.items() if v},
        latency_ms={
            "min": latency["min"] / 1000, "mean": round(latency["mean"] / 1000, 2), "max": latency["max"] / 1000,
            **{f"p{q}": v / 1000 for q, v in latency["percentiles"].items()},
        },
        output=output,
    )


def run_wrk(name: str, base_url: str, script: Path, seconds: float, connections: int,
            cpu: int | None = None) -> WrkResult:
    return finish_wrk(name, start_wrk(base_url, script, seconds, connections, cpu=cpu), connections, seconds + 60)


async def run_fixed_rate(
    name: str, base_url: str, sessions: list[str], texts: list[str], rate: float, seconds: float, run_id: str
) -> Result:
    """Open loop: message i is due at start + i / rate whether or not earlier ones were answered, and its latency
    counts from that due time, so time spent queued (in this sender or the server) is part of it."""
    count = max(1, int(rate * seconds))
    result = Result(name, count, concurrency=0)
    url = f"{base_url}/api/webchat/messages"
    in_flight = 0
    peak = 0

    async def one(http: httpx.AsyncClient, i: int, due: float) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        body = {"session_id": sessions[i % len(sessions)], "client_message_id": f"{run_id}-{i}",
                "text": texts[i % len(texts)]}
        try:
            response = await http.post(url, json=body)
        except httpx.HTTPError as exc:
            result.transport_error(exc)
            return
        finally:
            in_flight -= 1
        finished = time.perf_counter()
        result.latencies_ms.append((finished - due) * 1000)
        result.finished_at.append(finished)
        result.statuses[response.status_code] += 1
        if response.status_code != 200 and len(result.samples) < 5:
            result.samples.append(f"HTTP {response.status_code}: {response.text[:300]}")

    async with client(256) as http:
        started, cpu_started = time.perf_counter(), time.process_time()
        tasks = []
        for i in range(count):
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(http, i, due)))
        await asyncio.gather(*tasks)
        result.wall_s = time.perf_counter() - started
        result.client_cpu_s = time.process_time() - cpu_started
    result.concurrency = peak  # the most requests this sender had open at once
    return result


# ---------------------------------------------------------------- server CPU


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int, *, with_reaped_children: bool = False) -> float:
    """utime + stime of a process, every thread (/proc/<pid>/stat), optionally plus its waited-for children."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state is fields[0], utime is fields[11]
    ticks = int(fields[11]) + int(fields[12])
    if with_reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def process_tree_cpu_s(pid: int) -> float:
    """A process, its reaped children, and its live children (a PostgreSQL postmaster and its backends)."""
    total = process_cpu_s(pid, with_reaped_children=True)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                total += process_cpu_s(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # a backend that exited between listing and reading
    return total


def messages_by_direction(database_url: str) -> dict[str, int]:
    """Messages stored per direction: did every 200 store its message, and how many replies went out."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT direction, count(*) FROM messages GROUP BY direction"))
            return {str(direction): int(count) for direction, count in rows}
    finally:
        engine.dispose()


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
        env = prepare_sapa(workdir, database_url, reuse_nlu=True, overrides=BENCH_OVERRIDES)
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
