"""The staff console in a real browser, as test fixtures: staff accounts made by `sapa staff add`, a signed-in
agent, a customer writing in the web chat page, the Slack desk on the fake providers, and the checks every page
test makes (no request leaves 127.0.0.1, no JavaScript error, no horizontal scrolling on a phone).

Used by tests/web/test_console.py against one real `sapa serve` (tests/support/server.py `running_sapa`).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy import select

from bot.devtools.fake_providers import FakeProviders
from store import create_database
from store.customers import find_identity
from store.models import Conversation, Customer
from tests.support.server import SapaServer, running_sapa, sapa_command
from tests.support.slack import AGENTS, SECRETS

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
REPLY_TIMEOUT_MS = 15_000  # the web chat page polls every 3 s; a reply or a live update comes well within this
LOCAL = ("data", "blob", "about")  # schemes that never reach a network
PASSWORD = "kata-sandi-yang-panjang-1"
SETUP_LINK = re.compile(r"https?://\S+/console/setup\?token=\S+")


def console_config(workdir: Path, fakes: FakeProviders) -> str:
    """Write a config that extends the shipped config.yml for these tests; its file name.

    - the Slack desk on the fake Slack (Rina, Sari... of tests/support/slack.py AGENTS), so both faces of the desk
      meet;
    - the CSAT question a second after a resolution instead of an hour, the scheduler and outbox polling fast;
    - business hours every day, all day, so that what customers are promised does not depend on when tests run;
    - more web chat sessions per address: every page load opens one, all from 127.0.0.1.
    """
    overlay = {
        "extends": "config.yml",
        "channels": {"webchat": {"sessions_per_minute_per_address": 1000}},
        "slack": {"enabled": True, "api_base_url": fakes.slack_base_url, "queue_channel": "C0QUEUE",
                  "vip_channel": "C0VIP", "escalation_channel": "C0ESC", "agents": AGENTS},
        "surveys": {"csat_delay_minutes": 0.02},
        "scheduler": {"poll_interval_s": 0.2},
        "outbox": {"poll_interval_s": 0.2},
        "sla": {"business_hours": {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                                   "start": "00:00", "end": "23:59"},
                "holidays": []},
    }
    name = "config.console-test.yml"
    (workdir / name).write_text(yaml.safe_dump(overlay, allow_unicode=True), encoding="utf-8")
    return name


# --- staff accounts --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    name: str
    email: str
    role: str
    password: str = PASSWORD


@contextmanager
def console_server(workdir: Path, fakes: FakeProviders, *members: Member) -> Iterator[SapaServer]:
    """One `sapa serve` with the console on `console_config`, its Slack desk on the fake Slack, and these members
    of staff added through the CLI."""
    env = {name: value for name, value in SECRETS.items() if name.startswith("SLACK")}
    with running_sapa(workdir, config=console_config(workdir, fakes), env=env) as server:
        for member in members:
            add_staff(server, member)
        yield server


def add_staff(server: SapaServer, member: Member) -> None:
    """`sapa staff add NAME EMAIL --role ROLE --password-stdin` on the server's config and database."""
    done = subprocess.run([*sapa_command(), "staff", "add", member.name, member.email, "--role", member.role,
                           "--password-stdin"], input=member.password + "\n", cwd=server.workdir, env=server.env,
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        pytest.fail(f"`sapa staff add {member.email}` failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def setup_link(server: SapaServer) -> str:
    """The first admin's one-time link that `sapa serve` printed on start (no admin could sign in yet)."""
    found = SETUP_LINK.search(server.log())
    if found is None:
        pytest.fail(f"`sapa serve` printed no set-up link:\n{server.log()}")
    return found.group(0)


# --- what every page must (not) do ---------------------------------------------------------------------------------


@dataclass
class Watch:
    """Every request a browser context made and every JavaScript error of its pages."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, context: Any) -> None:
        context.on("request", lambda request: self.requests.append(request.url))
        context.on("page", lambda page: page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}")))

    def foreign(self) -> list[str]:
        return [url for url in self.requests
                if urlsplit(url).scheme not in LOCAL and urlsplit(url).hostname != "127.0.0.1"]

    def assert_clean(self) -> None:
        assert self.requests, "no requests were recorded at all"
        assert not self.foreign(), f"pages made requests to other hosts: {self.foreign()}"
        assert not self.errors, f"JavaScript errors: {self.errors}"


@contextmanager
def browsing(browser: Any, server: SapaServer, *, size: str = "desktop", locale: str = "id-ID",
             watch: Watch | None = None) -> Iterator[Any]:
    """A fresh browser context (its own cookies: one person) with one page; on a failure the server's log is
    printed. The caller checks `watch` (shared by the contexts of one story) at the end."""
    width, height = SIZES[size]
    # Not is_mobile: a mobile viewport widens itself to fit content that is too wide, hiding the very overflow
    # assert_fits looks for.
    context = browser.new_context(locale=locale, viewport={"width": width, "height": height})
    if watch is not None:
        watch.attach(context)
    page = context.new_page()
    try:
        yield page
    except BaseException:
        if watch is not None:
            print(f"requests: {watch.requests}\nJavaScript errors: {watch.errors}")
        print(f"----- sapa serve log ({server.log_path}) -----\n{server.log()}")
        raise
    finally:
        context.close()


def sign_in(page: Any, server: SapaServer, member: Member, path: str = "/console/inbox") -> None:
    """Sign in on the sign-in page a console page shows an anonymous visitor; land on `path`."""
    from playwright.sync_api import expect

    page.goto(f"{server.base_url}{path}", wait_until="domcontentloaded")
    expect(page.locator("h1")).to_have_text("Masuk")
    page.locator("#email").fill(member.email)
    page.locator("#password").fill(member.password)
    page.get_by_role("button", name="Masuk", exact=True).click()
    expect(page.locator(".topbar .who")).to_contain_text(member.name)
    assert urlsplit(page.url).path == path, page.url


def page_loads(page: Any) -> list[str]:
    """Every load of the page's main frame from now on: a live update must not add one."""
    loads: list[str] = []
    page.on("load", lambda _: loads.append(page.url))
    return loads


def assert_fits(page: Any, size: str) -> None:
    """On a phone nothing may need horizontal scrolling."""
    if size != "phone":
        return
    width = page.evaluate("document.documentElement.scrollWidth")
    inner = page.evaluate("window.innerWidth")
    assert width <= inner, f"{page.url} is {width}px wide on a {inner}px phone screen: it scrolls sideways"


def screenshot(page: Any, name: str, size: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"console-{name}-{size}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --- the customer ----------------------------------------------------------------------------------------------------


class ChatCustomer:
    """A customer on the web chat page (bot/static/webchat): writes and reads bubbles."""

    def __init__(self, page: Any, server: SapaServer) -> None:
        self.page, self.server = page, server

    def open(self) -> ChatCustomer:
        from playwright.sync_api import expect

        self.page.goto(f"{self.server.base_url}/", wait_until="domcontentloaded")
        expect(self.page.locator("#chat-input")).to_be_enabled(timeout=REPLY_TIMEOUT_MS)
        return self

    def write(self, text: str) -> None:
        """Send `text` and wait until Sapa answered it (one more bubble from Sapa)."""
        from playwright.sync_api import expect

        before = self.page.locator(".msg.msg-out").count()
        self.page.locator("#chat-input").fill(text)
        self.page.locator("#chat-send").click()
        expect(self.page.locator(".msg.msg-in", has_text=text)).to_be_visible()
        expect(self.page.locator(".msg.msg-out").nth(before)).to_be_visible(timeout=REPLY_TIMEOUT_MS)

    def say_only(self, text: str) -> None:
        """Send `text` to a person: the bot stays quiet while an agent holds the conversation."""
        from playwright.sync_api import expect

        self.page.locator("#chat-input").fill(text)
        self.page.locator("#chat-send").click()
        bubble = self.page.locator(".msg.msg-in", has_text=text)
        expect(bubble).to_have_attribute("data-id", re.compile(r"^\d+$"), timeout=REPLY_TIMEOUT_MS)  # stored

    def sees(self, text: str) -> Any:
        """The bubble from Sapa (bot or agent) containing `text`."""
        return self.page.locator(".msg.msg-out", has_text=text)

    def token(self) -> str:
        return str(self.page.evaluate("() => localStorage.getItem('sapa.session_id')"))

    def handed_off(self, name: str, request: str) -> None:
        """Greet, give a name, then ask for a person (or complain): the conversation goes to the agents."""
        self.write("halo")
        self.write(name)
        self.write(request)


# --- the server's database, read as the console would show it ------------------------------------------------------


def conversation_id(server: SapaServer, token: str) -> int:
    """The id of the web chat customer's (latest) conversation."""
    database = create_database(server.env["DATABASE_URL"])
    try:
        with database.unit_of_work(read_only=True) as session:
            identity = find_identity(session, "webchat", token)
            assert identity is not None, "the customer's web chat identity is not stored"
            found = session.execute(select(Conversation.id).where(Conversation.identity_id == identity.id)
                                    .order_by(Conversation.id.desc())).scalars().first()
            assert found is not None, "the customer has no conversation"
            return int(found)
    finally:
        database.dispose()


def desk_ts(server: SapaServer, conversation: int) -> str | None:
    """The ts of the conversation's card in Slack, once the outbox has posted it."""
    database = create_database(server.env["DATABASE_URL"])
    try:
        with database.unit_of_work(read_only=True) as session:
            found = session.get(Conversation, conversation)
            return found.desk_ts if found is not None else None
    finally:
        database.dispose()


def make_vip(server: SapaServer, token: str, tier: str = "gold", reason: str = "belanja Rp 120 juta setahun") -> int:
    """Mark the web chat customer a VIP, as the VIP rules would (VIP-1.1); their customer id."""
    from datetime import UTC, datetime

    database = create_database(server.env["DATABASE_URL"])
    try:
        with database.unit_of_work() as session:
            identity = find_identity(session, "webchat", token)
            assert identity is not None
            customer = session.get_one(Customer, identity.customer_id)
            customer.is_vip, customer.vip_tier, customer.vip_reason = True, tier, reason
            customer.vip_since = datetime.now(UTC)
            return int(customer.id)
    finally:
        database.dispose()


def customer_id(server: SapaServer, token: str) -> int:
    database = create_database(server.env["DATABASE_URL"])
    try:
        with database.unit_of_work(read_only=True) as session:
            identity = find_identity(session, "webchat", token)
            assert identity is not None
            return int(identity.customer_id)
    finally:
        database.dispose()


def slack_posts_pending(server: SapaServer) -> int:
    """How many posts to Slack wait in the outbox."""
    from sqlalchemy import func

    from store.models import OutboxItem

    database = create_database(server.env["DATABASE_URL"])
    try:
        with database.unit_of_work(read_only=True) as session:
            return int(session.execute(select(func.count()).select_from(OutboxItem)
                                       .where(OutboxItem.channel == "slack", OutboxItem.status == "pending"))
                       .scalar_one())
    finally:
        database.dispose()
