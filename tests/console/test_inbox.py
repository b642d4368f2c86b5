"""The agent inbox in the console (issue 16), on SQLite and PostgreSQL: what an agent sees and does, what the customer
gets, what roles may not do (also through guessed ids), CSRF, and the audit trail. The live streams and the whole
story in a real browser are in tests/web/test_console.py."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bot.app import Sapa
from bot.console import inbox_routes
from store.models import AuditEntry, Conversation, Customer, Message, Task
from tests.console.conftest import add_staff, another_browser, csrf, notice, signed_in_client
from tests.support.webchat import WebchatUser


@pytest.fixture(autouse=True)
def short_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """A browser keeps a stream for minutes; a test reads a few polls' worth, then the stream ends."""
    monkeypatch.setattr(inbox_routes, "POLL_S", 0.01)
    monkeypatch.setattr(inbox_routes, "STREAM_MAX_S", 0.05)


def waiting_customer(client: TestClient, sapa: Sapa, name: str = "Budi") -> tuple[WebchatUser, int]:
    customer = WebchatUser(another_browser(client), sapa)
    customer.say("halo")
    customer.say(name)
    customer.say("saya mau bicara dengan petugas")
    with sapa.database.unit_of_work(read_only=True) as session:
        conversation = session.execute(select(Conversation).order_by(Conversation.id.desc())).scalars().first()
        assert conversation is not None and conversation.status == "waiting"
        return customer, conversation.id


def customer_texts(customer: WebchatUser) -> list[str]:
    return [m["text"] for m in customer.history() if m["direction"] == "out"]


def post(agent: TestClient, path: str, **data: str) -> str:
    """Submit a console form with the page's CSRF token; the page it lands on (303 followed)."""
    page = agent.get("/console/password")
    answer = agent.post(path, data={**data, "csrf_token": csrf(page.text)})
    assert answer.status_code == 200, answer.text
    return answer.text


def audit_actions(sapa: Sapa, actor: str) -> list[str]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return list(session.execute(select(AuditEntry.action).where(AuditEntry.actor == actor)
                                    .order_by(AuditEntry.id)).scalars())


def test_an_agent_sees_the_waiting_customer_and_answers_from_the_browser(client: TestClient, sapa: Sapa) -> None:
    sari = add_staff(sapa, "Sari", "sari@example.co.id", "customer_service")
    customer, conversation_id = waiting_customer(client, sapa)
    agent = signed_in_client(another_browser(client), "sari@example.co.id")

    inbox = agent.get("/console/inbox")
    assert inbox.status_code == 200
    assert "Budi" in inbox.text and f"/console/conversations/{conversation_id}" in inbox.text
    assert "Menunggu agen" in inbox.text  # the row's status, in Indonesian

    page = agent.get(f"/console/conversations/{conversation_id}")
    assert page.status_code == 200
    assert "saya mau bicara dengan petugas" in page.text  # the customer's words in the transcript

    landed = post(agent, f"/console/conversations/{conversation_id}/action", name="claim")
    assert notice(landed) == "Anda mengambil percakapan ini."
    assert "Ditangani Sari" in landed
    assert any("saya Sari" in text for text in customer_texts(customer))  # "Halo, saya Sari dari …"

    landed = post(agent, f"/console/conversations/{conversation_id}/reply", text="Pesanan Anda sedang kami cek, Budi.")
    assert notice(landed) == "Balasan terkirim ke pelanggan."
    assert customer_texts(customer)[-1] == "Pesanan Anda sedang kami cek, Budi."

    landed = post(agent, f"/console/conversations/{conversation_id}/note", text="Pelanggan lama, sabar.")
    assert notice(landed).startswith("Catatan disimpan")
    assert "Pelanggan lama, sabar." in landed and 'class="msg note' in landed
    assert "Pelanggan lama, sabar." not in customer_texts(customer)  # a note never reaches the customer

    customer.say("baik, terima kasih")
    fresh = agent.get(f"/console/conversations/{conversation_id}/messages", params={"after": 0})
    assert "baik, terima kasih" in fresh.text

    landed = post(agent, f"/console/conversations/{conversation_id}/action", name="resolve")
    assert notice(landed).startswith("Selesai")
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.get_one(Conversation, conversation_id).status == "closed"
    assert "telah kami selesaikan" in customer_texts(customer)[-1]

    actions = audit_actions(sapa, f"agent:{sari}")
    assert "inbox.viewed" in actions and "conversation.viewed" in actions
    assert "conversation.claim" in actions and "conversation.resolve" in actions


