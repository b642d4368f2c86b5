"""The staff console (/console) in real browsers against one real `sapa serve`, with the Slack desk on the fake
Slack: the stories staff live, end to end (issue 16).

- A customer in the web chat and an agent in the console, two browsers: the request appears in the inbox live, the
  agent claims, replies, keeps a note, sees the customer's next message live and resolves; the customer hears all
  of it but the note, then the satisfaction question.
- Half Slack, half browser: a Slack agent claims the card, a supervisor in the browser takes over and replies (the
  reply is mirrored in the card's thread), the Slack agent resolves; the console shows each step.
- Roles: marketing sees no inbox and no transcript, even by a guessed address; an anonymous visitor gets the
  sign-in page.
- Keyboard only: sign in, reach the queue, open a conversation and reply with Tab and Enter, focus always visible.
- Screenshots of every page at desktop and phone width in var/screenshots/console-*.png, for a person to look at;
  on a phone no page may scroll sideways.

Every page is checked for requests leaving 127.0.0.1 and for JavaScript errors (there must be none). Chromium is
Debian's (tests/web/conftest.py `browser`: a missing one skips loudly, or fails with SAPA_REQUIRE_BROWSER=1).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.devtools.fake_providers import FakeProviders
from tests.support.console import (
    REPLY_TIMEOUT_MS,
    SIZES,
    ChatCustomer,
    Member,
    Watch,
    add_staff,
    assert_fits,
    browsing,
    console_server,
    conversation_id,
    customer_id,
    desk_ts,
    make_vip,
    page_loads,
    screenshot,
    setup_link,
    sign_in,
    slack_posts_pending,
)
from tests.support.server import SapaServer, wait_for
from tests.support.slack import Slack
from tests.support.webchat import WebchatUser

pytestmark = pytest.mark.browser

LIVE_MS = REPLY_TIMEOUT_MS  # a live page polls the database every second; the web chat page every 3 s
COMPANY = "PT Contoh Sejahtera"
ADMIN = Member("Ayu Pratiwi", "ayu@contoh.example", "admin")
AGENT = Member("Dewi Anggraini", "dewi@contoh.example", "customer_service")
SUPERVISOR = Member("Putri Wulandari", "putri@contoh.example", "supervisor")
MARKETING = Member("Maya Kusuma", "maya@contoh.example", "marketing")
COMPLAINT = "mesin cuci saya bocor terus, saya kecewa"
ASK_FOR_A_PERSON = "saya mau bicara dengan petugas"


@pytest.fixture(scope="module")
def fakes() -> Iterator[FakeProviders]:
    with FakeProviders() as fakes:
        yield fakes


@pytest.fixture(scope="module")
def server(browser: Any, fakes: FakeProviders, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SapaServer]:
    """One `sapa serve` for the module, its Slack desk on the fake Slack (`browser` first: a skip costs nothing)."""
    workdir = tmp_path_factory.mktemp("sapa-console")
    with console_server(workdir, fakes) as server:
        yield server


@pytest.fixture(scope="module")
def staff(browser: Any, server: SapaServer) -> dict[str, Member]:
    """The first admin through the set-up link `sapa serve` printed (its page photographed at both sizes), then
    everyone else with `sapa staff add`."""
    from playwright.sync_api import expect

    link = setup_link(server)
    watch = Watch()
    for size in SIZES:
        with browsing(browser, server, size=size, watch=watch) as page:
            page.goto(link, wait_until="domcontentloaded")
            expect(page.locator("h1")).to_have_text("Buat admin pertama")
            assert_fits(page, size)
            screenshot(page, "setup", size)
            if size == "desktop":
                page.locator("#name").fill(ADMIN.name)
                page.locator("#email").fill(ADMIN.email)
                page.locator("#password").fill(ADMIN.password)
                page.locator("#confirm_password").fill(ADMIN.password)
                page.get_by_role("button", name="Buat admin dan masuk").click()
                expect(page.locator("h1")).to_have_text("Kotak masuk")  # an admin starts at the inbox
                expect(page.locator(".topbar .who")).to_have_text(f"Masuk sebagai {ADMIN.name} (Admin)")
    watch.assert_clean()
    for member in (AGENT, SUPERVISOR, MARKETING):
        add_staff(server, member)
    return {member.role: member for member in (ADMIN, AGENT, SUPERVISOR, MARKETING)}


def _notice(page: Any) -> Any:
    return page.locator("p.notice[role=status]").first


def _action(page: Any, name: str) -> Any:
    return page.locator(f'form.action-buttons button[name="name"][value="{name}"]')


# --- 1. the whole story, in two browsers -----------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "name"), [("desktop", "Budi"), ("phone", "Wati")])
def test_a_customer_in_the_web_chat_and_an_agent_in_the_console(
        browser: Any, server: SapaServer, staff: dict[str, Member], size: str, name: str) -> None:
    from playwright.sync_api import expect

    watch = Watch()
    with browsing(browser, server, size=size, watch=watch) as desk, \
            browsing(browser, server, size=size, watch=watch) as chat:
        sign_in(desk, server, AGENT)
        if desk.locator('button[name="availability"][value="online"]').count():
            desk.locator('button[name="availability"][value="online"]').click()
            expect(_notice(desk)).to_have_text("Anda online.")
        expect(desk.locator("#my-availability")).to_have_text("Online")
        loads = page_loads(desk)
        desk.evaluate("window.sapaTestStayed = true")  # gone if the page reloads

        customer = ChatCustomer(chat, server).open()
        customer.handed_off(name, COMPLAINT)
        expect(customer.sees(f"Mohon maaf atas ketidaknyamanan ini, {name}. Keluhan Anda sudah kami catat dengan "
                             "nomor tiket TKT-")).to_be_visible()

        # The request appears in the open inbox by itself.
        row = desk.locator("#queue .queue-row", has_text=name)
        expect(row).to_be_visible(timeout=LIVE_MS)
        expect(row).to_contain_text("Menunggu agen")
        expect(row).to_contain_text(COMPLAINT)
        assert loads == [] and desk.evaluate("window.sapaTestStayed") is True, "the inbox reloaded to show the row"
        assert_fits(desk, size)

        row.locator("a.queue-link").click()
        expect(desk.locator("#conv-title")).to_contain_text(name)
        expect(desk.locator("#conv-head")).to_contain_text("Belum ada yang menangani")
        expect(desk.locator("#transcript li.msg.in", has_text=COMPLAINT)).to_be_visible()

        _action(desk, "claim").click()
        expect(_notice(desk)).to_have_text("Anda mengambil percakapan ini.")
        expect(desk.locator("#conv-head")).to_contain_text(f"Ditangani {AGENT.name}")
        expect(customer.sees(f"Halo, saya {AGENT.name} dari {COMPANY}. Saya yang akan membantu Anda sekarang.")
               ).to_be_visible(timeout=LIVE_MS)

        answer = f"Mohon maaf, {name}. Teknisi kami datang besok pukul 10.00 untuk memeriksa mesin cucinya."
        desk.locator("#reply-text").fill(answer)
        desk.get_by_role("button", name="Kirim balasan").click()
        expect(_notice(desk)).to_have_text("Balasan terkirim ke pelanggan.")
        expect(desk.locator("#transcript li.msg.out", has_text=answer)).to_contain_text(AGENT.name)
        expect(customer.sees(answer)).to_be_visible(timeout=LIVE_MS)

        note = f"Catatan: garansi {name} masih berlaku sampai Maret."
        desk.locator("#reply-text").fill(note)
        desk.get_by_role("button", name="Simpan sebagai catatan").click()
        expect(_notice(desk)).to_have_text("Catatan disimpan (pelanggan tidak melihatnya).")
        kept = desk.locator("#transcript li.msg.note", has_text=note)
        expect(kept).to_be_visible()
        expect(kept.locator(".msg-who")).to_have_text(re.compile(rf"^\s*Catatan\s+{AGENT.name}\s*$"))

        # The customer writes again: the open conversation shows it without reloading.
        loads = page_loads(desk)
        desk.evaluate("window.sapaTestStayed = true")
        again = "Baik, besok saya di rumah sepanjang hari."
        customer.say_only(again)
        expect(desk.locator("#transcript li.msg.in", has_text=again)).to_be_visible(timeout=LIVE_MS)
        assert loads == [] and desk.evaluate("window.sapaTestStayed") is True, "the page reloaded for a message"
        assert_fits(desk, size)

        _action(desk, "resolve").click()
        expect(_notice(desk)).to_have_text("Selesai; pelanggan akan ditanya kepuasannya.")
        expect(desk.locator("[data-status]")).to_have_text("Selesai")
        expect(desk.get_by_text("Percakapan ini sudah selesai.")).to_be_visible()
        expect(desk.locator("#reply-form")).to_have_count(0)

        expect(customer.sees("Permasalahan Anda telah kami selesaikan (tiket TKT-")).to_be_visible(timeout=LIVE_MS)
        question = customer.sees(f"Terima kasih telah menghubungi {COMPANY}, {name}. Seberapa puas Anda dengan "
                                 "penanganan tiket TKT-")
        expect(question).to_be_visible(timeout=LIVE_MS)
        expect(chat.locator(".row-out").filter(has=question).locator(".quick-reply")).to_have_text(
            ["1", "2", "3", "4", "5"])
        # The note never reached the customer, however many polls the page made.
        expect(chat.get_by_text(note)).to_have_count(0)
        expect(chat.get_by_text("garansi")).to_have_count(0)
        assert_fits(chat, size)
        watch.assert_clean()


# --- 2. half Slack, half browser -----------------------------------------------------------------------------------


def test_a_slack_agent_and_a_supervisor_in_the_console_work_one_conversation(
        browser: Any, server: SapaServer, fakes: FakeProviders, staff: dict[str, Member]) -> None:
    from playwright.sync_api import expect

    def thread(ts: str) -> list[str]:
        return [str(r.params.get("text")) for r in fakes.sent("slack") if r.params.get("thread_ts") == ts]

    watch = Watch()
    with browsing(browser, server, watch=watch) as desk, browsing(browser, server, watch=watch) as chat, \
            httpx.Client(base_url=server.base_url, trust_env=False, timeout=10) as http:
        slack = Slack(http, fakes, None, None)  # type: ignore[arg-type]  # the same signed requests, over HTTP
        sign_in(desk, server, SUPERVISOR)
        customer = ChatCustomer(chat, server).open()
        customer.handed_off("Joko", ASK_FOR_A_PERSON)
        expect(customer.sees("Baik, Joko. Percakapan ini kami teruskan ke petugas kami.")).to_be_visible()
        conversation = conversation_id(server, customer.token())
        ts = str(wait_for(lambda: desk_ts(server, conversation), "the card in Slack"))
        card = [r.params for r in fakes.sent("slack") if r.params.get("channel") == "C0QUEUE"
                and r.params.get("blocks") and not r.params.get("thread_ts")]
        assert any(p.get("text") == "Joko needs an agent (webchat)" for p in card), card

        desk.goto(f"{server.base_url}/console/conversations/{conversation}", wait_until="domcontentloaded")
        head = desk.locator("#conv-head")
        expect(head).to_contain_text("Belum ada yang menangani")

        # Rina claims in Slack: the open page follows.
        assert slack.press("U0RINA", "claim", conversation, ts) == 200
        expect(head).to_contain_text("Ditangani Rina", timeout=LIVE_MS)
        expect(desk.locator("[data-status]")).to_have_text("Dengan agen")
        expect(customer.sees(f"Halo, saya Rina dari {COMPANY}.")).to_be_visible(timeout=LIVE_MS)

        # The supervisor takes it over in the browser: the customer and the Slack thread hear it.
        _action(desk, "claim").wait_for(state="detached")  # held by Rina: no plain claim, only take over
        _action(desk, "takeover").click()
        expect(_notice(desk)).to_have_text("Anda mengambil alih percakapan ini.")
        expect(head).to_contain_text(f"Ditangani {SUPERVISOR.name}")
        expect(customer.sees(f"Halo, saya {SUPERVISOR.name} dari {COMPANY}.")).to_be_visible(timeout=LIVE_MS)
        wait_for(lambda: any(f"{SUPERVISOR.name} (supervisor) took over this conversation from <@U0RINA>" in text
                             for text in thread(ts)), "the takeover in the card's thread")
        wait_for(lambda: any(SUPERVISOR.name in str(r.params.get("blocks")) and r.params.get("ts") == ts
                             for r in fakes.requests("slack", "chat.update")), "the card showing the new holder")

        answer = "Halo Joko, saya cek pesanan Anda sekarang; mohon tunggu lima menit."
        desk.locator("#reply-text").fill(answer)
        desk.get_by_role("button", name="Kirim balasan").click()
        expect(_notice(desk)).to_have_text("Balasan terkirim ke pelanggan.")
        expect(customer.sees(answer)).to_be_visible(timeout=LIVE_MS)
        wait_for(lambda: f"💬 *{SUPERVISOR.name}* (web): {answer}" in thread(ts), "the reply mirrored in Slack")
        mirrored = [r.params for r in fakes.sent("slack") if r.params.get("thread_ts") == ts
                    and answer in str(r.params.get("text"))]
        assert [p.get("channel") for p in mirrored] == ["C0QUEUE"], mirrored

        # A note Rina writes in the thread shows in the open page, live, as a note; the customer never sees it.
        loads = page_loads(desk)
        assert slack.reply("U0RINA", ts, "note: pelanggan lama, pernah komplain bulan lalu") == 200
        note = desk.locator("#transcript li.msg.note", has_text="pelanggan lama, pernah komplain bulan lalu")
        expect(note).to_be_visible(timeout=LIVE_MS)
        expect(note.locator(".msg-who")).to_have_text(re.compile(r"^\s*Catatan\s+Rina\s*$"))
        assert loads == [], "the page reloaded to show a note"

        # Rina resolves in Slack: the open page shows the conversation closed.
        assert slack.press("U0RINA", "resolve", conversation, ts) == 200
        expect(desk.locator("[data-status]")).to_have_text("Selesai", timeout=LIVE_MS)
        expect(desk.get_by_text("Percakapan ini sudah selesai.")).to_be_visible()
        expect(desk.locator("#reply-form")).to_have_count(0)
        expect(customer.sees("Permasalahan Anda telah kami selesaikan.")).to_be_visible(timeout=LIVE_MS)
        expect(chat.get_by_text("pelanggan lama")).to_have_count(0)
        wait_for(lambda: "✅ Resolved by Rina" in thread(ts), "the resolution in the card's thread")

        desk.goto(f"{server.base_url}/console/inbox", wait_until="domcontentloaded")
        expect(desk.locator("#queue .queue-row", has_text="Joko")).to_have_count(0)
        desk.goto(f"{server.base_url}/console/inbox?status=closed", wait_until="domcontentloaded")
        expect(desk.locator("#queue .queue-row", has_text="Joko")).to_contain_text("Selesai")
        watch.assert_clean()


def test_a_claim_in_the_console_before_the_card_reaches_slack_still_shows_in_its_thread(
        browser: Any, server: SapaServer, fakes: FakeProviders, staff: dict[str, Member]) -> None:
    from playwright.sync_api import expect

    with browsing(browser, server) as desk, \
            httpx.Client(base_url=server.base_url, trust_env=False, timeout=10) as http:
        sign_in(desk, server, AGENT)
        wait_for(lambda: slack_posts_pending(server) == 0, "the earlier Slack posts to go out")
        fakes.fail_next("slack", 429, method="chat.postMessage", retry_after=3)  # Slack is slow to take the card
        customer = WebchatUser(http, None)  # type: ignore[arg-type]
        customer.say("halo")
        customer.say("Yusuf")
        customer.say(ASK_FOR_A_PERSON)
        conversation = conversation_id(server, customer.session_id)
        desk.goto(f"{server.base_url}/console/conversations/{conversation}", wait_until="domcontentloaded")
        _action(desk, "claim").click()
        expect(_notice(desk)).to_have_text("Anda mengambil percakapan ini.")
        ts = str(wait_for(lambda: desk_ts(server, conversation), "the card in Slack"))
        wait_for(lambda: any(r.params.get("thread_ts") == ts and r.params.get("text") == f"✋ Claimed by {AGENT.name}"
                             for r in fakes.sent("slack")), "the claim in the card's thread", timeout_s=5)


# --- 3. roles ---------------------------------------------------------------------------------------------------------


def test_marketing_sees_no_inbox_nor_transcript_and_strangers_get_the_sign_in_page(
        browser: Any, server: SapaServer, staff: dict[str, Member]) -> None:
    from playwright.sync_api import expect

    secret = "nomor rekening saya 1234567890, tolong dicek"
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=10) as http:
        customer = WebchatUser(http, None)  # type: ignore[arg-type]
        customer.say("halo")
        customer.say("Rahayu")
        customer.say(secret)
        customer.say(ASK_FOR_A_PERSON)
    conversation = conversation_id(server, customer.session_id)
    owner = customer_id(server, customer.session_id)

    watch = Watch()
    with browsing(browser, server, watch=watch) as stranger:
        response = stranger.goto(f"{server.base_url}/console/inbox", wait_until="domcontentloaded")
        assert response is not None and response.status == 401
        expect(stranger.locator("h1")).to_have_text("Masuk")
        expect(stranger.locator("#queue")).to_have_count(0)
        response = stranger.goto(f"{server.base_url}/console/conversations/{conversation}",
                                 wait_until="domcontentloaded")
        assert response is not None and response.status == 401
        expect(stranger.get_by_text("Rahayu")).to_have_count(0)
        # Signing in there leads back where they were going.
        stranger.locator("#email").fill(AGENT.email)
        stranger.locator("#password").fill(AGENT.password)
        stranger.get_by_role("button", name="Masuk", exact=True).click()
        expect(stranger.locator("#conv-title")).to_contain_text("Rahayu")

    with browsing(browser, server, watch=watch) as marketer:
        sign_in(marketer, server, MARKETING, path="/console")
        nav = marketer.locator(".topbar nav")
        expect(nav).to_contain_text(f"Masuk sebagai {MARKETING.name} (Pemasaran)")
        expect(nav.get_by_role("link", name="Kotak masuk")).to_have_count(0)
        for path in ("/console/inbox", f"/console/conversations/{conversation}", f"/console/customers/{owner}",
                     "/console/tickets", "/console/staff"):
            response = marketer.goto(f"{server.base_url}{path}", wait_until="domcontentloaded")
            assert response is not None and response.status == 403, path
            expect(marketer.locator("h1")).to_have_text("Tidak diizinkan")
            expect(marketer.locator("p.notice.error")).to_have_text("Peran Anda tidak mengizinkan ini.")
            expect(marketer.get_by_text("Rahayu")).to_have_count(0)
        # Nor through the parts the live pages fetch.
        for path in (f"/console/conversations/{conversation}/messages?after=0", "/console/inbox/queue",
                     f"/console/conversations/{conversation}/events"):
            answer = marketer.request.get(f"{server.base_url}{path}")
            assert answer.status == 403, (path, answer.status)
            assert "1234567890" not in answer.text() and "Rahayu" not in answer.text(), path
    watch.assert_clean()


# --- 4. keyboard only -------------------------------------------------------------------------------------------------


def _focus_is_visible(page: Any) -> str:
    """What has the focus, failing unless the focus ring shows (`:focus-visible` with a real outline)."""
    state = page.evaluate("""() => {
        const el = document.activeElement;
        const style = getComputedStyle(el);
        const box = el.getBoundingClientRect();
        return {tag: el.tagName, text: (el.innerText || el.value || el.getAttribute('aria-label') || '').trim(),
                href: el.getAttribute('href'), ring: el.matches(':focus-visible') && style.outlineStyle !== 'none'
                && parseFloat(style.outlineWidth) >= 2, inView: box.width > 0 && box.height > 0
                && box.right > 0 && box.left < innerWidth};
    }""")
    label = f"{state['tag']} {state['text'][:40]!r} {state['href'] or ''}"
    assert state["tag"] != "BODY", "the focus fell off the page"
    assert state["ring"], f"no visible focus ring on {label}"
    assert state["inView"], f"the focused {label} is not on screen"
    return label


def _tab_to(page: Any, selector: str, limit: int = 80) -> list[str]:
    """Press Tab until `selector` has the focus, checking the ring at every stop; the stops passed."""
    stops = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        stops.append(_focus_is_visible(page))
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return stops
    raise AssertionError(f"{limit} presses of Tab never reached {selector}; stops: {stops}")


def test_an_agent_signs_in_and_replies_by_keyboard_alone(
        browser: Any, server: SapaServer, staff: dict[str, Member]) -> None:
    from playwright.sync_api import expect

    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=10) as http:
        customer = WebchatUser(http, None)  # type: ignore[arg-type]
        customer.say("halo")
        customer.say("Sinta")
        customer.say(ASK_FOR_A_PERSON)
        conversation = conversation_id(server, customer.session_id)

        watch = Watch()
        with browsing(browser, server, watch=watch) as page:
            page.goto(f"{server.base_url}/console/inbox", wait_until="domcontentloaded")
            expect(page.locator("#email")).to_be_focused()  # the sign-in form is ready to type into
            page.keyboard.type(AGENT.email)
            page.keyboard.press("Tab")
            expect(page.locator("#password")).to_be_focused()
            _focus_is_visible(page)
            page.keyboard.type(AGENT.password)
            page.keyboard.press("Enter")
            expect(page.locator("h1")).to_have_text("Kotak masuk")

            first = _tab_to(page, "a.skip")  # the first stop skips the menus
            assert len(first) == 1, first
            page.keyboard.press("Enter")
            _tab_to(page, f'a.queue-link[href="/console/conversations/{conversation}"]')
            page.keyboard.press("Enter")
            expect(page.locator("#conv-title")).to_contain_text("Sinta")

            _tab_to(page, "#reply-text")
            answer = "Halo Sinta, saya Dewi. Ada yang bisa saya bantu?"
            page.keyboard.type(answer)
            _tab_to(page, "#reply-form button[type=submit]:not([formaction])", limit=3)
            page.keyboard.press("Enter")
            expect(_notice(page)).to_have_text("Balasan terkirim ke pelanggan.")
            expect(page.locator("#conv-head")).to_contain_text(f"Ditangani {AGENT.name}")
            wait_for(lambda: any(m["text"] == answer for m in customer.history()), "the reply in the web chat")
        watch.assert_clean()


def test_resolving_a_plain_request_for_a_person_promises_no_survey(
        browser: Any, server: SapaServer, staff: dict[str, Member]) -> None:
    """The satisfaction survey follows a resolved ticket; a plain request for a person has none. The console says
    only "Resolved" then, and the customer is not asked (the test server asks 1.2 s after a resolve)."""
    from playwright.sync_api import expect

    with browsing(browser, server) as desk, \
            httpx.Client(base_url=server.base_url, trust_env=False, timeout=10) as http:
        customer = WebchatUser(http, None)  # type: ignore[arg-type]
        customer.say("halo")
        customer.say("Yudi")
        customer.say(ASK_FOR_A_PERSON)
        conversation = conversation_id(server, customer.session_id)
        sign_in(desk, server, AGENT, path=f"/console/conversations/{conversation}")
        _action(desk, "claim").click()
        _action(desk, "resolve").click()
        expect(_notice(desk)).to_have_text("Selesai.")
        time.sleep(3)
        assert not any("Seberapa puas Anda" in m["text"] for m in customer.history())


def test_switching_language_on_a_one_time_link_keeps_the_link(
        browser: Any, server: SapaServer, staff: dict[str, Member]) -> None:
    from playwright.sync_api import expect

    with browsing(browser, server) as admin:
        sign_in(admin, server, ADMIN, path="/console/staff")
        admin.locator("#name").fill("Nadia Putri")
        admin.locator("#email").fill("nadia@contoh.example")
        admin.locator("#role").select_option("customer_service")
        admin.get_by_role("button", name="Tambah", exact=True).click()
        link = admin.locator("code.once-link").inner_text().strip()
    with browsing(browser, server) as newcomer:
        newcomer.goto(link, wait_until="domcontentloaded")
        expect(newcomer.locator("h1")).to_have_text("Buat kata sandi")
        newcomer.get_by_role("link", name="English").click()
        expect(newcomer.locator("h1")).to_have_text("Set your password")
        expect(newcomer.locator("#new_password")).to_be_visible()


# --- 5. screenshots of every page -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def showcase(browser: Any, server: SapaServer, staff: dict[str, Member]) -> dict[str, int]:
    """An inbox with several conversations (a VIP among them) and one conversation with a reply and a note."""
    from playwright.sync_api import expect

    ids: dict[str, int] = {}
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=10) as http:
        for name, words, vip in (("Rahmat", "paket saya rusak saat diterima, saya kecewa sekali", False),
                                 ("Lestari", ASK_FOR_A_PERSON, True),
                                 ("Agus", ASK_FOR_A_PERSON, False)):
            customer = WebchatUser(http, None)  # type: ignore[arg-type]
            customer.say("halo")
            customer.say(name)
            if vip:
                make_vip(server, customer.session_id)
            customer.say(words)
            ids[name] = conversation_id(server, customer.session_id)
            ids[f"{name}.customer"] = customer_id(server, customer.session_id)
    with browsing(browser, server) as page:
        sign_in(page, server, AGENT, path=f"/console/conversations/{ids['Rahmat']}")
        _action(page, "claim").click()
        expect(_notice(page)).to_have_text("Anda mengambil percakapan ini.")
        page.locator("#reply-text").fill("Mohon maaf, Pak Rahmat. Boleh kirim foto paketnya? Kami ganti segera.")
        page.get_by_role("button", name="Kirim balasan").click()
        expect(_notice(page)).to_have_text("Balasan terkirim ke pelanggan.")
        page.locator("#reply-text").fill("Kurir JNE; cek dengan gudang Cikarang sebelum mengganti.")
        page.get_by_role("button", name="Simpan sebagai catatan").click()
        expect(_notice(page)).to_have_text("Catatan disimpan (pelanggan tidak melihatnya).")
    return ids


@pytest.mark.parametrize("size", SIZES)
def test_every_console_page_photographed(browser: Any, server: SapaServer, staff: dict[str, Member],
                                         showcase: dict[str, int], size: str) -> None:
    from playwright.sync_api import expect

    shots: list[Path] = []

    def shoot(page: Any, name: str) -> None:
        assert_fits(page, size)
        shots.append(screenshot(page, name, size))

    watch = Watch()
    with browsing(browser, server, size=size, watch=watch) as page:
        page.goto(f"{server.base_url}/console/sign-in", wait_until="domcontentloaded")
        expect(page.locator("h1")).to_have_text("Masuk")
        shoot(page, "sign-in")

        sign_in(page, server, ADMIN)
        rows = page.locator("#queue .queue-row")
        expect(rows.first).to_contain_text("Lestari")  # VIPs first
        expect(rows.first.locator(".badge.vip")).to_have_text("VIP · gold")
        expect(page.locator("#queue .queue-row", has_text="Agus")).to_be_visible()
        expect(page.locator("#queue .queue-row", has_text="Rahmat")).to_contain_text(f"Ditangani {AGENT.name}")
        shoot(page, "inbox")

        page.goto(f"{server.base_url}/console/conversations/{showcase['Rahmat']}", wait_until="domcontentloaded")
        expect(page.locator("#transcript li.msg.note")).to_contain_text("gudang Cikarang")
        expect(page.locator("#transcript li.msg.out.from-agent", has_text="Boleh kirim foto paketnya?")).to_be_visible()
        shoot(page, "conversation")

        page.goto(f"{server.base_url}/console/conversations/{showcase['Lestari']}", wait_until="domcontentloaded")
        expect(page.locator("#conv-title .badge.vip")).to_have_text("VIP · gold")
        shoot(page, "conversation-vip")

        page.goto(f"{server.base_url}/console/customers/{showcase['Rahmat.customer']}", wait_until="domcontentloaded")
        expect(page.locator("h1")).to_contain_text("Rahmat")
        shoot(page, "customer")

        page.goto(f"{server.base_url}/console/tickets", wait_until="domcontentloaded")
        expect(page.locator("h1")).to_have_text("Tiket")
        ticket = page.locator("tr", has_text="paket saya rusak").locator("a").first
        expect(ticket).to_be_visible()
        shoot(page, "tickets")
        ticket.click()
        expect(page.locator("h1")).to_contain_text("TKT-")
        expect(page.locator(".facts")).to_contain_text("paket saya rusak")
        shoot(page, "ticket")

        page.goto(f"{server.base_url}/console/staff", wait_until="domcontentloaded")
        expect(page.locator("h1")).to_have_text("Staf")
        expect(page.locator("tbody")).to_contain_text(MARKETING.email)
        shoot(page, "staff")

        page.goto(f"{server.base_url}/console/password", wait_until="domcontentloaded")
        expect(page.locator("h1")).to_have_text("Ganti kata sandi")
        shoot(page, "password")

        page.goto(f"{server.base_url}/console/inbox?lang=en", wait_until="domcontentloaded")
        expect(page.locator("h1")).to_have_text("Inbox")
        shoot(page, "inbox-en")

    with browsing(browser, server, size=size, watch=watch) as page:
        sign_in(page, server, MARKETING, path="/console")  # a role without the inbox starts here
        expect(page.locator("h1")).to_have_text(f"Selamat datang, {MARKETING.name}")
        shoot(page, "home")
        response = page.goto(f"{server.base_url}/console/inbox", wait_until="domcontentloaded")
        assert response is not None and response.status == 403
        expect(page.locator("h1")).to_have_text("Tidak diizinkan")
        shoot(page, "forbidden")
    watch.assert_clean()
    assert all(path.stat().st_size > 5_000 for path in shots), shots

