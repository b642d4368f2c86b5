"""The browser every page test drives: Debian's headless chromium through Playwright (never `playwright install`).

Locally a missing chromium skips with a loud reason; with SAPA_REQUIRE_BROWSER=1 (CI) it is a failure instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
