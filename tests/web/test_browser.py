"""The web chat in a real headless browser against a real `sapa serve`.

Nothing here is faked: `sapa db upgrade` migrates a temporary SQLite database, `sapa serve` runs as a
subprocess (it trains or loads the NLU model at start), and Debian's chromium, driven by Playwright,
loads the page, sends a message and reloads. Playwright never downloads a browser here: it launches
/usr/bin/chromium. Locally a missing chromium skips with a loud reason; with SAPA_REQUIRE_BROWSER=1
it is a failure instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bot.templating import render
from tests.support.server import SapaServer, running_sapa

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0
REPLY_TIMEOUT_MS = 15_000
GREETING = "Selamat datang"  # from config.yml templates.greeting_new.id


def template(key: str, language: str, **variables: str) -> str:
    """A reply text exactly as the shipped config.yml words it (the server runs on a copy of it)."""
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    texts = config["templates"].get(key)
    if texts is None:
        pytest.fail(f"config.yml has no `{key}` template", pytrace=False)
    return render(texts[language], {"company": config["company"]["name"], **variables})


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


def _message_posts(context: Any) -> list[dict[str, Any]]:
    """The JSON bodies the page POSTs to /api/webchat/messages, in order."""
    bodies: list[dict[str, Any]] = []
    context.on("request", lambda request: bodies.append(request.post_data_json)
               if request.method == "POST" and request.url.endswith("/api/webchat/messages") else None)
    return bodies


@contextmanager
def _chat(browser: Any, server: SapaServer, locale: str) -> Iterator[tuple[Any, list[dict[str, Any]], list[str]]]:
    """A fresh browser context on the chat page, ready to write: (page, the bodies it POSTs, its JavaScript
    errors). On a failure the posted bodies, the errors and the server's log are printed."""
    from playwright.sync_api import expect

    context = browser.new_context(locale=locale)
    posts = _message_posts(context)
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    try:
        page.goto(f"{server.base_url}/", wait_until="domcontentloaded")
        # The input is enabled once the first sync is done: the session exists by then, created in Indonesian.
        expect(page.locator("#chat-input")).to_be_enabled(timeout=REPLY_TIMEOUT_MS)
        yield page, posts, page_errors
    except BaseException:
        print(f"message bodies posted: {posts}\nJavaScript errors: {page_errors}")
        print(f"----- sapa serve log ({server.log_path}) -----\n{server.log()}")
        raise
    finally:
        context.close()


def _write(page: Any, text: str) -> None:
    page.locator("#chat-input").fill(text)
    page.locator("#chat-send").click()


def _bot_says(page: Any, text: str) -> Any:
    """The bot bubble whose whole text is `text` (an exact match, not a substring)."""
    return page.locator(".msg.msg-out").filter(has_text=re.compile(rf"^\s*{re.escape(text)}\s*$"))


def test_a_page_switched_to_english_before_the_first_message_gets_english(browser: Any, server: SapaServer) -> None:
    from playwright.sync_api import expect

    with _chat(browser, server, "id-ID") as (page, posts, page_errors):
        page.locator("#lang-en").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("#chat-input")).to_have_attribute("placeholder", "Write a message…")

        _write(page, "hello")
        expect(_bot_says(page, template("greeting_new", "en"))).to_be_visible(timeout=REPLY_TIMEOUT_MS)
        notice = _bot_says(page, template("privacy_notice", "en"))
        expect(notice).to_be_visible()
        buttons = notice.locator("xpath=..").locator(".quick-reply")
        expect(buttons).to_have_text([template("button_agree", "en"), template("button_disagree", "en")])
        expect(page.locator(".msg.msg-out", has_text="Selamat")).to_have_count(0)

        # A word that says nothing about its language: only the page's language can make this English.
        _write(page, "Rina")
        expect(_bot_says(page, template("name_saved", "en", name="Rina"))).to_be_visible(timeout=REPLY_TIMEOUT_MS)

        # Back to Indonesian mid-chat: the customer chose no profile language, so the page decides again.
        page.locator("#lang-id").click()
        _write(page, "hi")
        expect(_bot_says(page, template("greeting", "id", name="Rina"))).to_be_visible(timeout=REPLY_TIMEOUT_MS)

        assert [body["language"] for body in posts] == ["en", "en", "id"], posts
        expect(page.locator("#chat-error")).to_be_hidden()
        assert not page_errors, f"JavaScript errors on the page: {page_errors}"


def _data_consent(server: SapaServer, session_token: str) -> bool | None:
    """The customer's current data-processing consent, read from the server's database."""
    from store import consents, create_database
    from store.customers import find_identity

    database = create_database(server.env["DATABASE_URL"])
    try:
        with database.unit_of_work(read_only=True) as session:
            identity = find_identity(session, "webchat", session_token)
            assert identity is not None, "the customer's web chat identity is not stored"
            return consents.current(session, identity.customer_id, "data_processing")
    finally:
        database.dispose()


