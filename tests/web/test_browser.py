"""The web chat in a real headless browser against a real `sapa serve`.

Nothing here is faked: `sapa db upgrade` migrates a temporary SQLite database, `sapa serve` runs as a
subprocess (it trains or loads the NLU model at start), and Debian's chromium, driven by Playwright,
loads the page, sends a message and reloads. Playwright never downloads a browser here: it launches
/usr/bin/chromium. Locally a missing chromium skips with a loud reason; with SAPA_REQUIRE_BROWSER=1
it is a failure instead.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 60.0
REPLY_TIMEOUT_MS = 15_000
GREETING = "Selamat datang"  # from config.yml templates.greeting_new.id


def _browser_missing(reason: str) -> None:
    message = f"chromium UNAVAILABLE, browser tests skipped: {reason}"
    if os.environ.get("SAPA_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{message} (SAPA_REQUIRE_BROWSER=1 makes this a failure)", pytrace=False)
    pytest.skip(f"!!! {message} !!!")


def _sapa_command() -> list[str]:
    """The `sapa` console script of this interpreter's environment, else `python -m bot.cli`."""
    script = Path(sys.executable).parent / "sapa"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "bot.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SapaServer:
    base_url: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(server log unreadable: {exc})"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian chromium. Checked before the server starts, so a skip costs nothing."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        _browser_missing(f"{CHROMIUM} not found; install it with `apt-get install -y chromium`")
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _browser_missing(f"the playwright package is not installed ({exc})")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            _browser_missing(f"{CHROMIUM} did not launch: {str(exc).splitlines()[0]}")
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SapaServer]:
    """A real `sapa serve` on a fresh, migrated SQLite database in a temporary folder."""
    workdir = tmp_path_factory.mktemp("sapa-serve")
    config = workdir / "config.yml"
    shutil.copy(ROOT / "config.yml", config)
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{workdir / 'sapa.db'}",
        "SAPA_CONFIG": str(config),
        "PYTHONUNBUFFERED": "1",
    }
    sapa = _sapa_command()
    upgrade = subprocess.run(
        [*sapa, "db", "upgrade"], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )
    if upgrade.returncode != 0:
        pytest.fail(f"`sapa db upgrade` failed ({upgrade.returncode}):\n{upgrade.stdout}\n{upgrade.stderr}")

    port = _free_port()
    server = SapaServer(f"http://127.0.0.1:{port}", workdir / "serve.log")
    with server.log_path.open("wb") as log_file:
        # cwd=workdir: the NLU model cache lands in workdir/var/nlu, not in the checkout.
        server.process = subprocess.Popen(
            [*sapa, "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
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


def test_webchat_greets_and_keeps_history_across_reload(browser: Any, server: SapaServer) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(locale="id-ID")
    requests: list[str] = []
    page_errors: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    try:
        page.goto(f"{server.base_url}/", wait_until="domcontentloaded")
        expect(page.locator("#chat-input")).to_be_enabled(timeout=REPLY_TIMEOUT_MS)

        page.locator("#chat-input").fill("halo")
        page.locator("#chat-send").click()

        greeting = page.locator(".msg.msg-out", has_text=GREETING)
        customer = page.locator(".msg.msg-in").filter(has_text=re.compile(r"^\s*halo\s*$"))
        expect(greeting).to_have_count(1, timeout=REPLY_TIMEOUT_MS)
        expect(greeting).to_be_visible()
        expect(customer).to_have_count(1)
        expect(customer).to_be_visible()
        # The customer's bubble was stored: the optimistic bubble got its server id.
        expect(customer).to_have_attribute("data-id", re.compile(r"^\d+$"))
        bubbles_before = page.locator(".msg").count()

        page.reload(wait_until="domcontentloaded")
        # The history comes back from the server (session id kept in localStorage), each bubble once.
        expect(greeting).to_have_count(1, timeout=REPLY_TIMEOUT_MS)
        expect(greeting).to_be_visible()
        expect(customer).to_have_count(1)
        expect(customer).to_be_visible()
        expect(page.locator(".msg")).to_have_count(bubbles_before)
        assert page.locator(".msg").first.inner_text().strip() == "halo", "history is not in order"
        expect(page.locator("#chat-error")).to_be_hidden()

        foreign = [
            url
            for url in requests
            if urlsplit(url).scheme not in ("data", "blob", "about") and urlsplit(url).hostname != "127.0.0.1"
        ]
        assert not foreign, f"the page made requests to other hosts: {foreign}"
        assert requests, "no requests were recorded at all"
        assert not page_errors, f"JavaScript errors on the page: {page_errors}"
    except BaseException:
        print(f"requests made by the page: {requests}")
        print(f"JavaScript errors: {page_errors}")
        print(f"----- sapa serve log ({server.log_path}) -----\n{server.log()}")
        raise
    finally:
        context.close()
