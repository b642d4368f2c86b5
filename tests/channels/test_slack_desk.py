"""The agent desk end to end: customers on the web chat and Telegram, agents in Slack.

Signed Slack requests in Slack's payload shapes go to POST /slack/events; the real slack_sdk posts to
the fake Slack; customers see agents' words on their own channel.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import Sapa
from store.models import Agent, AuditEntry, Conversation, Customer, Message, OutboxItem, Task, Ticket, TicketEvent
from tests.support.providers import ProviderCustomer, drain
from tests.support.slack import complained, conversation_of, desk_sapa, desk_settings, handed_off, signed
from tests.support.webchat import WebchatUser


@pytest.fixture
def sapa(request, db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    settings = desk_settings(db_url, fakes)
    if request.node.get_closest_marker("without_public_url"):
        settings = settings.model_copy(update={"server": settings.server.model_copy(update={"public_base_url": None})})
    yield from desk_sapa(settings, clock, interpreter, database)


def test_the_whole_loop_from_web_chat_to_slack_and_back(customer, slack, sapa):
    conversation, card_ts = handed_off(customer, slack)
    card = slack.card()
    blocks = json.dumps(card["blocks"])
    assert "Budi" in card["text"]
    for shown in ("Budi", "webchat", "saya mau bicara dengan petugas", "sapa_claim", "sapa_resolve",
                  "sapa_escalate", "sapa_back_to_bot"):
        assert shown in blocks

    customer.say("halo? masih ada orang?")  # relayed into the card's thread, no bot reply
    slack.settle()
    assert any("halo? masih ada orang?" in text for text in slack.thread(card_ts))

    assert slack.reply("U0RINA", card_ts, "Halo Budi, saya Rina. Ada yang bisa saya bantu?") == 200
    slack.settle()
    agent_messages = [m for m in customer.history() if m["sender"] == "agent"]
    assert [(m["text"], m["agent_name"]) for m in agent_messages] == [
        ("Halo Budi, saya Rina. Ada yang bisa saya bantu?", "Rina")]
    conversation = conversation_of(sapa)
    assert conversation.status == "with_agent"


def test_a_retried_slack_event_is_relayed_once(customer, slack, sapa):
    _, card_ts = handed_off(customer, slack)
    assert slack.reply("U0RINA", card_ts, "Sebentar ya", event_id="Ev-same") == 200
    assert slack.reply("U0RINA", card_ts, "Sebentar ya", event_id="Ev-same", retry=1) == 200
    slack.settle()
    assert [m["text"] for m in customer.history() if m["sender"] == "agent"] == ["Sebentar ya"]


def test_claim_and_resolve_buttons_change_state_and_tell_the_customer(customer, slack, sapa):
    conversation, card_ts = handed_off(customer, slack)
    assert slack.press("U0RINA", "claim", conversation.id, card_ts) == 200
    slack.settle()
    assert conversation_of(sapa).status == "with_agent"
    assert customer.history()[-1]["text"] == (
        "Halo, saya Rina dari PT Contoh Sejahtera. Saya yang akan membantu Anda sekarang.")
    updates = [r.params for r in slack.fakes.requests("slack", "chat.update")]
    assert updates and updates[-1]["ts"] == card_ts and "sapa_claim" not in json.dumps(updates[-1]["blocks"])

    assert slack.press("U0RINA", "resolve", conversation.id, card_ts) == 200
    slack.settle()
    assert conversation_of(sapa).status == "closed"
    assert customer.history()[-1]["text"].startswith("Permasalahan Anda telah kami selesaikan")
    assert "sapa_" not in json.dumps(slack.fakes.requests("slack", "chat.update")[-1].params.get("blocks", []))
    with sapa.database.unit_of_work(read_only=True) as session:
        actions = [a.action for a in session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()]
    assert actions[-2:] == ["conversation.claim", "conversation.resolve"]
    # The next message starts over with the bot.
    assert customer.say("halo lagi")[0].startswith("Halo Budi!")


def test_crm_3_3_resolving_a_complaint_records_it_on_the_ticket_and_tells_the_customer(customer, slack, sapa):
    conversation = complained(customer, slack, "barang yang saya terima rusak, saya mau komplain")
    slack.press("U0RINA", "resolve", conversation.id, conversation.desk_ts)
    slack.settle()
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        events = [e.kind for e in session.execute(select(TicketEvent).order_by(TicketEvent.id)).scalars()]
    assert ticket.status == "resolved" and ticket.resolution == "Resolved in Slack by Rina"
    assert events == ["opened", "resolved"]
    assert f"(tiket TKT-{ticket.id:06d})" in customer.history()[-1]["text"]


def test_crm_3_4_escalate_notifies_supervisors_with_context(customer, slack, sapa):
    conversation = complained(customer, slack, "saya kecewa, pesanan saya rusak dan belum diganti")
    slack.press("U0RINA", "escalate", conversation.id, conversation.desk_ts)
    slack.settle()
    escalation = slack.card("C0ESC")
    assert "<@U0SUPER>" in json.dumps(escalation["blocks"])
    assert "Escalation level 1" in json.dumps(escalation["blocks"])
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        event = session.execute(select(TicketEvent).where(TicketEvent.kind == "escalated")).scalar_one()
    assert ticket.escalation_level == 1
    assert event.detail == {"level": 1, "role": "supervisor", "by": "Rina", "reason": "escalated by an agent"}
    assert customer.history()[-1]["text"].startswith("Permasalahan Anda kami teruskan ke atasan kami")


def test_back_to_bot_returns_the_conversation_to_the_bot(customer, slack, sapa):
    conversation, card_ts = handed_off(customer, slack)
    slack.press("U0RINA", "back_to_bot", conversation.id, card_ts)
    slack.settle()
    assert conversation_of(sapa).status == "bot"
    assert customer.say("terima kasih") == ["Sama-sama, Budi! Ada lagi yang bisa kami bantu?"]


def test_notes_stay_internal(customer, slack, sapa):
    _, card_ts = handed_off(customer, slack)
    before = customer.history()
    slack.reply("U0RINA", card_ts, "note: pelanggan ini sudah 3x komplain bulan ini")
    slack.settle()
    assert customer.history() == before
    with sapa.database.unit_of_work(read_only=True) as session:
        note = session.execute(select(Message).where(Message.direction == "note")).scalar_one()
    assert note.text == "pelanggan ini sudah 3x komplain bulan ini"


def test_unknown_slack_users_cannot_act(customer, slack, sapa):
    conversation, card_ts = handed_off(customer, slack)
    before = customer.history()
    slack.reply("U0STRANGER", card_ts, "halo saya orang asing")
    slack.press("U0STRANGER", "resolve", conversation.id, card_ts)
    slack.settle()
    assert customer.history() == before
    assert conversation_of(sapa).status == "waiting"
    assert any("not a registered Sapa agent" in text for text in slack.thread(card_ts))


def test_bot_messages_and_edits_are_not_relayed(customer, slack, sapa):
    _, card_ts = handed_off(customer, slack)
    before = customer.history()
    slack.reply("U0SAPABOT", card_ts, "our own relay", extra={"bot_id": "B0SAPABOT"})
    slack.reply("U0RINA", card_ts, "edited", extra={"subtype": "message_changed"})
    slack.settle()
    assert customer.history() == before


@pytest.mark.parametrize("problem", ["forged", "stale"])
def test_forged_or_stale_slack_requests_get_403_and_change_nothing(client, sapa, problem):
    body = json.dumps({"type": "event_callback", "event_id": "Ev1", "event": {
        "type": "message", "user": "U0RINA", "text": "x", "ts": "1.1", "thread_ts": "1.0", "channel": "C0QUEUE"}})
    headers = signed(body, "application/json", secret="wrong-secret") if problem == "forged" else signed(
        body, "application/json", age_s=301)
    assert client.post("/slack/events", content=body, headers=headers).status_code == 403
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(Task)).scalar_one() == 0


def test_url_verification_is_answered(client):
    body = json.dumps({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                       "type": "url_verification"})
    response = client.post("/slack/events", content=body, headers=signed(body, "application/json"))
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_slack_rate_limits_are_honoured_by_the_outbox(customer, slack, sapa, clock, fakes):
    fakes.fail_next("slack", 429, retry_after=2, method="chat.postMessage")
    started = clock.now()
    handed_off(customer, slack)
    assert len([p for p in slack.posts("C0QUEUE") if p.get("blocks") and not p.get("thread_ts")]) == 1
    assert clock.now() - started >= timedelta(seconds=2)


def test_a_busy_minute_on_the_card_does_not_drop_the_customers_messages(customer, slack, sapa, clock, fakes):
    """Issue 15, item 8: waiting for the handoff card is not an attempt. Slack refuses the card five times with
    Retry-After 60 (five minutes, longer than the relay's whole retry budget); the message the customer wrote
    meanwhile still reaches the card's thread, once."""
    fakes.fail_next("slack", 429, retry_after=60, times=5, method="chat.postMessage")
    customer.say("halo")
    customer.say("Budi")
    customer.say("saya mau bicara dengan petugas")
    customer.say("pesanan saya ERP-77 belum datang")
    sapa.runner.run_due()
    drain(sapa, clock, rounds=400)  # the relay looks for its card every couple of seconds meanwhile
    card_ts = conversation_of(sapa).desk_ts
    assert card_ts is not None
    relayed = [text for text in slack.thread(card_ts) if "ERP-77" in text]
    assert len(relayed) == 1, slack.thread(card_ts)
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(OutboxItem).where(
            OutboxItem.status == "failed")).scalar_one() == 0


