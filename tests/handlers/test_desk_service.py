"""One desk, two faces (issue 16): what staff do in the web console (handlers.desk.act / reply / add_note) is what
they do in Slack, and each face sees what the other did.

Customers are on the web chat; the Slack workspace is the fake Slack (tests/support/slack.py). Console actions call
the desk service directly, as the console's routes do. Every test checks what people see: the customer's messages,
the card and its thread in Slack, ephemeral answers, tickets, audit entries.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Sapa
from handlers import desk
from handlers.desk import DeskResult
from store import inbox
from store.models import Agent, AuditEntry, Message, OutboxItem, Task, Ticket, TicketEvent
from tests.support.slack import AGENTS, complained, conversation_of, desk_sapa, desk_settings, handed_off
from tests.support.webchat import WebchatUser

JOINED = "Halo, saya {} dari PT Contoh Sejahtera. Saya yang akan membantu Anda sekarang."
QUICK = "Mohon tunggu sebentar, petugas akan membalas di sini."
UNSTAFFED = "Saat ini belum ada petugas yang tersedia; petugas akan membalas di sini segera setelah ada yang bisa."


@pytest.fixture
def slack_on() -> bool:
    return True  # tests parametrize it to False for a Sapa without the Slack desk (`make run`)


@pytest.fixture
def slack_agents() -> list[dict[str, str]]:
    return AGENTS  # tests parametrize it to [] for an installation with no staff at all


@pytest.fixture
def sapa(slack_on, slack_agents, db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    settings = desk_settings(db_url, fakes)
    settings = settings.model_copy(update={"slack": settings.slack.model_copy(
        update={"enabled": slack_on, "agents": settings.slack.agents if slack_agents else []})})
    yield from desk_sapa(settings, clock, interpreter, database)


def staff_id(sapa: Sapa, name: str) -> int:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Agent.id).where(Agent.name == name)).scalar_one()


def add_staff(sapa: Sapa, clock: Any, name: str, role: str, *, active: bool = True) -> int:
    """A member of staff who works only in the console (no Slack identity)."""
    with sapa.database.unit_of_work() as session:
        member = Agent(name=name, role=role, email=f"{name.lower()}@contoh.test", active=active,
                       created_at=clock.now())
        session.add(member)
        session.flush()
        return member.id


def console(sapa: Sapa, clock: Any, who: str, action: str, conversation_id: int, **kwargs: Any) -> DeskResult:
    """A member of staff presses a button in the console: `action` is one of the desk's, or "reply" / "note"."""
    with sapa.database.unit_of_work() as session:
        agent = session.execute(select(Agent).where(Agent.name == who)).scalar_one()
        if action == "reply":
            return desk.reply(session, sapa.settings, conversation_id=conversation_id, agent=agent, now=clock.now(),
                              **kwargs)
        if action == "note":
            return desk.add_note(session, sapa.settings, conversation_id=conversation_id, agent=agent,
                                 now=clock.now(), **kwargs)
        return desk.act(session, sapa.settings, action=action, conversation_id=conversation_id, agent=agent,
                        now=clock.now(), **kwargs)


def said_to_customer(customer: WebchatUser) -> list[tuple[str, str | None]]:
    return [(m["text"], m.get("agent_name")) for m in customer.history() if m["sender"] == "agent"]


def ephemerals(fakes: Any, user: str) -> list[dict[str, Any]]:
    return [r.params for r in fakes.requests("slack", "chat.postEphemeral") if r.params.get("user") == user]


def audit(sapa: Sapa, action: str) -> list[AuditEntry]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return list(session.execute(select(AuditEntry).where(AuditEntry.action == action)
                                    .order_by(AuditEntry.id)).scalars())


def card_buttons(fakes: Any) -> str:
    return json.dumps(fakes.requests("slack", "chat.update")[-1].params.get("blocks", []))


# --- claims: one owner, whichever face ----------------------------------------------------------------------------


