"""`sapa queue` and `sapa conversations [show ID]`: staff see and read the conversations waiting for a person
(issue 14, point 4), with phones masked in lists and every look at personal data in the audit log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import main
from bot.cli.conversations import mask_phone
from store.models import Agent, AuditEntry, ChannelIdentity, Conversation, Customer, Message, Ticket

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # 09:00 WIB


@pytest.fixture(autouse=True)
def staff_user(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr("getpass.getuser", lambda: "dewi")
    return "dewi"


def sapa(db_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(ROOT / "config.yml"), *args], env={"DATABASE_URL": db_url})
    return result.exit_code, result.output


def audits(database: Any) -> list[AuditEntry]:
    with database.unit_of_work(read_only=True) as session:
        return list(session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars())


def add_conversation(session: Any, *, name: str | None, phone: str | None, channel: str, address: str,
                     status: str, opened: datetime, vip_tier: str | None = None, reason: str | None = None,
                     owner: Agent | None = None, display_name: str | None = None) -> Conversation:
    customer = Customer(name=name, phone=phone, language="id", is_vip=vip_tier is not None, vip_tier=vip_tier,
                        source=channel, created_at=opened, updated_at=opened)
    session.add(customer)
    session.flush()
    identity = ChannelIdentity(customer_id=customer.id, channel=channel, address=address, display_name=display_name,
                               created_at=opened)
    session.add(identity)
    session.flush()
    conversation = Conversation(customer_id=customer.id, identity_id=identity.id, channel=channel, status=status,
                                language="id", opened_at=opened, last_message_at=opened + timedelta(minutes=1),
                                handed_off_at=opened + timedelta(minutes=1) if reason else None,
                                pending_data={"handoff_reason": reason} if reason else {},
                                owner_agent_id=owner.id if owner else None)
    session.add(conversation)
    session.flush()
    return conversation


@pytest.fixture
def population(database: Any) -> dict[str, int]:
    """A regular customer waiting since 09:01 with a complaint ticket, a gold VIP waiting since 09:31, one held
    by Rina, one the bot is answering, one closed."""
    with database.unit_of_work() as session:
        rina = Agent(name="Rina", slack_user_id="U0RINA", role="customer_service", created_at=T0)
        session.add(rina)
        session.flush()
        budi = add_conversation(session, name="Budi Santoso", phone="+6281234567890", channel="whatsapp",
                                address="+6281234567890", status="waiting", opened=T0, reason="complaint")
        session.add(Ticket(customer_id=budi.customer_id, conversation_id=budi.id, kind="complaint", status="open",
                           subject="barang rusak", first_response_due_at=T0 + timedelta(hours=4),
                           resolution_due_at=T0 + timedelta(days=2), created_at=T0, updated_at=T0))
        vip = add_conversation(session, name=None, phone=None, channel="telegram", address="700001",
                               status="waiting", opened=T0 + timedelta(minutes=30), vip_tier="gold",
                               reason="VIP upset", display_name="Ibu Sari")
        held = add_conversation(session, name="Citra", phone="+6281311112222", channel="sms",
                                address="+6281311112222", status="with_agent", opened=T0 + timedelta(minutes=10),
                                reason="talk_to_agent", owner=rina)
        bot = add_conversation(session, name="Dodi", phone="+6281500000004", channel="webchat", address="s-1",
                               status="bot", opened=T0 + timedelta(hours=1))
        closed = add_conversation(session, name="Eka", phone="+6281600000005", channel="whatsapp",
                                  address="+6281600000005", status="closed", opened=T0 - timedelta(days=1))
        return {"budi": budi.id, "vip": vip.id, "held": held.id, "bot": bot.id, "closed": closed.id,
                "budi_customer": budi.customer_id}


def test_mask_phone_keeps_the_last_three_digits():
    assert mask_phone("+6281234567890") == "+**********890"
    assert mask_phone("0812-3456") == "****-*456"
    assert mask_phone(None) is None


def test_queue_lists_waiting_and_held_conversations_vips_first_then_oldest(db_url, database, population):
    code, out = sapa(db_url, "queue")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "2 waiting for an agent, 1 with an agent (VIPs first, then oldest); times in Asia/Jakarta"
    header, vip, budi, held = lines[1:5]
    assert header.split() == ["ID", "CHANNEL", "CUSTOMER", "VIP", "LANG", "STATUS", "OWNER", "WAITING", "SINCE",
                              "FOR", "REASON", "FIRST", "RESPONSE", "DUE"]
    assert vip.split()[:8] == [str(population["vip"]), "telegram", "Ibu", "Sari", "gold", "id", "waiting", "-"]
    assert "2026-01-05 09:31" in vip and "VIP upset" in vip
    assert budi.split()[:7] == [str(population["budi"]), "whatsapp", "Budi", "Santoso", "-", "id", "waiting"]
    assert "2026-01-05 09:01" in budi and "complaint" in budi
    assert "TKT-000001 2026-01-05 13:00 OVERDUE" in budi  # 4 hours after 09:00, long past by now
    assert held.split()[:8] == [str(population["held"]), "sms", "Citra", "-", "id", "with_agent", "Rina",
                                "2026-01-05"]
    assert "talk_to_agent" in held
    assert "Dodi" not in out and "Eka" not in out  # the bot's and closed conversations are not waiting for anyone
    assert "6281234567890" not in out

    code, out = sapa(db_url, "queue", "--json")
    rows = json.loads(out)
    assert [r["conversation_id"] for r in rows] == [population["vip"], population["budi"], population["held"]]
    assert rows[1]["phone"] == "+**********890" and rows[1]["reason"] == "complaint" and rows[1]["overdue"]
    assert rows[1]["first_response_due"] == "TKT-000001 2026-01-05 13:00"

    entry = audits(database)[-1]
    assert (entry.actor, entry.action, entry.subject_type) == ("cli:dewi", "conversations.queue_viewed",
                                                               "conversation")
    assert entry.detail["conversations"] == [population["vip"], population["budi"], population["held"]]


def test_conversations_lists_filters_and_masks_phones(db_url, database, population):
    code, out = sapa(db_url, "conversations")
    assert code == 0, out
    assert out.splitlines()[0].split()[:4] == ["ID", "STATUS", "CHANNEL", "CUSTOMER"]
    assert out.splitlines()[1].split()[:3] == [str(population["bot"]), "bot", "webchat"]  # latest activity first
    assert "+**********890" in out and "+6281234567890" not in out and "81311112222" not in out
    assert "5 conversations, latest activity first" in out

    code, out = sapa(db_url, "conversations", "--status", "waiting", "--json")
    assert code == 0, out
    assert {r["conversation_id"] for r in json.loads(out)} == {population["budi"], population["vip"]}

    code, out = sapa(db_url, "conversations", "--customer", "0812 3456 7890", "--json")
    assert [r["conversation_id"] for r in json.loads(out)] == [population["budi"]]
    code, out = sapa(db_url, "conversations", "--customer", f"#{population['budi_customer']}", "--limit", "1")
    assert code == 0 and "Budi Santoso" in out and "1 conversations" in out
    code, out = sapa(db_url, "conversations", "--customer", "0899 0000 0000")
    assert code == 1 and "no customer matches" in out
    code, out = sapa(db_url, "conversations", "--status", "lost")
    assert code == 2 and "'lost' is not one of 'bot', 'waiting', 'with_agent', 'closed'" in out

    listed = [a for a in audits(database) if a.action == "conversations.listed"]
    assert len(listed) == 4 and all(a.actor == "cli:dewi" for a in listed)
    assert listed[1].detail["filters"] == {"status": "waiting", "customer": None, "limit": 50}


def test_conversations_show_prints_the_transcript_with_media_locations_and_contacts(db_url, database,
                                                                                   population):
    conversation_id = population["budi"]
    with database.unit_of_work() as session:
        conversation = session.get_one(Conversation, conversation_id)
        rina = session.execute(select(Agent)).scalar_one()

        def add(minute: int, direction: str, sender: str, text: str, **extra: Any) -> None:
            session.add(Message(conversation_id=conversation.id, customer_id=conversation.customer_id,
                                channel=extra.pop("channel", "whatsapp"), direction=direction, sender=sender,
                                text=text, created_at=T0 + timedelta(minutes=minute), **extra))

        add(0, "in", "customer", "barang saya rusak, mau komplain")
        add(0, "out", "bot", "Mohon maaf atas ketidaknyamanan ini.\nTiket TKT-000001.",
            buttons=[{"title": "Bicara dengan petugas", "payload": "intent:talk_to_agent"}])
        add(2, "in", "customer", "", media=[{"url": "telegram:file/AgAD", "content_type": "image/jpeg",
                                             "kind": "image", "file_name": "paket.jpg"}])
        add(3, "in", "customer", "", media=[{"url": "https://api.twilio.com/x", "content_type": "audio/ogg",
                                             "kind": "voice", "file_name": None}])
        add(4, "in", "customer", "", meta={"location": {"latitude": -6.2, "longitude": 106.8166,
                                                       "name": "Gudang Cakung", "address": "Jl. Raya Bekasi"}})
        add(5, "in", "customer", "", meta={"contact": {"name": "Pak Kurir", "phone": "+6281399990000",
                                                      "own": False}})
        add(6, "in", "customer", "promo besar hari ini", meta={"forwarded_from": "Toko Sebelah"})
        add(7, "in", "customer", "1", button_payload="consent:data:yes")
        add(8, "note", "agent", "cek foto dulu", agent_id=rina.id, channel="slack")
        add(9, "out", "agent", "Halo Budi, saya Rina.", agent_id=rina.id, delivery_status="failed",
            delivery_error="63016 outside the window")

    code, out = sapa(db_url, "conversations", "show", str(conversation_id))
    assert code == 0, out
    assert f"Conversation {conversation_id} · whatsapp · waiting · opened 2026-01-05 09:00" in out
    assert "Customer #1 Budi Santoso · +6281234567890 · VIP" not in out  # not a VIP
    assert "Customer #1 Budi Santoso · +6281234567890 · language id" in out  # the full record, audited
    assert "Waiting since 2026-01-05 09:01" in out and "reason: complaint" in out
    assert "First response due: TKT-000001 2026-01-05 13:00 (OVERDUE)" in out
    for expected in [
        "2026-01-05 09:00  whatsapp in    Budi Santoso: barang saya rusak, mau komplain",
        "2026-01-05 09:00  whatsapp out   Sapa: Mohon maaf atas ketidaknyamanan ini.\n        Tiket TKT-000001."
        "\n        [buttons: Bicara dengan petugas]",
        "2026-01-05 09:02  whatsapp in    Budi Santoso: [image: paket.jpg, image/jpeg]",
        "2026-01-05 09:03  whatsapp in    Budi Santoso: [voice: audio/ogg]",
        "[location: Gudang Cakung, Jl. Raya Bekasi · -6.2, 106.8166 "
        "https://www.openstreetmap.org/?mlat=-6.2&mlon=106.8166#map=17/-6.2/106.8166]",
        "Budi Santoso: [contact: Pak Kurir, +6281399990000]",
        "Budi Santoso: promo besar hari ini\n        [forwarded from Toko Sebelah]",
        "Budi Santoso: 1\n        [pressed: consent:data:yes]",
        "2026-01-05 09:08  slack    note  Rina (internal note): cek foto dulu",
        "2026-01-05 09:09  whatsapp agent Rina: Halo Budi, saya Rina.\n"
        "        [not delivered: 63016 outside the window]",
    ]:
        assert expected in out, f"{expected!r} not in:\n{out}"
    assert "telegram:file/" not in out and "api.twilio.com" not in out  # provider references stay hidden

    entry = audits(database)[-1]
    assert (entry.actor, entry.action, entry.subject_id) == ("cli:dewi", "conversation.viewed", str(conversation_id))
    assert entry.detail == {"customer_id": population["budi_customer"], "messages": 10}

    code, out = sapa(db_url, "conversations", "show", "999")
    assert code == 1 and "no conversation 999" in out


def test_a_web_chat_customer_handed_to_a_human_without_slack_is_in_the_queue(db_url, customer):
    """The default set-up (no Slack): a complaint hands the conversation to a human, and staff find it."""
    customer.say("halo")
    customer.say("Budi")
    replies = customer.say("barang saya datang dalam keadaan rusak, saya mau komplain")
    assert any("TKT-000001" in reply for reply in replies), replies
    code, out = sapa(db_url, "queue")
    assert code == 0, out
    assert out.splitlines()[0].startswith("1 waiting for an agent, 0 with an agent")
    (row,) = out.splitlines()[2:3]
    assert row.split()[:3] == ["1", "webchat", "Budi"] and "complaint" in row and "TKT-000001" in row
    code, out = sapa(db_url, "conversations", "show", "1")
    assert code == 0, out
    assert "webchat  in    Budi: barang saya datang dalam keadaan rusak, saya mau komplain" in out