def test_a_relay_whose_card_can_never_be_posted_fails_with_the_reason(customer, slack, sapa, fakes):
    fakes.fail_next("slack", 404, times=50, method="chat.postMessage", description="channel_not_found")
    customer.say("halo")
    customer.say("saya mau bicara dengan petugas")
    customer.say("halo? ada orang?")
    slack.settle()
    with sapa.database.unit_of_work(read_only=True) as session:
        failed = session.execute(select(OutboxItem).where(OutboxItem.channel == "slack", OutboxItem.status == "failed")
                                 .order_by(OutboxItem.id)).scalars().all()
    # The card, then what waited for its thread (the relay, and the note of what the bot answered meanwhile).
    assert failed[0].payload.get("desk_card_for") is not None and len(failed) >= 2
    assert all(row.last_error.startswith("not relayed: the conversation's Slack card could not be posted "
                                         "(slack channel_not_found)") for row in failed[1:])
    assert any("halo? ada orang?" in row.payload["text"] for row in failed[1:])


def test_a_thread_post_for_a_conversation_that_never_had_a_card_does_not_wait_forever(customer, slack, sapa, clock):
    from store.messages import add_desk_post

    customer.say("halo")
    conversation = conversation_of(sapa)
    with sapa.database.unit_of_work() as session:  # e.g. handed off while the desk was off: no card queued
        add_desk_post(session, recipient="C0QUEUE", text="late note", now=clock.now(),
                      conversation_id=conversation.id, options={"thread_of": conversation.id})
    slack.settle()
    with sapa.database.unit_of_work(read_only=True) as session:
        row = session.execute(select(OutboxItem).where(OutboxItem.channel == "slack")).scalar_one()
    assert row.status == "failed" and row.last_error == (
        "not relayed: the conversation's Slack card could not be posted (no card was ever queued for this "
        "conversation)")