def test_a_stale_web_chat_button_changes_nothing(browser: Any, server: SapaServer) -> None:
    from playwright.sync_api import expect

    with _chat(browser, server, "id-ID") as (page, posts, page_errors):
        _write(page, "halo")
        notice = _bot_says(page, template("privacy_notice", "id"))
        expect(notice).to_be_visible(timeout=REPLY_TIMEOUT_MS)
        notice_row = page.locator(".row-out").filter(has=notice)
        notice_id = int(notice.get_attribute("data-id") or 0)
        token = page.evaluate("() => localStorage.getItem('sapa.session_id')")

        notice_row.get_by_role("button", name=template("button_agree", "id"), exact=True).click()
        expect(_bot_says(page, template("consent_data_given", "id"))).to_be_visible(timeout=REPLY_TIMEOUT_MS)
        assert _data_consent(server, token) is True
        # The page shows the question as answered, with the chosen button marked; the others stay clickable.
        expect(notice_row.locator(".quick-replies")).to_have_class(re.compile(r"\banswered\b"))
        expect(notice_row.locator(".quick-reply.chosen")).to_have_text(template("button_agree", "id"))

        # The old "Tidak setuju" of the same, already answered question.
        stale = notice_row.get_by_role("button", name=template("button_disagree", "id"), exact=True)
        expect(stale).to_be_enabled()
        stale.click()
        expect(_bot_says(page, template("button_stale", "id"))).to_be_visible(timeout=REPLY_TIMEOUT_MS)
        expect(_bot_says(page, template("consent_data_refused", "id"))).to_have_count(0)
        assert _data_consent(server, token) is True, "a stale button changed the customer's consent"
        # The page said which message the pressed buttons belonged to.
        presses = [body for body in posts if body.get("payload")]
        assert [(b["payload"], b.get("button_of")) for b in presses] == [
            ("consent:data:yes", notice_id), ("consent:data:no", notice_id)], presses

        # After a reload the history shows the same: answered, "Setuju" chosen, the stale answer there.
        page.reload(wait_until="domcontentloaded")
        expect(_bot_says(page, template("button_stale", "id"))).to_be_visible(timeout=REPLY_TIMEOUT_MS)
        expect(notice_row.locator(".quick-reply.chosen")).to_have_text(template("button_agree", "id"))
        expect(page.locator("#chat-error")).to_be_hidden()
        assert not page_errors, f"JavaScript errors on the page: {page_errors}"


def test_links_in_our_messages_open_and_the_customers_words_stay_text(browser: Any, server: SapaServer) -> None:
    """An agent's file reaches a web chat customer as a link (handlers/desk.py): it must be clickable; a URL
    the customer typed is their own words and is never turned into a link."""
    from datetime import UTC, datetime

    from playwright.sync_api import expect

    from store import create_database
    from store.customers import find_identity
    from store.messages import add_outbound
    from store.models import Conversation

    with _chat(browser, server, "id-ID") as (page, posts, page_errors):
        _write(page, "halo, ini linknya https://contoh.example/pesanan/17")
        expect(_bot_says(page, template("privacy_notice", "id"))).to_be_visible(timeout=REPLY_TIMEOUT_MS)
        token = page.evaluate("() => localStorage.getItem('sapa.session_id')")
        link = f"{server.base_url}/media/1/0?exp=4102444800&sig=abc"
        database = create_database(server.env["DATABASE_URL"])
        try:
            with database.unit_of_work() as session:
                identity = find_identity(session, "webchat", token)
                assert identity is not None
                conversation = session.query(Conversation).filter_by(identity_id=identity.id).one()
                add_outbound(session, conversation, recipient=token, sender="agent", now=datetime.now(UTC),
                             text=f"Ini katalognya:\n📎 katalog.pdf: {link}")
        finally:
            database.dispose()
        anchor = page.locator(".msg.msg-out a")
        expect(anchor).to_have_attribute("href", link, timeout=REPLY_TIMEOUT_MS)  # the page polls for it
        expect(anchor).to_have_attribute("rel", "noopener noreferrer")
        expect(page.locator(".msg.msg-in a")).to_have_count(0)
        expect(page.locator(".msg.msg-in", has_text="https://contoh.example/pesanan/17")).to_be_visible()
        assert not page_errors, f"JavaScript errors on the page: {page_errors}"
        for name, (width, height) in {"desktop": (1280, 800), "phone": (390, 844)}.items():
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(server.workdir / f"links-{name}.png"))
