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
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.server import SapaServer, running_sapa

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
    with running_sapa(tmp_path_factory.mktemp("sapa-serve")) as server:
        yield server


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