def test_vip_handoff_goes_to_the_vip_channel_with_the_account_manager(client, customer, slack, sapa):
    customer.say("halo")
    customer.say("Budi")
    with sapa.database.unit_of_work() as session:
        budi = session.execute(select(Customer)).scalar_one()
        budi.phone = "+6281200000001"
    result = slack.command("U0AMGR", "vip add +6281200000001 kontrak korporat 2027")
    assert "is now a VIP" in result["text"] and result["response_type"] == "ephemeral"
    customer.say("tolong sambungkan ke petugas")
    slack.settle()
    card = slack.card("C0VIP")
    assert "<@U0AMGR>" in json.dumps(card["blocks"]) and "VIP" in json.dumps(card["blocks"])
    with sapa.database.unit_of_work(read_only=True) as session:
        audit = session.execute(select(AuditEntry).where(AuditEntry.action == "vip.add")).scalar_one()
    assert audit.detail == {"reason": "kontrak korporat 2027"}


def test_slash_commands_show_customer_ticket_and_queue(client, customer, slack, sapa):
    customer.say("halo")
    customer.say("Budi")
    customer.say("barang saya rusak, saya mau komplain")
    slack.settle()
    other = WebchatUser(client, sapa)
    other.say("saya mau bicara dengan petugas")
    queue = slack.command("U0RINA", "queue")["text"]
    assert queue.startswith("*2 waiting*") and queue.index("Budi") < queue.index("(name not known)")
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
    shown = slack.command("U0RINA", f"ticket TKT-{ticket.id:06d}")["text"]
    assert f"TKT-{ticket.id:06d}" in shown and "complaint" in shown and "opened" in shown
    profile = slack.command("U0RINA", "customer Budi")["text"]
    assert "Budi" in profile and "regular" in profile and f"TKT-{ticket.id:06d}" in profile
    assert "not a registered Sapa agent" in slack.command("U0NOBODY", "queue")["text"]
    assert "Only account managers" in slack.command("U0RINA", "vip add Budi alasan")["text"]


