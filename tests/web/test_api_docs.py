"""/docs in a real headless chromium against a real `sapa serve`, with the network cut off (issue 16).

Every request that leaves 127.0.0.1 is aborted and recorded, as on a machine without internet: Swagger UI must
still draw the API from Sapa's own files and /openapi.json. Screenshots at desktop and phone width land in
var/screenshots/ for a person to look at. Chromium is the one of tests/web/test_browser.py (its `browser`
fixture: a missing chromium skips loudly, or fails with SAPA_REQUIRE_BROWSER=1).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.server import SapaServer, running_sapa

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
RENDER_TIMEOUT_MS = 15_000
LOCAL = ("data", "blob", "about")  # schemes that never reach a network
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SapaServer]:
    with running_sapa(tmp_path_factory.mktemp("sapa-docs")) as server:
        yield server


@pytest.mark.parametrize("size", SIZES)
def test_docs_draw_the_api_offline(browser: Any, server: SapaServer, size: str) -> None:
    from playwright.sync_api import expect

    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    requests: list[str] = []
    blocked: list[str] = []
    page_errors: list[str] = []

    def offline(route: Any) -> None:
        url = urlsplit(route.request.url)
        if url.scheme in LOCAL or url.hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", offline)
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    try:
        page.goto(f"{server.base_url}/docs", wait_until="domcontentloaded")
        expect(page.locator(".info .title")).to_contain_text("Sapa", timeout=RENDER_TIMEOUT_MS)
        expect(page).to_have_title("Sapa API")
        sessions = page.locator('.opblock-post .opblock-summary-path[data-path="/api/webchat/sessions"]')
        expect(sessions).to_be_visible()
        for path in ("/api/webchat/messages", "/api/transactions", "/api/broadcasts"):
            expect(page.locator(f'.opblock-post .opblock-summary-path[data-path="{path}"]')).to_be_visible()

        page.wait_for_load_state("networkidle")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"api-docs-{size}.png"))

        # Open the message operation: its request body is drawn from the schema in /openapi.json.
        message = page.locator("#operations-web_chat-post_message_api_webchat_messages_post")
        message.locator(".opblock-summary").click()
        body = message.locator(".opblock-section-request-body")
        expect(body).to_contain_text("client_message_id", timeout=RENDER_TIMEOUT_MS)
        expect(body).to_contain_text("application/json")
        page.screenshot(path=str(SCREENSHOTS / f"api-docs-{size}-message-body.png"))
        # Nothing the page cannot do without: no horizontal scrolling on a phone.
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a {width}px screen"

        foreign = [url for url in requests if urlsplit(url).scheme not in LOCAL
                   and urlsplit(url).hostname != "127.0.0.1"]
        assert not blocked, f"the docs asked other hosts (aborted): {blocked}"
        assert not foreign, f"the docs made requests to other hosts: {foreign}"
        assert any(url.endswith("/openapi.json") for url in requests), requests
        assert not page_errors, f"JavaScript errors on the page: {page_errors}"
    except BaseException:
        print(f"requests made by the page: {requests}\nblocked: {blocked}\nJavaScript errors: {page_errors}")
        print(f"----- sapa serve log ({server.log_path}) -----\n{server.log()}")
        raise
    finally:
        context.close()