def test_a_console_claim_shows_in_slack_and_a_slack_claim_by_another_is_told_who_holds_it(customer, slack, sapa,
                                                                                            clock, fakes):
    conversation, card_ts = handed_off(customer, slack)
    result = console(sapa, clock, "Rina", "claim", conversation.id)
    slack.settle()
    assert (result.ok, result.code) == (True, "done")
    assert said_to_customer(customer) == [(JOINED.format("Rina"), "Rina")]
    assert "✋ Claimed by Rina" in slack.thread(card_ts)
    assert "sapa_claim" not in card_buttons(fakes) and "Rina" in card_buttons(fakes)  # the card says who holds it

    slack.press("U0AMGR", "claim", conversation.id, card_ts)
    slack.settle()
    [note] = ephemerals(fakes, "U0AMGR")
    assert note["text"].startswith(f"Rina already holds conversation #{conversation.id}; it was not claimed.")
    again = console(sapa, clock, "Andi", "claim", conversation.id)
    assert (again.ok, again.code, again.holder, again.note) == (False, "held_by_other", "Rina", "held by Rina")
    assert conversation_of(sapa).owner_agent_id == staff_id(sapa, "Rina")
    assert said_to_customer(customer) == [(JOINED.format("Rina"), "Rina")]
    assert [(e.actor, e.detail["face"]) for e in audit(sapa, "conversation.claim")] == [
        (f"agent:{staff_id(sapa, 'Rina')}", "web")]