def test_telegram_customer_reaches_an_agent_and_hears_back(client, slack, sapa, clock, fakes):
    person = ProviderCustomer(client, fakes, "telegram", "700010", name="Wayan")
    person.write("saya mau bicara dengan petugas")
    slack.settle()
    card_ts = conversation_of(sapa).desk_ts
    assert card_ts and "telegram" in json.dumps(slack.card()["blocks"])
    slack.reply("U0RINA", card_ts, "Halo Wayan, saya Rina.")
    slack.settle()
    assert person.texts()[-1] == "Halo Wayan, saya Rina."


# -- issue 14, point 3: the agent can open what the customer sent -----------------------------------

PHOTO = b"\xff\xd8\xff\xe0 kettle with a broken handle"
PUBLIC = "https://sapa.example.test"


def send_raw(person: ProviderCustomer, fields: dict[str, Any]) -> int:
    """A Telegram message with `fields` and no text (a photo, a place, a contact), through the signed webhook."""
    path, body, headers = person.request("", extra=fields)
    update = json.loads(body)
    del update["message"]["text"]
    return person.client.post(path, content=json.dumps(update).encode(), headers=headers).status_code


def on_telegram(client, slack, sapa, fakes, address: str = "700030") -> tuple[ProviderCustomer, str]:
    person = ProviderCustomer(client, fakes, "telegram", address, name="Wayan")
    person.write("saya mau bicara dengan petugas")
    slack.settle()
    card_ts = conversation_of(sapa).desk_ts
    assert card_ts
    return person, card_ts


def media_path(text: str, label: str) -> str:
    """The Sapa path of the link labelled `label` in Slack mrkdwn (entities decoded as Slack shows them)."""
    found = re.search(r"<(https://sapa\.example\.test/media/[^|>]+)\|" + re.escape(label) + ">", text)
    assert found, f"no link labelled {label!r} in {text!r}"
    return html.unescape(found.group(1)).removeprefix(PUBLIC)


