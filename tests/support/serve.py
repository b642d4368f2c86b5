"""Real `sapa serve` processes that are killed and restarted under load, and a provider-like webhook load.

Used by the crash tests (tests/crash/test_crash_recovery.py):

- `Lives`: one `sapa serve` at a time on a fixed port (so webhook senders keep their URL), started with
  `running_sapa` (tests/support/server.py, shared with the broadcast end-to-end test), SIGKILLed with `kill()`
  and started again with `start()`; each life's log is kept as serve-<n>.log.
- `WebhookLoad`: signed Twilio (SMS, WhatsApp) and Telegram webhooks sent by a few threads, each message
  re-delivered until it is acknowledged with a 2xx, as the providers do (connection refused or reset, timeouts
  and 5xx are retried with backoff; any other 4xx is recorded as refused and not retried).
- `restart_postgres_immediately`: `pg_ctl restart -m immediate` on the throwaway server (it keeps its port).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx

from tests.support.pgserver import PostgresServer
from tests.support.providers import ProviderCustomer
from tests.support.server import SapaServer, _stop, _wait_healthy, free_port, running_sapa, sapa_command

CHANNELS = ("sms", "whatsapp", "telegram")


class Lives:
    """`sapa serve` on one port, one process at a time: start, SIGKILL, start again.

    The first start is `running_sapa`'s (config copied, `sapa db upgrade`, serve, wait for /healthz); a restart
    only serves again, as a supervisor would (the schema is already there), so that a restart costs one process
    start-up, not two."""

    def __init__(self, workdir: Path, *, config: str, env: dict[str, str], database_url: str,
                 port: int | None = None) -> None:
        self.workdir, self.config, self.env, self.database_url = workdir, config, env, database_url
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.lives = 0
        self.kills = 0
        self._stack: ExitStack | None = None
        self.server: SapaServer | None = None

    def start(self) -> SapaServer:
        assert not self.alive(), "a life is already running"
        if self.lives == 0:
            stack = ExitStack()
            self.server = stack.enter_context(running_sapa(self.workdir, config=self.config, env=self.env,
                                                           port=self.port, database_url=self.database_url))
            self._stack = stack
        else:
            assert self.server is not None
            with self.server.log_path.open("wb") as log_file:
                self.server.process = subprocess.Popen(
                    [*sapa_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                    cwd=self.workdir, env=self.server.env, stdout=log_file, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL)
            _wait_healthy(self.server)
        self.lives += 1
        return self.server

    def alive(self) -> bool:
        return self.server is not None and self.server.process is not None and self.server.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (the outbox may be between a provider's answer and recording it)."""
        assert self.server is not None and self.server.process is not None
        self.server.process.kill()
        self.server.process.wait(timeout=30)
        self.kills += 1
        self._keep_log()

    def stop(self) -> None:
        """SIGTERM (running_sapa's clean stop), if a life is running."""
        if self.server is not None and self.alive():
            _stop(self.server.process)
            self._keep_log()
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def _keep_log(self) -> None:
        log = self.workdir / "serve.log"
        if log.exists():
            shutil.copy(log, self.workdir / f"serve-{self.lives}.log")

    def logs(self) -> str:
        """Every life's log, in order (the running one's too)."""
        parts = []
        for n in range(1, self.lives + 1):
            kept = self.workdir / f"serve-{n}.log"
            path = kept if kept.exists() else self.workdir / "serve.log"
            if path.exists():
                parts.append(f"===== life {n} =====\n" + path.read_text(encoding="utf-8", errors="replace"))
        return "\n".join(parts)


@dataclass
class Inbound:
    """One message a customer writes, and what delivering it took."""

    channel: str
    address: str
    text: str
    provider_id: str  # what Sapa stores as messages.provider_message_id (Telegram: "<chat>:<message_id>")
    path: str
    body: bytes
    headers: dict[str, str]
    deliveries: int = 0  # HTTP attempts, the acknowledged one included
    acked: bool = False
    refused: int | None = None  # a 4xx that is not retried
    errors: list[str] = field(default_factory=list)  # why earlier deliveries were not acknowledged