def test_two_people_claiming_at_once_get_one_claim_between_them(customer, slack, sapa, clock, monkeypatch):
    conversation, _ = handed_off(customer, slack)
    ready = threading.Barrier(2)
    telling = desk._tell_customer

    def slowly(*args: Any, **kwargs: Any) -> None:  # widen the window between reading the state and committing
        time.sleep(0.3)
        telling(*args, **kwargs)

    monkeypatch.setattr(desk, "_tell_customer", slowly)
    results: dict[str, DeskResult] = {}

    def claim(who: str) -> None:
        ready.wait()
        results[who] = console(sapa, clock, who, "claim", conversation.id)

    workers = [threading.Thread(target=claim, args=(who,)) for who in ("Rina", "Andi")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    slack.settle()
    assert sorted(r.code for r in results.values()) == ["done", "held_by_other"]
    winner = next(who for who, r in results.items() if r.ok)
    assert said_to_customer(customer) == [(JOINED.format(winner), winner)]
    assert conversation_of(sapa).owner_agent_id == staff_id(sapa, winner)


def test_a_slack_claim_shows_in_the_console_queue_and_the_console_claim_is_refused(customer, slack, sapa, clock):
    conversation, card_ts = handed_off(customer, slack)
    slack.press("U0RINA", "claim", conversation.id, card_ts)
    slack.settle()
    with sapa.database.unit_of_work(read_only=True) as session:
        [row] = inbox.queue(session, viewer_id=staff_id(sapa, "Andi"), filters=inbox.QueueFilters()).rows
    assert (row.conversation_id, row.status, row.owner_name) == (conversation.id, "with_agent", "Rina")
    refused = console(sapa, clock, "Andi", "claim", conversation.id)
    assert (refused.ok, refused.code, refused.holder) == (False, "held_by_other", "Rina")


def test_a_conversation_claimed_in_slack_is_answered_from_the_console_and_slack_sees_the_answer(customer, slack,
                                                                                                 sapa, clock):
    conversation, card_ts = handed_off(customer, slack)
    slack.press("U0RINA", "claim", conversation.id, card_ts)
    slack.settle()
    result = console(sapa, clock, "Rina", "reply", conversation.id, text="Baik Pak Budi, <@U0BOSS> saya cek dulu.")
    slack.settle()
    assert result.ok
    assert said_to_customer(customer)[-1] == ("Baik Pak Budi, <@U0BOSS> saya cek dulu.", "Rina")
    assert "💬 *Rina* (web): Baik Pak Budi, &lt;@U0BOSS&gt; saya cek dulu." in slack.thread(card_ts)

    slack.reply("U0RINA", card_ts, "Sudah saya cek, Pak.")  # typed in Slack: stored, so the console shows it
    slack.settle()
    with sapa.database.unit_of_work(read_only=True) as session:
        page = inbox.transcript(session, conversation.customer_id)
    assert [(m.sender, m.text) for m in page.messages][-2:] == [
        ("agent", "Baik Pak Budi, <@U0BOSS> saya cek dulu."), ("agent", "Sudah saya cek, Pak.")]
    assert not any("(web): Sudah saya cek" in text for text in slack.thread(card_ts))  # no echo of Slack's own


def test_a_console_reply_to_a_waiting_conversation_takes_it_and_stops_the_first_response_clock(customer, slack,
                                                                                                 sapa, clock):
    conversation = complained(customer, slack, "barang yang saya terima rusak, saya mau komplain")
    answered_at = clock.now()
    console(sapa, clock, "Rina", "reply", conversation.id, text="Mohon maaf Pak Budi, kami ganti.")
    slack.settle()
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        clock_checks = session.execute(select(Task.status).where(Task.kind == "sla.check")
                                       .order_by(Task.id)).scalars().all()
    assert conversation_of(sapa).owner_agent_id == staff_id(sapa, "Rina")
    assert ticket.first_responded_at == answered_at and ticket.assigned_agent_id == staff_id(sapa, "Rina")
    assert clock_checks == ["cancelled", "cancelled", "pending"]  # warn and first response stopped; resolution runs


# --- transfer -------------------------------------------------------------------------------------------------------


def test_the_holder_transfers_to_a_colleague_the_tickets_follow_and_everyone_is_told(customer, slack, sapa, clock):
    conversation = complained(customer, slack, "barang yang saya terima rusak, saya mau komplain")
    console(sapa, clock, "Rina", "claim", conversation.id)
    result = console(sapa, clock, "Rina", "transfer", conversation.id, to_agent_id=staff_id(sapa, "Andi"))
    slack.settle()
    assert (result.ok, result.note) == (True, "transferred to Andi")
    assert said_to_customer(customer)[-1] == (JOINED.format("Andi"), "Andi")
    assert conversation_of(sapa).owner_agent_id == staff_id(sapa, "Andi")
    assert "🔀 Rina transferred this conversation from <@U0RINA> to <@U0AMGR>." in slack.thread(conversation.desk_ts)
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        moved = session.execute(select(TicketEvent).where(TicketEvent.kind == "assigned")
                                .order_by(TicketEvent.id.desc())).scalars().first()
    assert ticket.assigned_agent_id == staff_id(sapa, "Andi")
    assert moved is not None and moved.detail == {"by": "transfer", "from_agent_id": staff_id(sapa, "Rina"),
                                                  "by_agent_id": staff_id(sapa, "Rina")}
    [entry] = audit(sapa, "conversation.transfer")
    assert entry.actor == f"agent:{staff_id(sapa, 'Rina')}" and entry.subject_id == str(conversation.id)
    assert (entry.detail["from"], entry.detail["to"]) == ("Rina", "Andi")


def test_only_the_holder_or_a_supervisor_transfers_and_only_to_someone_who_can_answer(customer, slack, sapa, clock):
    conversation, _ = handed_off(customer, slack)
    console(sapa, clock, "Andi", "claim", conversation.id)
    slack.settle()
    before = customer.history()
    taken = console(sapa, clock, "Rina", "transfer", conversation.id, to_agent_id=staff_id(sapa, "Rina"))
    assert (taken.ok, taken.code) == (False, "forbidden")
    marketing = add_staff(sapa, clock, "Mira", "marketing")
    gone = add_staff(sapa, clock, "Lama", "customer_service", active=False)
    for target in (marketing, gone, 999999):
        refused = console(sapa, clock, "Andi", "transfer", conversation.id, to_agent_id=target)
        assert (refused.ok, refused.code) == (False, "invalid")
    assert console(sapa, clock, "Andi", "transfer", conversation.id).code == "invalid"  # nobody chosen
    slack.settle()
    assert customer.history() == before and conversation_of(sapa).owner_agent_id == staff_id(sapa, "Andi")
    assert audit(sapa, "conversation.transfer") == []

    moved = console(sapa, clock, "Sari", "transfer", conversation.id, to_agent_id=staff_id(sapa, "Bu Ratna"))
    slack.settle()
    assert moved.ok and said_to_customer(customer)[-1] == (JOINED.format("Bu Ratna"), "Bu Ratna")
    assert [e.detail["from"] for e in audit(sapa, "conversation.transfer")] == ["Andi"]


# --- notes ------------------------------------------------------------------------------------------------------------


def test_a_console_note_never_reaches_the_customer_but_shows_in_the_slack_thread(customer, slack, sapa, clock):
    conversation, card_ts = handed_off(customer, slack)
    before = customer.history()
    result = console(sapa, clock, "Rina", "note", conversation.id, text="pelanggan ini <!channel> sudah 3x komplain")
    slack.reply("U0RINA", card_ts, "note: dari Slack juga")
    slack.settle()
    assert result.ok and customer.history() == before
    assert "📝 Note by Rina: pelanggan ini &lt;!channel&gt; sudah 3x komplain" in slack.thread(card_ts)
    assert not any("dari Slack juga" in text for text in slack.thread(card_ts)[1:] if text.startswith("📝"))
    with sapa.database.unit_of_work(read_only=True) as session:
        notes = session.execute(select(Message.text).where(Message.direction == "note")
                                .order_by(Message.id)).scalars().all()
        shown = [m.text for m in inbox.transcript(session, conversation.customer_id).messages
                 if m.direction == "note"]
    assert notes == shown == ["pelanggan ini <!channel> sudah 3x komplain", "dari Slack juga"]
    assert console(sapa, clock, "Rina", "note", conversation.id, text="   ").code == "empty"


# --- resolve, escalate, back to bot -------------------------------------------------------------------------------


@pytest.mark.parametrize("face", ["console", "slack"])
def test_resolving_from_either_face_schedules_the_same_csat_survey(face, customer, slack, sapa, clock):
    conversation = complained(customer, slack, "mesin cuci saya bocor terus, saya kecewa")
    if face == "console":
        console(sapa, clock, "Rina", "resolve", conversation.id)
    else:
        slack.press("U0RINA", "resolve", conversation.id, conversation.desk_ts)
    slack.settle()
    assert customer.history()[-1]["text"].startswith("Permasalahan Anda telah kami selesaikan (tiket TKT-000001)")
    assert "✅ Resolved by Rina" in slack.thread(conversation.desk_ts)
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        survey = session.execute(select(Task).where(Task.kind == "survey.csat")).scalar_one()
    where = "in the console" if face == "console" else "in Slack"
    assert (ticket.status, ticket.resolution) == ("resolved", f"Resolved {where} by Rina")
    assert (survey.dedupe_key, survey.status) == (f"csat:{ticket.id}:r0", "pending")
    clock.advance(timedelta(minutes=sapa.settings.surveys.csat_delay_minutes + 1))
    slack.settle()
    assert customer.history()[-1]["text"] == (
        "Terima kasih telah menghubungi PT Contoh Sejahtera, Budi. Seberapa puas Anda dengan penanganan tiket "
        "TKT-000001? Balas dengan angka 1 (sangat tidak puas) sampai 5 (sangat puas).")
    assert console(sapa, clock, "Rina", "claim", conversation.id).code == "closed"


def test_escalating_from_the_console_alerts_supervisors_in_slack_and_tells_the_customer(customer, slack, sapa, clock):
    conversation = complained(customer, slack, "saya kecewa, pesanan saya rusak dan belum diganti")
    result = console(sapa, clock, "Rina", "escalate", conversation.id)
    slack.settle()
    assert result.ok
    escalation = slack.card("C0ESC")
    assert "Escalation level 1" in json.dumps(escalation["blocks"]) and "<@U0SUPER>" in json.dumps(escalation["blocks"])
    assert "🚨 Escalated to supervisor by Rina: escalated by an agent" in slack.thread(conversation.desk_ts)
    assert customer.history()[-1]["text"].startswith("Permasalahan Anda kami teruskan ke atasan kami")
    with sapa.database.unit_of_work(read_only=True) as session:
        event = session.execute(select(TicketEvent).where(TicketEvent.kind == "escalated")).scalar_one()
    assert event.detail == {"level": 1, "role": "supervisor", "by": "Rina", "reason": "escalated by an agent"}
    assert [e.actor for e in audit(sapa, "conversation.escalate")] == [f"agent:{staff_id(sapa, 'Rina')}"]


def test_back_to_bot_from_the_console_returns_the_customer_to_the_bot(customer, slack, sapa, clock):
    conversation, card_ts = handed_off(customer, slack)
    console(sapa, clock, "Rina", "claim", conversation.id)
    console(sapa, clock, "Rina", "back_to_bot", conversation.id)
    slack.settle()
    assert customer.history()[-1]["text"] == (
        "Terima kasih telah menunggu. Jika ada hal lain yang bisa kami bantu, silakan tulis di sini.")
    assert "🤖 Handed back to the bot by Rina" in slack.thread(card_ts)
    assert conversation_of(sapa).status == "bot"
    assert customer.say("terima kasih") == ["Sama-sama, Budi! Ada lagi yang bisa kami bantu?"]


# --- who may act ---------------------------------------------------------------------------------------------------


def test_marketing_cannot_act_on_conversations_from_any_face(customer, slack, sapa, clock):
    conversation, card_ts = handed_off(customer, slack)
    add_staff(sapa, clock, "Mira", "marketing")
    before = customer.history()
    for action, extra in (("claim", {}), ("resolve", {}), ("reply", {"text": "halo"}), ("note", {"text": "x"})):
        refused = console(sapa, clock, "Mira", action, conversation.id, **extra)
        assert (refused.ok, refused.code) == (False, "forbidden"), action
    slack.settle()
    assert customer.history() == before and conversation_of(sapa).status == "waiting"
    assert [e.action for e in audit(sapa, "conversation.claim")] == []


def test_customer_service_cannot_take_over_a_colleagues_conversation_but_a_supervisor_can(customer, slack, sapa,
                                                                                          clock):
    conversation, card_ts = handed_off(customer, slack)
    console(sapa, clock, "Andi", "claim", conversation.id)
    refused = console(sapa, clock, "Rina", "takeover", conversation.id)
    assert (refused.ok, refused.code) == (False, "forbidden")
    taken = console(sapa, clock, "Sari", "takeover", conversation.id)
    slack.settle()
    assert (taken.ok, taken.holder) == (True, "Andi")
    assert said_to_customer(customer)[-1] == (JOINED.format("Sari"), "Sari")
    assert any(t.startswith("🔀 Sari (supervisor) took over this conversation from <@U0AMGR>")
               for t in slack.thread(card_ts))
    [entry] = audit(sapa, "conversation.takeover")
    assert (entry.detail["from"], entry.detail["to"], entry.detail["face"]) == ("Andi", "Sari", "web")


# --- without Slack -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("slack_on", [False])
def test_without_slack_the_console_does_everything_and_nothing_is_queued_for_slack(customer, sapa, clock):
    customer.say("halo")
    customer.say("Budi")
    customer.say("barang yang saya terima rusak, saya mau komplain")
    conversation = conversation_of(sapa)
    assert conversation.status == "waiting"
    steps = [("Rina", "claim", {}), ("Rina", "reply", {"text": "Kami ganti ya, Pak."}),
             ("Rina", "note", {"text": "ok"}), ("Rina", "transfer", {"to_agent_id": staff_id(sapa, "Andi")}),
             ("Andi", "escalate", {}), ("Andi", "resolve", {})]
    for who, action, extra in steps:
        assert console(sapa, clock, who, action, conversation.id, **extra).ok, action
    texts = [text for text, _ in said_to_customer(customer)]
    assert texts[:3] == [JOINED.format("Rina"), "Kami ganti ya, Pak.", JOINED.format("Andi")]
    assert texts[3].startswith("Permasalahan Anda telah kami selesaikan")
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(OutboxItem).where(OutboxItem.channel == "slack")).scalars().all() == []
        assert session.execute(select(Ticket.status)).scalar_one() == "resolved"