def test_the_agent_opens_a_photo_place_contact_and_forward_from_the_thread(client, slack, sapa, fakes):
    person, card_ts = on_telegram(client, slack, sapa, fakes)
    file_id = fakes.add_telegram_file(PHOTO, file_path="photos/file_3.jpg")
    photo = [{"file_id": file_id, "file_unique_id": "AgADkettle", "width": 800, "height": 600}]
    assert send_raw(person, {"photo": photo, "caption": "<!channel> ketelnya rusak"}) == 200
    point = {"latitude": -6.2, "longitude": 106.816666}
    assert send_raw(person, {"location": point, "venue": {"location": point, "title": "Toko <Maju>",
                                                          "address": "Jl. Sudirman 1, Jakarta"}}) == 200
    assert send_raw(person, {"contact": {"phone_number": "+6281311112222", "first_name": "Budi",
                                         "last_name": "Kurir", "user_id": 99}}) == 200
    assert person.write("PROMO! klik sini", extra={"forward_origin": {
        "type": "hidden_user", "sender_user_name": "Toko Sebelah", "date": 1700000000}}) == 200
    slack.settle()
    thread = "\n".join(slack.thread(card_ts))
    assert "telegram:file" not in thread and file_id not in thread  # never the provider's reference
    assert "&lt;!channel&gt; ketelnya rusak" in thread and "<!channel>" not in thread
    assert ("📍 Toko &lt;Maju&gt;, Jl. Sudirman 1, Jakarta — -6.2, 106.816666 · "
            "<https://www.openstreetmap.org/?mlat=-6.2&amp;mlon=106.816666#map=17/-6.2/106.816666|map>") in thread
    assert "👤 Contact: Budi Kurir, +6281311112222 (someone else's contact)" in thread
    assert "↪️ Forwarded from Toko Sebelah" in thread

    response = client.get(media_path(thread, "photo · image/jpeg"))  # the agent clicks the link
    assert response.status_code == 200 and response.content == PHOTO
    with sapa.database.unit_of_work(read_only=True) as session:
        opened = session.execute(select(AuditEntry).where(AuditEntry.action == "media.open")).scalar_one()
        photo_row = session.execute(select(Message).where(Message.direction == "in")
                                    .order_by(Message.id)).scalars().all()[1]
    assert opened.detail["message_id"] == photo_row.id and opened.detail["customer_id"] == photo_row.customer_id


def test_the_cards_last_messages_link_the_files_too(client, slack, sapa, fakes):
    person = ProviderCustomer(client, fakes, "telegram", "700031", name="Wayan")
    file_id = fakes.add_telegram_file(b"%PDF nota", file_path="documents/file_9.pdf", content_type="application/pdf")
    assert send_raw(person, {"document": {"file_id": file_id, "file_unique_id": "AgADnota", "file_name": "nota.pdf",
                                          "mime_type": "application/pdf"}}) == 200
    person.write("saya mau bicara dengan petugas")
    slack.settle()
    sections = [b["text"]["text"] for b in slack.card()["blocks"] if b["type"] == "section" and "text" in b]
    [last_messages] = [text for text in sections if text.startswith("*Last messages*")]
    assert client.get(media_path(last_messages, "nota.pdf · application/pdf")).content == b"%PDF nota"


# -- issue 14, point 5: a file an agent shares reaches the customer, or the agent hears why ---------


def agent_messages(sapa) -> list[Message]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return list(session.execute(select(Message).where(Message.sender == "agent", Message.direction == "out")
                                    .order_by(Message.id)).scalars())


