"""Issue 14, point 1 and 4: consent and data requests are honoured in every state of a conversation, and a
customer handed to a human is told honestly when a person will answer and still gets what the bot can give.

Default set-up (no Slack): the conversation waits in the queue that `sapa queue` shows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from store.consents import current
from store.models import Conversation, Customer, Message, Ticket

STOPPED = ("Anda tidak akan lagi menerima pesan promosi dari PT Contoh Sejahtera. Balas START kapan saja untuk "
           "berlangganan kembali.")


def onboarded_and_waiting(customer, sapa) -> Conversation:
    customer.say("halo")
    customer.say("Budi")
    customer.say("Setuju", payload="consent:data:yes")
    customer.say("Setuju", payload="consent:marketing:yes")
    replies = customer.say("saya mau bicara dengan petugas")
    assert "kami teruskan ke petugas" in replies[0]
    return conversation(sapa)


def conversation(sapa) -> Conversation:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Conversation).order_by(Conversation.id.desc())).scalars().one()


def marketing(sapa) -> bool | None:
    with sapa.database.unit_of_work(read_only=True) as session:
        customer_id = session.execute(select(Customer.id)).scalar_one()
        return current(session, customer_id, "marketing")


def test_stop_while_waiting_for_an_agent_withdraws_consent_and_is_confirmed(customer, sapa):
    assert onboarded_and_waiting(customer, sapa).status == "waiting"
    assert customer.say("STOP") == [STOPPED]
    assert marketing(sapa) is False
    assert customer.say("START")[0].startswith("Terima kasih! Anda akan kembali menerima info promo")
    assert marketing(sapa) is True
    assert conversation(sapa).status == "waiting"  # still in the queue: the person will still answer


def test_stop_while_an_agent_holds_the_conversation(customer, sapa):
    onboarded_and_waiting(customer, sapa)
    with sapa.database.unit_of_work() as session:
        session.execute(select(Conversation)).scalars().one().status = "with_agent"
    assert customer.say("BERHENTI") == [STOPPED]
    assert marketing(sapa) is False
    # Anything else is the agent's to answer: the bot stays quiet, the message is logged.
    assert customer.say("oke kak makasih infonya") == []


def test_erasure_while_waiting_asks_first_then_erases(customer, sapa):
    onboarded_and_waiting(customer, sapa)
    replies = customer.say("tolong hapus data saya")
    assert replies == ["Anda meminta kami menghapus data pribadi Anda, Budi. Nama, nomor, email, dan isi percakapan "
                       "Anda akan dihapus permanen dan tidak bisa dikembalikan; catatan statistik tanpa identitas "
                       "tetap kami simpan. Lanjutkan?"]
    assert customer.buttons() == [{"title": "Ya", "payload": "erase:yes"}, {"title": "Tidak", "payload": "erase:no"}]
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(Customer.name)).scalar_one() == "Budi"  # nothing yet
    assert customer.press("Ya") == [
        "Data pribadi Anda telah kami hapus sesuai permintaan. Terima kasih telah menggunakan layanan PT Contoh "
        "Sejahtera."]
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(Customer.name)).scalar_one() is None


def test_a_copy_of_ones_data_while_waiting(customer, sapa):
    onboarded_and_waiting(customer, sapa)
    assert customer.say("saya mau minta salinan data saya") == [
        "Anda meminta salinan data pribadi Anda yang kami simpan. Lanjutkan?"]
    [answer] = customer.press("Ya")
    assert answer.startswith("Baik. Yang kami simpan tentang Anda saat ini: nama Budi; saluran webchat;")
    assert "promo: ya" in answer and "TKT-" in answer
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket).where(Ticket.category == "data_export")).scalar_one()
        assert ticket.kind == "request" and ticket.resolution_due_at is not None


def test_while_waiting_the_bot_still_answers_what_it_can(customer, sapa):
    onboarded_and_waiting(customer, sapa)
    [status] = customer.say("status tiket saya gimana?")
    assert "tiket" in status.lower()
    assert customer.say("halo? bisa bicara dengan petugas?") == [
        "Percakapan Anda sudah ada di antrean petugas kami; petugas akan segera membalas di sini."]
    assert customer.say("barangnya warna biru ya kak") == []  # the agent's to answer
    with sapa.database.unit_of_work(read_only=True) as session:
        inbound = session.execute(select(Message).where(Message.direction == "in")).scalars().all()
    assert inbound[-1].text == "barangnya warna biru ya kak"  # logged for the agent


def test_a_handoff_outside_business_hours_says_when_a_person_will_answer(customer, sapa, clock):
    clock.set(datetime(2026, 1, 5, 11, 10, tzinfo=UTC))  # Monday 18:10 WIB; service opens 08:00
    customer.say("halo")
    customer.say("Budi")
    [handoff, *_] = customer.say("saya mau bicara dengan petugas")
    assert "mulai 6 Jan 08.00 WIB" in handoff and "tunggu sebentar" not in handoff
    assert "Sementara menunggu, saya tetap bisa menjawab pertanyaan umum" in handoff
    assert customer.say("halo? bisa bicara dengan petugas?") == [
        "Percakapan Anda sudah ada di antrean petugas kami; petugas akan membalas di sini mulai 6 Jan 08.00 WIB."]


def test_a_handoff_on_saturday_evening_waits_for_monday(client, sapa, clock):
    from tests.support.webchat import WebchatUser

    clock.set(datetime(2026, 1, 10, 12, 0, tzinfo=UTC))  # Saturday 19:00 WIB; Sunday is closed
    english = WebchatUser(client, sapa, language="en")
    english.say("hello", language="en")
    english.say("Sarah", language="en")
    [handoff, *_] = english.say("I want to talk to a person", language="en")
    assert "from 12 Jan 08:00 WIB" in handoff, handoff


def test_a_forwarded_stop_while_an_agent_holds_the_conversation_changes_nothing(customer, sapa):
    from datetime import UTC, datetime

    from bot.messages import InboundMessage

    onboarded_and_waiting(customer, sapa)
    with sapa.database.unit_of_work() as session:
        session.execute(select(Conversation)).scalars().one().status = "with_agent"
    forwarded = InboundMessage("webchat", customer.session_id, f"{customer.session_id}:fwd-1", "STOP",
                               datetime.now(UTC), forwarded_from="Promo Group")
    result = sapa.pipeline.handle(forwarded)
    assert result.reply_ids == ()  # relayed to the agent, not answered, not acted on
    assert marketing(sapa) is True