# --- when will a person answer --------------------------------------------------------------------------------------


def ask_for_a_person(client: Any, sapa: Sapa, language: str = "id") -> str:
    person = WebchatUser(client, sapa, language=language)
    words = "saya mau bicara dengan petugas" if language == "id" else "I want to talk to a human agent"
    return " ".join(person.say(words))  # a new customer also gets the privacy notice


def everyone_away(sapa: Sapa, clock: Any) -> None:
    with sapa.database.unit_of_work() as session:
        for agent in session.execute(select(Agent)).scalars():
            desk.set_availability(session, agent, "away", now=clock.now())


@pytest.mark.parametrize("slack_on", [False])
def test_with_nobody_online_the_customer_is_not_promised_a_quick_answer(client, sapa, clock):
    assert QUICK in ask_for_a_person(client, sapa)  # Slack agents who never said away: as before issue 16
    everyone_away(sapa, clock)
    told = ask_for_a_person(client, sapa)
    assert UNSTAFFED in told and QUICK not in told
    assert "No agent is available right now; one will reply here as soon as someone is free." in ask_for_a_person(
        client, sapa, "en")
    with sapa.database.unit_of_work() as session:
        rina = session.execute(select(Agent).where(Agent.name == "Rina")).scalar_one()
        desk.set_availability(session, rina, "online", now=clock.now())
    assert QUICK in ask_for_a_person(client, sapa)
    entries = audit(sapa, "staff.availability")
    assert (entries[-1].actor, entries[-1].detail) == (f"agent:{staff_id(sapa, 'Rina')}",
                                                         {"from": "away", "to": "online"})


@pytest.mark.parametrize("slack_on", [False])
def test_outside_business_hours_the_next_opening_is_named_whoever_is_online(client, sapa, clock):
    everyone_away(sapa, clock)
    clock.advance(timedelta(hours=10))  # Monday 19:00 in Jakarta
    told = ask_for_a_person(client, sapa)
    assert "Saat ini di luar jam layanan; petugas akan membalas di sini mulai 6 Jan 08.00 WIB." in told
    assert UNSTAFFED not in told


@pytest.mark.parametrize(("slack_on", "slack_agents"), [(False, [])])
def test_an_installation_without_staff_keeps_todays_text(client, sapa):
    assert QUICK in ask_for_a_person(client, sapa)


def test_slack_agents_say_online_and_away_with_a_command(client, slack, sapa):
    assert slack.command("U0RINA", "away")["text"].startswith("You are away.")
    assert slack.command("U0RINA", "online")["text"] == "You are online."
    assert [e.detail for e in audit(sapa, "staff.availability")] == [
        {"from": "away", "to": "away"}, {"from": "away", "to": "online"}]
    with sapa.database.unit_of_work(read_only=True) as session:
        [first] = desk.staff_for_transfer(session)[:1]
    assert first.name == "Rina"  # online first