def test_an_agents_file_is_uploaded_to_a_telegram_customer(client, slack, sapa, fakes):
    person, card_ts = on_telegram(client, slack, sapa, fakes)
    refund = fakes.add_slack_file(b"%PDF-1.7 refund", name="bukti-refund.pdf")
    photo = fakes.add_slack_file(b"\xff\xd8 parcel", name="paket.jpg", mimetype="image/jpeg")
    files = [refund, {"id": photo["id"], "mode": "file_access", "file_access": "check_file_info"}]  # Slack Connect
    assert slack.reply("U0RINA", card_ts, "Ini buktinya &amp; fotonya", extra={"subtype": "file_share",
                                                                             "files": files}) == 200
    slack.settle()
    uploads = [r for r in person.received() if r.method in ("sendDocument", "sendPhoto")]
    assert [(r.method, r.params.get("caption")) for r in uploads] == [
        ("sendDocument", "Ini buktinya & fotonya"), ("sendPhoto", None)]
    assert uploads[0].params["document"] == "<file bukti-refund.pdf 15 bytes>"
    assert uploads[1].params["photo"] == "<file file 9 bytes>"  # files.info said where it is; no name given
    assert all(r.headers["authorization"] == "Bearer xoxb-test-token"
               for r in fakes.requests("slack", "files.download"))
    [message] = agent_messages(sapa)
    assert [m["url"][:6] for m in message.media] == ["slack:", "slack:"] and message.delivery_status == "sent"


def test_an_agents_file_reaches_a_whatsapp_customer_through_a_signed_public_link(client, slack, sapa, fakes):
    person = ProviderCustomer(client, fakes, "whatsapp", "+6281200000088", name="Dewi")
    person.write("saya mau bicara dengan petugas")
    slack.settle()
    card_ts = conversation_of(sapa).desk_ts
    shown = fakes.add_slack_file(b"\x89PNG map", name="peta.png", mimetype="image/png")
    assert slack.reply("U0RINA", card_ts, "", extra={"files": [shown]}) == 200  # newer clients: no subtype
    slack.settle()
    [sent] = [r for r in person.received() if r.params.get("MediaUrl")]
    assert sent.params["MediaUrl"].startswith(f"{PUBLIC}/media/") and "Body" not in sent.params
    assert "slack" not in sent.params["MediaUrl"]  # Twilio never sees Slack's URL or token
    response = client.get(sent.params["MediaUrl"].removeprefix(PUBLIC))  # what Twilio fetches
    assert response.status_code == 200 and response.content == b"\x89PNG map"


def test_an_agents_file_reaches_a_web_chat_customer_as_a_link(customer, slack, sapa, fakes, client):
    _, card_ts = handed_off(customer, slack)
    shown = fakes.add_slack_file(b"%PDF panduan", name="panduan.pdf")
    slack.reply("U0RINA", card_ts, "Panduannya, Pak", extra={"subtype": "file_share", "files": [shown]})
    slack.settle()
    [said] = [m["text"] for m in customer.history() if m["sender"] == "agent"]
    first, link_line = said.split("\n")
    assert first == "Panduannya, Pak" and link_line.startswith(f"📎 panduan.pdf: {PUBLIC}/media/")
    assert client.get(link_line.split(": ", 1)[1].removeprefix(PUBLIC)).content == b"%PDF panduan"


def test_a_file_that_cannot_go_is_named_in_the_thread_with_the_reason(client, slack, sapa, fakes):
    person = ProviderCustomer(client, fakes, "sms", "+6281200000099", name="Joko")
    person.write("saya mau bicara dengan petugas")
    slack.settle()
    card_ts = conversation_of(sapa).desk_ts
    big = fakes.add_slack_file(b"x", name="katalog.pdf", size=6 * 1024 * 1024)
    drive = {**fakes.add_slack_file(b"y", name="Sheet"), "mode": "external", "is_external": True}
    slack.reply("U0RINA", card_ts, "", extra={"subtype": "file_share", "files": [big, drive]})
    slack.settle()
    thread = "\n".join(slack.thread(card_ts))
    assert "<@U0RINA> katalog.pdf was not sent to the customer: it is 6.0 MB and sms takes at most 5 MB" in thread
    assert "Sheet was not sent to the customer: it is a link to a file outside Slack" in thread
    assert [r for r in person.received() if r.params.get("MediaUrl")] == [] and agent_messages(sapa) == []


