"""A real `sapa serve` subprocess on a fresh, migrated SQLite database, for tests that need real HTTP."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
START_TIMEOUT_S = 60.0


def sapa_command() -> list[str]:
    """The `sapa` console script of this interpreter's environment, else `python -m bot.cli`."""
    script = Path(sys.executable).parent / "sapa"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "bot.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SapaServer:
    base_url: str
    log_path: Path
    env: dict[str, str]
    workdir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(server log unreadable: {exc})"


@contextmanager
def running_sapa(workdir: Path, *, configs: tuple[str, ...] = ("config.yml",), config: str = "config.yml",
                 env: dict[str, str] | None = None, port: int | None = None,
                 database_url: str | None = None, serve_args: tuple[str, ...] = ()) -> Iterator[SapaServer]:
    """Copy the config file(s) into workdir, migrate, serve; stop it however the block ends.

    The database is workdir/sapa.db unless `database_url` names another (e.g. PostgreSQL shared by two servers).
    """
    for name in configs:
        shutil.copy(ROOT / name, workdir / name)
    full_env = {**os.environ, **(env or {}), "DATABASE_URL": database_url or f"sqlite:///{workdir / 'sapa.db'}",
                "SAPA_CONFIG": str(workdir / config), "PYTHONUNBUFFERED": "1"}
    upgrade = subprocess.run([*sapa_command(), "db", "upgrade"], cwd=workdir, env=full_env,
                             capture_output=True, text=True, timeout=120)
    if upgrade.returncode != 0:
        pytest.fail(f"`sapa db upgrade` failed ({upgrade.returncode}):\n{upgrade.stdout}\n{upgrade.stderr}")
    port = port or free_port()
    server = SapaServer(f"http://127.0.0.1:{port}", workdir / "serve.log", full_env, workdir)
    with server.log_path.open("wb") as log_file:
        # cwd=workdir: the NLU model cache lands in workdir/var/nlu, not in the checkout.
        server.process = subprocess.Popen(
            [*sapa_command(), "serve", "--host", "127.0.0.1", "--port", str(port), *serve_args],
            cwd=workdir, env=full_env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        _wait_healthy(server)
        yield server
    finally:
        _stop(server.process)


def _wait_healthy(server: SapaServer) -> None:
    assert server.process is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    last = "no answer yet"
    with httpx.Client(trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(f"`sapa serve` exited with {server.process.returncode} during start-up:\n{server.log()}")
            try:
                response = client.get(f"{server.base_url}/healthz")
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:300]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.25)
    pytest.fail(f"`sapa serve` not healthy after {START_TIMEOUT_S:.0f}s (last: {last}):\n{server.log()}")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def wait_for(probe: Callable[[], T], what: str = "the condition", timeout_s: float = 30.0) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