def test_resolving_in_the_console_asks_the_customer_for_satisfaction_like_slack_does(client: TestClient,
                                                                                     sapa: Sapa) -> None:
    add_staff(sapa, "Sari", "sari@example.co.id", "customer_service")
    customer = WebchatUser(another_browser(client), sapa)
    customer.say("halo")
    customer.say("Budi")
    customer.say("paket saya rusak, saya mau komplain")  # a complaint ticket, handed to a person
    with sapa.database.unit_of_work(read_only=True) as session:
        conversation_id = session.execute(select(Conversation.id).order_by(Conversation.id.desc())).scalars().first()
    agent = signed_in_client(another_browser(client), "sari@example.co.id")
    post(agent, f"/console/conversations/{conversation_id}/action", name="claim")
    post(agent, f"/console/conversations/{conversation_id}/action", name="resolve")
    with sapa.database.unit_of_work(read_only=True) as session:
        keys = [task.dedupe_key or "" for task in session.execute(select(Task)).scalars()]
    assert any(key.startswith("csat:") for key in keys), keys  # the survey task the Slack resolve schedules too


def test_a_claim_made_elsewhere_shows_and_a_second_claim_is_refused(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Sari", "sari@example.co.id", "customer_service")
    add_staff(sapa, "Dewi", "dewi@example.co.id", "customer_service")
    _, conversation_id = waiting_customer(client, sapa)
    sari = signed_in_client(another_browser(client), "sari@example.co.id")
    dewi = signed_in_client(another_browser(client), "dewi@example.co.id")
    post(sari, f"/console/conversations/{conversation_id}/action", name="claim")

    seen_by_dewi = dewi.get(f"/console/conversations/{conversation_id}").text
    assert "Ditangani Sari" in seen_by_dewi
    assert 'value="claim"' not in seen_by_dewi  # no Claim button on a held conversation
    assert 'value="takeover"' not in seen_by_dewi  # nor Take over: customer service may not
    refused = post(dewi, f"/console/conversations/{conversation_id}/action", name="claim")
    assert notice(refused).startswith("Tidak dilakukan:") and "Sari" in notice(refused)
    refused = post(dewi, f"/console/conversations/{conversation_id}/action", name="transfer",
                   to_agent_id=str(add_staff(sapa, "Rina", "rina@example.co.id")))
    assert notice(refused).startswith("Tidak dilakukan:")
    with sapa.database.unit_of_work(read_only=True) as session:
        owner = session.get_one(Conversation, conversation_id).owner_agent_id
    assert owner is not None and "Ditangani Sari" in dewi.get(f"/console/conversations/{conversation_id}").text


def test_a_supervisor_transfers_a_conversation_and_the_customer_hears_who_helps(client: TestClient,
                                                                               sapa: Sapa) -> None:
    add_staff(sapa, "Sari", "sari@example.co.id", "customer_service")
    dewi = add_staff(sapa, "Dewi", "dewi@example.co.id", "customer_service")
    add_staff(sapa, "Agus", "agus@example.co.id", "supervisor")
    customer, conversation_id = waiting_customer(client, sapa)
    post(signed_in_client(another_browser(client), "sari@example.co.id"),
         f"/console/conversations/{conversation_id}/action", name="claim")
    boss = signed_in_client(another_browser(client), "agus@example.co.id")
    page = boss.get(f"/console/conversations/{conversation_id}").text
    assert 'id="transfer-to"' in page and "Dewi" in page
    landed = post(boss, f"/console/conversations/{conversation_id}/action", name="transfer", to_agent_id=str(dewi))
    assert notice(landed) == "Dialihkan." and "Ditangani Dewi" in landed
    assert "saya Dewi" in customer_texts(customer)[-1]


@pytest.mark.parametrize("path", ["/console/inbox", "/console/conversations/{c}", "/console/customers/{u}",
                                  "/console/tickets", "/console/conversations/{c}/messages?after=0"])
def test_marketing_never_reads_transcripts_or_customers_even_by_guessed_id(client: TestClient, sapa: Sapa,
                                                                        path: str) -> None:
    add_staff(sapa, "Maya", "maya@example.co.id", "marketing")
    _, conversation_id = waiting_customer(client, sapa)
    with sapa.database.unit_of_work(read_only=True) as session:
        customer_id = session.get_one(Conversation, conversation_id).customer_id
    marketer = signed_in_client(another_browser(client), "maya@example.co.id")
    answer = marketer.get(path.format(c=conversation_id, u=customer_id))
    assert answer.status_code == 403
    assert "Budi" not in answer.text and "petugas" not in answer.text
    assert "Peran Anda tidak mengizinkan ini." in answer.text


def test_marketing_cannot_act_on_a_conversation(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Maya", "maya@example.co.id", "marketing")
    customer, conversation_id = waiting_customer(client, sapa)
    marketer = signed_in_client(another_browser(client), "maya@example.co.id")
    token = csrf(marketer.get("/console/password").text)
    before = len(customer_texts(customer))
    for path, data in ((f"/console/conversations/{conversation_id}/reply", {"text": "promo!"}),
                       (f"/console/conversations/{conversation_id}/action", {"name": "claim"})):
        answer = marketer.post(path, data={**data, "csrf_token": token})
        assert answer.status_code == 403
    assert len(customer_texts(customer)) == before
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.get_one(Conversation, conversation_id).status == "waiting"


def test_a_reply_without_the_csrf_token_is_refused_and_nothing_is_sent(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Sari", "sari@example.co.id", "customer_service")
    customer, conversation_id = waiting_customer(client, sapa)
    agent = signed_in_client(another_browser(client), "sari@example.co.id")
    before = len(customer_texts(customer))
    for data in ({"text": "Halo"}, {"text": "Halo", "csrf_token": "forged"}):
        answer = agent.post(f"/console/conversations/{conversation_id}/reply", data=data)
        assert answer.status_code == 403
    assert len(customer_texts(customer)) == before
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(Message)
                               .where(Message.sender == "agent")).scalar_one() == 0


def test_a_guessed_or_malformed_id_is_a_not_found_page(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Sari", "sari@example.co.id", "customer_service")
    agent = signed_in_client(another_browser(client), "sari@example.co.id")
    for path in ("/console/conversations/999999", "/console/conversations/²", "/console/customers/9" + "9" * 30,
                 "/console/tickets/0"):
        answer = agent.get(path)
        assert answer.status_code == 404, path


def test_the_queue_lists_vips_first_then_the_oldest_and_filters(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Sari", "sari@example.co.id", "customer_service")
    _, first = waiting_customer(client, sapa, "Budi")
    _, second = waiting_customer(client, sapa, "Wati")
    with sapa.database.unit_of_work() as session:
        vip = session.get_one(Customer, session.get_one(Conversation, second).customer_id)
        vip.is_vip, vip.vip_tier = True, "gold"
    agent = signed_in_client(another_browser(client), "sari@example.co.id")
    page = agent.get("/console/inbox").text
    order = [int(n) for n in re.findall(r'data-conversation="(\d+)"', page)]
    assert order == [second, first]  # Wati (VIP, newer) before Budi
    assert "VIP · gold" in page
    # No ticket behind either: the tier's first-response target counts from the handoff (VIPs: 30 minutes).
    vip_row = page[page.index(f'data-conversation="{second}"'):page.index(f'data-conversation="{first}"')]
    assert "30 mnt lagi" in vip_row
    only_vip = agent.get("/console/inbox/queue", params={"vip": "1"}).text
    assert [int(n) for n in re.findall(r'data-conversation="(\d+)"', only_vip)] == [second]
    assert agent.get("/console/inbox", params={"channel": "fax"}).status_code == 400
    assert agent.get("/console/inbox", params={"cursor": "not-a-cursor"}).status_code == 400


def test_availability_changes_what_a_waiting_customer_is_promised(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Sari", "sari@example.co.id", "customer_service")
    agent = signed_in_client(another_browser(client), "sari@example.co.id")
    landed = post(agent, "/console/availability", availability="online")
    assert notice(landed) == "Anda online."
    customer = WebchatUser(another_browser(client), sapa)
    customer.say("halo")
    customer.say("Budi")
    promised = customer.say("saya mau bicara dengan petugas")[0]
    assert "belum ada petugas yang tersedia" not in promised
    post(agent, "/console/availability", availability="away")
    late = WebchatUser(another_browser(client), sapa)
    late.say("halo")
    late.say("Rina")
    assert "belum ada petugas yang tersedia" in late.say("saya mau bicara dengan petugas")[0]


def test_the_live_stream_announces_a_new_customer_message(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Sari", "sari@example.co.id", "customer_service")
    customer, conversation_id = waiting_customer(client, sapa)
    agent = signed_in_client(another_browser(client), "sari@example.co.id")
    with sapa.database.unit_of_work(read_only=True) as session:
        last = session.execute(select(func.max(Message.id))).scalar_one()
    quiet = agent.get(f"/console/conversations/{conversation_id}/events", params={"after": last})
    assert quiet.headers["content-type"].startswith("text/event-stream")
    assert "event: message" not in quiet.text
    customer.say("halo? masih di sana?")
    told = agent.get(f"/console/conversations/{conversation_id}/events", params={"after": last})
    assert "event: message" in told.text
    data = json.loads(told.text.split("event: message\ndata: ")[1].split("\n")[0])
    assert "masih di sana?" in agent.get(f"/console/conversations/{conversation_id}/messages",
                                         params={"after": data["after"]}).text


def test_customer_page_shows_consent_evidence_and_roles_decide_export_and_erase(client: TestClient,
                                                                               sapa: Sapa) -> None:
    add_staff(sapa, "Sari", "sari@example.co.id", "customer_service")
    admin = add_staff(sapa, "Ani", "ani@example.co.id", "admin")
    customer, conversation_id = waiting_customer(client, sapa)
    customer.press("Setuju") if any(b["title"] == "Setuju" for b in customer.buttons()) else None
    with sapa.database.unit_of_work(read_only=True) as session:
        customer_id = session.get_one(Conversation, conversation_id).customer_id
    agent = signed_in_client(another_browser(client), "sari@example.co.id")
    page = agent.get(f"/console/customers/{customer_id}").text
    assert "Budi" in page and "Persetujuan" in page
    assert "/export" not in page and "/erase" not in page  # customer service: neither button
    token = csrf(page)
    assert agent.post(f"/console/customers/{customer_id}/erase",
                      data={"csrf_token": token, "reason": "x", "confirm": str(customer_id)}).status_code == 403
    assert agent.post(f"/console/customers/{customer_id}/export", data={"csrf_token": token}).status_code == 403

    landed = post(agent, f"/console/customers/{customer_id}/profile", name="Budi Santoso", email="budi@example.co.id",
                  language="id")
    assert notice(landed) == "Tersimpan." and "Budi Santoso" in landed

    boss = signed_in_client(another_browser(client), "ani@example.co.id")
    token = csrf(boss.get(f"/console/customers/{customer_id}").text)
    exported = boss.post(f"/console/customers/{customer_id}/export", data={"csrf_token": token})
    assert exported.status_code == 200 and exported.headers["content-disposition"].startswith("attachment")
    assert exported.json()["customer"]["name"] == "Budi Santoso"
    wrong = post(boss, f"/console/customers/{customer_id}/erase", reason="DSR-7", confirm="1234567")
    assert notice(wrong).startswith("Periksa isian:")
    erased = post(boss, f"/console/customers/{customer_id}/erase", reason="DSR-7", confirm=str(customer_id))
    assert notice(erased) == "Data pribadi dihapus."
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.get_one(Customer, customer_id).name is None
    assert {"customer.viewed", "customer.exported"} <= set(audit_actions(sapa, f"agent:{admin}"))
    assert "customer.update" in audit_actions(sapa, "agent:1")


def test_tickets_list_and_detail_show_sla_and_events(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Sari", "sari@example.co.id", "customer_service")
    customer = WebchatUser(another_browser(client), sapa)
    customer.say("halo")
    customer.say("Budi")
    customer.say("paket saya rusak, saya mau komplain")
    agent = signed_in_client(another_browser(client), "sari@example.co.id")
    listing = agent.get("/console/tickets").text
    found = re.search(r'href="/console/tickets/(\d+)">(TKT-\d{6})', listing)
    assert found, listing
    detail = agent.get(f"/console/tickets/{found.group(1)}").text
    assert found.group(2) in detail and "dibuka" in detail and "Penyelesaian" in detail  # the "opened" event
    assert agent.get("/console/tickets", params={"status": "lost"}).status_code == 400


def test_an_online_agent_who_closed_the_console_long_ago_promises_nothing(client: TestClient, sapa: Sapa,
                                                                          clock) -> None:
    """Online is what the agent said; present is the console having seen them lately (an open page's live stream
    reconnects every few minutes). Eleven minutes of silence: customers are not promised a quick answer."""
    add_staff(sapa, "Sari", "sari@example.co.id", "customer_service")
    agent = signed_in_client(another_browser(client), "sari@example.co.id")
    post(agent, "/console/availability", availability="online")
    clock.advance(timedelta(minutes=11))
    customer = WebchatUser(another_browser(client), sapa)
    customer.say("halo")
    customer.say("Budi")
    assert "belum ada petugas yang tersedia" in customer.say("saya mau bicara dengan petugas")[0]
    agent.get("/console/inbox")  # back at the console: present again
    late = WebchatUser(another_browser(client), sapa)
    late.say("halo")
    late.say("Rina")
    assert "belum ada petugas yang tersedia" not in late.say("saya mau bicara dengan petugas")[0]


def test_an_account_manager_makes_a_vip_by_hand_and_customer_service_cannot(client: TestClient, sapa: Sapa) -> None:
    andi = add_staff(sapa, "Andi", "andi@example.co.id", "account_manager")
    add_staff(sapa, "Sari", "sari@example.co.id", "customer_service")
    _, conversation_id = waiting_customer(client, sapa)
    with sapa.database.unit_of_work(read_only=True) as session:
        customer_id = session.get_one(Conversation, conversation_id).customer_id
    agent = signed_in_client(another_browser(client), "sari@example.co.id")
    page = agent.get(f"/console/customers/{customer_id}").text
    assert "/vip" not in page
    assert agent.post(f"/console/customers/{customer_id}/vip", data={
        "csrf_token": csrf(page), "change": "add", "reason": "besar"}).status_code == 403

    manager = signed_in_client(another_browser(client), "andi@example.co.id")
    assert notice(post(manager, f"/console/customers/{customer_id}/vip", change="add", reason="")).startswith(
        "Periksa isian:")
    landed = post(manager, f"/console/customers/{customer_id}/vip", change="add", reason="Kontrak korporat 2027")
    assert notice(landed) == "Tersimpan." and "VIP · strategic" in landed and "Kontrak korporat 2027" in landed
    with sapa.database.unit_of_work(read_only=True) as session:
        customer = session.get_one(Customer, customer_id)
        assert (customer.is_vip, customer.vip_tier, customer.account_manager_id) == (True, "strategic", andi)
    assert "vip.add" in audit_actions(sapa, f"agent:{andi}")
    queue = manager.get("/console/inbox").text
    assert "VIP · strategic" in queue