@pytest.mark.without_public_url
def test_a_file_for_twilio_needs_a_public_url_and_the_agent_is_told(client, slack, sapa, fakes):
    person = ProviderCustomer(client, fakes, "sms", "+6281200000099", name="Joko")
    # Behind a proxy without server.public_base_url, Twilio's signature is checked against the forwarded host.
    path, body, headers = person.request("saya mau bicara dengan petugas")
    headers.update({"x-forwarded-proto": "https", "x-forwarded-host": "sapa.example.test"})
    assert client.post(path, content=body, headers=headers).status_code == 200
    slack.settle()
    card_ts = conversation_of(sapa).desk_ts
    small = fakes.add_slack_file(b"z", name="nota.pdf")
    slack.reply("U0RINA", card_ts, "notanya", extra={"subtype": "file_share", "files": [small]})
    slack.settle()
    assert "nota.pdf was not sent to the customer: sms goes through Twilio, which fetches files from a public link, " \
           "and server.public_base_url is not set" in "\n".join(slack.thread(card_ts))
    assert person.texts()[-1] == "notanya"  # the words still go


def test_a_file_slack_will_not_hand_over_is_reported_in_the_thread(client, slack, sapa, fakes):
    person, card_ts = on_telegram(client, slack, sapa, fakes, address="700032")
    shown = fakes.add_slack_file(b"gone", name="hilang.pdf")
    deleted = {**shown, "url_private_download": shown["url_private_download"].replace(shown["id"], "F0DELETED")}
    slack.reply("U0RINA", card_ts, "", extra={"subtype": "file_share", "files": [deleted]})
    slack.settle()
    assert [r for r in person.received() if r.method == "sendDocument"] == []
    [message] = agent_messages(sapa)
    assert message.delivery_status == "failed"
    assert any("<@U0RINA> hilang.pdf did not reach the customer: Slack refused the file download (404)" in text
               for text in slack.thread(card_ts))


def test_a_redelivered_file_share_sends_the_file_once(client, slack, sapa, fakes):
    person, card_ts = on_telegram(client, slack, sapa, fakes, address="700033")
    shown = fakes.add_slack_file(b"%PDF once", name="sekali.pdf")
    for retry in (0, 1):
        assert slack.reply("U0RINA", card_ts, "", event_id="Ev-file-once", retry=retry,
                           extra={"subtype": "file_share", "files": [shown]}) == 200
    slack.settle()
    assert len([r for r in person.received() if r.method == "sendDocument"]) == 1


# -- issue 14, point 5: a claim never silently takes a conversation over ----------------------------


def ephemerals(fakes, user: str) -> list[dict[str, Any]]:
    return [r.params for r in fakes.requests("slack", "chat.postEphemeral") if r.params.get("user") == user]


def test_claiming_a_held_conversation_says_who_holds_it_and_changes_nothing(customer, slack, sapa, fakes):
    conversation, card_ts = handed_off(customer, slack)
    slack.press("U0RINA", "claim", conversation.id, card_ts)
    slack.settle()
    slack.press("U0AMGR", "claim", conversation.id, card_ts)
    slack.settle()
    [note] = ephemerals(fakes, "U0AMGR")
    assert note["text"].startswith(f"Rina already holds conversation #{conversation.id}; it was not claimed.")
    assert "ask a supervisor" in note["text"] and "sapa_takeover" not in json.dumps(note.get("blocks") or [])
    with sapa.database.unit_of_work(read_only=True) as session:
        held = session.get(Conversation, conversation.id)
        rina = session.execute(select(Agent).where(Agent.slack_user_id == "U0RINA")).scalar_one()
        assert held.owner_agent_id == rina.id
    assert [m["text"] for m in customer.history()].count(
        "Halo, saya Rina dari PT Contoh Sejahtera. Saya yang akan membantu Anda sekarang.") == 1
    assert not any("Andi" in m["text"] for m in customer.history())