def customer_messages(customers: int, per_customer: int, texts: tuple[str, ...], *, seed: int,
                      first_telegram_id: int = 7_000_000) -> list[list[Inbound]]:
    """`customers` distinct people, channels taken in turn (SMS, WhatsApp, Telegram), each writing
    `per_customer` messages picked from `texts` with a seeded generator. Every message has its own provider id."""
    rng = random.Random(seed)
    people: list[list[Inbound]] = []
    update_id = first_telegram_id
    for index in range(customers):
        channel = CHANNELS[index % len(CHANNELS)]
        address = str(800_000 + index) if channel == "telegram" else f"+62812{index:07d}"
        person = ProviderCustomer(cast(Any, None), cast(Any, None), channel, address, name=f"Pelanggan {index}")
        messages = []
        for n in range(per_customer):
            text = rng.choice(texts)
            if channel == "telegram":
                update_id += 1
                message_id = str(update_id)
                provider_id = f"{address}:{message_id}"
            else:
                message_id = provider_id = f"SM{seed:04d}{index:06d}{n:04d}".ljust(34, "0")
            path, body, headers = person.request(text, message_id=message_id)
            messages.append(Inbound(channel, address, text, provider_id, path, body, headers))
        people.append(messages)
    return people


class WebhookLoad:
    """Deliver every message as a provider would: a few concurrent senders, each customer's messages in order
    (one sender per customer), each message re-delivered until a 2xx acknowledges it."""

    def __init__(self, base_url: str, people: list[list[Inbound]], *, senders: int = 4,
                 give_up_s: float = 180.0, timeout_s: float = 15.0) -> None:
        self.base_url, self.people, self.give_up_s, self.timeout_s = base_url, people, give_up_s, timeout_s
        self.messages = [m for person in people for m in person]
        self._lanes: list[list[list[Inbound]]] = [people[i::senders] for i in range(senders)]
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.acked = 0
        self._cancelled = threading.Event()
        self.failures: list[str] = []  # a sender that crashed: the test must see it

    def start(self) -> WebhookLoad:
        for lane_no, lane in enumerate(self._lanes):
            thread = threading.Thread(target=self._run, args=(lane,), name=f"webhook-sender-{lane_no}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def cancel(self) -> None:
        """Stop re-delivering (a test that failed midway must not leave senders retrying for minutes)."""
        self._cancelled.set()

    def join(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def _run(self, lane: list[list[Inbound]]) -> None:
        try:
            with httpx.Client(base_url=self.base_url, trust_env=False, timeout=self.timeout_s) as client:
                rounds = max((len(person) for person in lane), default=0)
                for n in range(rounds):  # customers interleaved, each one's messages in order
                    for person in lane:
                        if n < len(person):
                            self._deliver(client, person[n])
        except Exception as exc:  # pragma: no cover - reported by the test
            with self._lock:
                self.failures.append(f"{threading.current_thread().name}: {type(exc).__name__}: {exc}")

    def _deliver(self, client: httpx.Client, message: Inbound) -> None:
        deadline, delay = time.monotonic() + self.give_up_s, 0.1
        while time.monotonic() < deadline and not self._cancelled.is_set():
            message.deliveries += 1
            try:
                response = client.post(message.path, content=message.body, headers=message.headers)
            except httpx.TransportError as exc:  # refused (no server), reset (killed mid-request), timeout
                message.errors.append(type(exc).__name__)
            else:
                if 200 <= response.status_code < 300:
                    message.acked = True
                    with self._lock:
                        self.acked += 1
                    return
                if response.status_code < 500 and response.status_code != 429:
                    message.refused = response.status_code
                    message.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                    return
                message.errors.append(f"HTTP {response.status_code}")
            self._cancelled.wait(delay)
            delay = min(delay * 2, 1.0)
        message.errors.append("cancelled" if self._cancelled.is_set() else f"gave up after {self.give_up_s:.0f}s")


def restart_postgres_immediately(server: PostgresServer) -> float:
    """`pg_ctl restart -m immediate`: every backend is killed without a checkpoint (crash recovery runs on start),
    and the server comes back on the same port with the options it was started with. Returns the seconds taken."""
    started = time.monotonic()
    server._run(str(server.bindir / "pg_ctl"), "-D", str(server.data), "-m", "immediate", "-l",
                str(server.root / "server.log"), "-w", "-t", "60", "restart")
    return time.monotonic() - started
