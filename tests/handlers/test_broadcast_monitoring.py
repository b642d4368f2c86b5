"""CRM-4.4: how a broadcast did, measured from what happened on the channels afterwards.

A broadcast goes to four consenting customers on WhatsApp, SMS and Telegram (a fifth never agreed to marketing).
Twilio then reports deliveries, a read and a failure; customers answer on their channels: a thank-you, a STOP, and a
points redemption over WhatsApp. Marketing reads the result from the HTTP API and in Slack.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.app import Sapa
from store.customers import find_identity
from store.models import Message
from tests.bot import test_broadcasts_api
from tests.handlers.test_broadcasts import MESSAGES, person, run
from tests.support.providers import ProviderCustomer, drain
from tests.support.slack import Slack

sapa = test_broadcasts_api.sapa  # the fixture: the app with SAPA_API_TOKEN set
AUTH = {"authorization": f"Bearer {test_broadcasts_api.TOKEN}", "x-sapa-agent": "U0MKT"}  # Maya, marketing


def broadcast_sid(sapa: Sapa, who: ProviderCustomer) -> str:
    """The provider id of the broadcast message this person received."""
    with sapa.database.unit_of_work(read_only=True) as session:
        identity = find_identity(session, who.channel, who.address)
        assert identity is not None
        found = [m.provider_message_id for m in session.execute(
            select(Message).where(Message.customer_id == identity.customer_id, Message.direction == "out"))
            .scalars() if (m.meta or {}).get("broadcast_id")]
    assert len(found) == 1 and found[0]
    return str(found[0])


def test_crm_4_4_deliveries_reads_failures_replies_opt_outs_and_redemptions_are_counted_per_broadcast(
        client: Any, fakes: Any, slack: Slack, sapa: Sapa, clock: Any) -> None:
    ani = person(client, fakes, sapa, "whatsapp", "+6281211110001", "Ani")
    budi = person(client, fakes, sapa, "sms", "+6281211110002", "Budi")
    citra = person(client, fakes, sapa, "telegram", "700301", "Citra")
    dodi = person(client, fakes, sapa, "whatsapp", "+6281211110004", "Dodi")
    person(client, fakes, sapa, "sms", "+6281211110005", "Eka", consent=False)
    bought = client.post("/api/transactions", headers=AUTH, json={
        "external_id": "ERP-9001", "amount": 3_000_000, "occurred_at": clock.now().isoformat(),
        "customer_phone": ani.address})
    assert bought.status_code in (200, 201), bought.text  # 300 points: enough for the free delivery (200)
    drain(sapa, clock)

    made = client.post("/api/broadcasts", headers=AUTH, json={
        "name": "Promo akhir tahun", "filters": {}, "messages": MESSAGES, "channels": ["whatsapp", "sms", "telegram"]})
    assert made.status_code == 201, made.text
    broadcast_id = made.json()["id"]
    assert client.post(f"/api/broadcasts/{broadcast_id}/schedule", headers=AUTH).status_code == 200
    assert run(sapa, clock, broadcast_id) == "done"

    # Twilio reports what happened to the WhatsApp and SMS messages; Telegram reports nothing.
    assert ani.report(broadcast_sid(sapa, ani), "delivered") == 200
    assert ani.report(broadcast_sid(sapa, ani), "read") == 200
    assert budi.report(broadcast_sid(sapa, budi), "delivered") == 200
    assert dodi.report(broadcast_sid(sapa, dodi), "undelivered", error_code="30006") == 200

    clock.advance(timedelta(hours=2))
    citra.write("makasih infonya kak")
    budi.write("STOP")
    ani.write("tukar poin")
    drain(sapa, clock)
    ani.write("1")  # Gratis ongkir 1x
    drain(sapa, clock)
    ani.write("1")  # Ya
    drain(sapa, clock)
    assert "Kode voucher Anda" in ani.texts()[-1]

    stats = client.get(f"/api/broadcasts/{broadcast_id}", headers=AUTH).json()["stats"]
    assert {key: stats[key] for key in ("recipients", "queued", "skipped", "sent", "delivered", "read", "failed",
                                        "replies", "opt_outs", "redemptions", "points_redeemed")} == {
        "recipients": 5, "queued": 4, "skipped": 1, "sent": 4, "delivered": 2, "read": 1, "failed": 1,
        "replies": 3, "opt_outs": 1, "redemptions": 1, "points_redeemed": 200}
    assert stats["skipped_by_reason"] == {"no_consent": 1}
    assert stats["failed_by_reason"] == {"30006: landline or unreachable carrier": 1}
    assert stats["by_channel"]["whatsapp"] == {"queued": 2, "pending": 0, "sent": 2, "delivered": 1, "read": 1,
                                               "failed": 1}
    assert stats["rates"]["delivered"] == 50.0 and stats["rates"]["opt_out"] == 25.0

    # The same numbers in Slack, for marketing.
    answer = slack.command("U0MKT", f"broadcast status {broadcast_id}")["text"]
    assert "Delivered: 2 (50.0% of sent), read: 1 (25.0%)" in answer
    assert "Failed: 1 (30006: landline or unreachable carrier 1)" in answer
    assert "Replies within 72 h: 3 (75.0%), opt-outs: 1 (25.0%)" in answer
    assert "Redemptions attributed: 1 by 1 customers (25.0%), 200 points" in answer