def test_a_supervisor_takes_over_explicitly_and_both_agents_are_told(customer, slack, sapa, fakes):
    conversation, card_ts = handed_off(customer, slack)
    slack.press("U0RINA", "claim", conversation.id, card_ts)
    slack.settle()
    slack.press("U0SUPER", "claim", conversation.id, card_ts)  # a claim is still not a takeover
    slack.settle()
    [offer] = ephemerals(fakes, "U0SUPER")
    assert "Rina already holds" in offer["text"] and "sapa_takeover" in json.dumps(offer["blocks"])
    assert conversation_of(sapa).owner_agent_id != agent_id(sapa, "U0SUPER")

    slack.press("U0SUPER", "takeover", conversation.id, card_ts)
    slack.settle()
    assert conversation_of(sapa).owner_agent_id == agent_id(sapa, "U0SUPER")
    assert ephemerals(fakes, "U0SUPER")[-1]["text"] == (
        f"You now hold conversation #{conversation.id}; Rina was told in its thread.")
    assert any(text.startswith("🔀 Sari (supervisor) took over this conversation from <@U0RINA>")
               for text in slack.thread(card_ts))
    assert customer.history()[-1]["text"] == (
        "Halo, saya Sari dari PT Contoh Sejahtera. Saya yang akan membantu Anda sekarang.")
    with sapa.database.unit_of_work(read_only=True) as session:
        entry = session.execute(select(AuditEntry).where(AuditEntry.action == "conversation.takeover")).scalar_one()
    assert (entry.actor, entry.subject_id) == (f"agent:{agent_id(sapa, 'U0SUPER')}", str(conversation.id))
    assert entry.detail["from"] == "Rina" and entry.detail["to"] == "Sari"


def test_takeover_by_slash_command_is_for_supervisors_and_management(customer, slack, sapa, fakes):
    conversation, card_ts = handed_off(customer, slack)
    slack.press("U0RINA", "claim", conversation.id, card_ts)
    slack.settle()
    assert slack.command("U0AMGR", f"takeover {conversation.id}")["text"].startswith(
        "Only supervisors and management can take over")
    assert "No conversation `#999999`" in slack.command("U0BOSS", "takeover #999999")["text"]
    answer = slack.command("U0BOSS", f"takeover #{conversation.id}")["text"]
    assert answer == f"You now hold conversation #{conversation.id}; Rina was told in its thread."
    slack.settle()
    assert conversation_of(sapa).owner_agent_id == agent_id(sapa, "U0BOSS")
    assert any("took over this conversation from <@U0RINA>" in text for text in slack.thread(card_ts))
    assert "takeover CONVERSATION" in slack.command("U0RINA", "help")["text"]


def agent_id(sapa, slack_user: str) -> int:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Agent.id).where(Agent.slack_user_id == slack_user)).scalar_one()


def test_no_file_goes_to_whatsapp_once_the_24_hour_window_closed(client, slack, sapa, fakes, clock):
    person = ProviderCustomer(client, fakes, "whatsapp", "+6281200000066", name="Dewi")
    person.write("saya mau bicara dengan petugas")
    slack.settle()
    card_ts = conversation_of(sapa).desk_ts
    clock.advance(timedelta(hours=25))
    shown = fakes.add_slack_file(b"%PDF late", name="telat.pdf")
    slack.reply("U0RINA", card_ts, "", extra={"subtype": "file_share", "files": [shown]})
    slack.settle()
    assert any("telat.pdf was not sent to the customer: the WhatsApp 24-hour window is closed" in text
               for text in slack.thread(card_ts))
    assert [r for r in person.received() if r.params.get("MediaUrl")] == []
