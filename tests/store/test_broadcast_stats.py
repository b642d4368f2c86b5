"""CRM-4.4: a broadcast's numbers (queued, sent, delivered, read, failed by reason, replies, opt-outs,
redemptions and points attributed) and points per segment.

The rows are written straight into the database, as the broadcast sender, the outbox, the providers' status
callbacks, the consent dialogue and the loyalty ledger leave them, so every case is exact; the end-to-end
broadcast flows are tested with the broadcasts themselves.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from store.broadcast_stats import (
    BroadcastStats,
    ChannelStats,
    SegmentParticipation,
    broadcast_stats,
    render_stats,
    segment_participation,
)
from store.models import (
    Broadcast,
    BroadcastRecipient,
    ChannelIdentity,
    Consent,
    Conversation,
    Customer,
    CustomerScore,
    LoyaltyEntry,
    Message,
    OutboxItem,
    Redemption,
    Reward,
)

NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
SENT = NOW + timedelta(minutes=10)


def customer(session: Session, name: str) -> int:
    row = Customer(name=name, source="whatsapp", is_vip=False, created_at=NOW, updated_at=NOW)
    session.add(row)
    session.flush()
    return row.id


def conversation(session: Session, customer_id: int, channel: str) -> int:
    identity = ChannelIdentity(customer_id=customer_id, channel=channel, address=f"{channel}-{uuid.uuid4().hex[:10]}",
                               created_at=NOW)
    session.add(identity)
    session.flush()
    row = Conversation(customer_id=customer_id, identity_id=identity.id, channel=channel, status="bot",
                       language="id", opened_at=NOW, last_message_at=NOW, pending_data={})
    session.add(row)
    session.flush()
    return row.id


def broadcast(session: Session, name: str = "Promo Lebaran") -> int:
    row = Broadcast(name=name, filters={"segment": "champions"}, messages={"id": "Halo {{ name }}"},
                    channels=["whatsapp", "sms", "telegram"], status="sending", created_by="marketing",
                    created_at=NOW, updated_at=NOW, started_at=NOW)
    session.add(row)
    session.flush()
    return row.id


def skipped(session: Session, broadcast_id: int, customer_id: int, reason: str) -> None:
    session.add(BroadcastRecipient(broadcast_id=broadcast_id, customer_id=customer_id, status="skipped",
                                   skip_reason=reason, created_at=NOW))
    session.flush()


def queued(session: Session, broadcast_id: int, customer_id: int, channel: str, *, outbox: str = "sent",
           delivery: str | None = None, error: str | None = None, sent_at: datetime | None = SENT) -> None:
    """A recipient moved into the outbox; `outbox` is the row's status, `delivery` the provider's last report."""
    conversation_id = conversation(session, customer_id, channel)
    message = Message(conversation_id=conversation_id, customer_id=customer_id, channel=channel, direction="out",
                      sender="system", text="Promo Lebaran!", created_at=NOW,
                      delivery_status=delivery or {"sent": "sent", "failed": "failed"}.get(outbox, "queued"),
                      delivery_error=error if delivery == "failed" or outbox == "failed" else None)
    session.add(message)
    session.flush()
    item = OutboxItem(message_id=message.id, conversation_id=conversation_id, channel=channel,
                      recipient=f"addr-{customer_id}", payload={"text": "Promo Lebaran!"}, status=outbox, attempts=1,
                      next_attempt_at=NOW, created_at=NOW, sent_at=sent_at if outbox == "sent" else None,
                      last_error=error if outbox == "failed" else None)
    session.add(item)
    session.flush()
    session.add(BroadcastRecipient(broadcast_id=broadcast_id, customer_id=customer_id, channel=channel,
                                   address=item.recipient, language="id", status="queued", outbox_id=item.id,
                                   message_id=message.id, queued_at=NOW, created_at=NOW))
    session.flush()


def inbound(session: Session, customer_id: int, at: datetime, text: str = "mau dong") -> None:
    conversation_id = conversation(session, customer_id, "whatsapp")
    session.add(Message(conversation_id=conversation_id, customer_id=customer_id, channel="whatsapp",
                        direction="in", sender="customer", text=text, created_at=at))
    session.flush()


def opted_out(session: Session, customer_id: int, at: datetime) -> None:
    session.add(Consent(customer_id=customer_id, purpose="marketing", granted=False, channel="whatsapp",
                        evidence="STOP", recorded_at=at))
    session.flush()


def reward(session: Session) -> int:
    row = Reward(code="VCR50", names={"id": "Voucher 50rb", "en": "50k voucher"}, points_cost=300, stock=None,
                 active=True, created_at=NOW, updated_at=NOW)
    session.add(row)
    session.flush()
    return row.id


def redeemed(session: Session, customer_id: int, reward_id: int, at: datetime, *, broadcast_id: int | None,
             points: int = 300, status: str = "issued") -> None:
    session.add(Redemption(customer_id=customer_id, reward_id=reward_id, points=points,
                           voucher_code=f"V-{uuid.uuid4().hex[:10]}", status=status, channel="whatsapp",
                           actor="customer", broadcast_id=broadcast_id, created_at=at))
    session.flush()


def earned(session: Session, customer_id: int, points: int, at: datetime, kind: str = "earn") -> None:
    session.add(LoyaltyEntry(customer_id=customer_id, kind=kind, points=points, balance_after=max(points, 0),
                             remaining=max(points, 0), reason="purchase", actor="system", created_at=at))
    session.flush()


@pytest.fixture
def promo(database) -> tuple[int, dict[str, int]]:
    """One broadcast with recipients in every state; see the expected numbers in the first test."""
    with database.unit_of_work() as session:
        c = {name: customer(session, name) for name in (
            "read and replied", "delivered, replied late", "sms, stopped", "sms, undelivered", "invalid number",
            "telegram, not sent yet", "no consent 1", "no consent 2", "capped", "not queued yet",
            "late opt-out")}
        promo = broadcast(session)
        queued(session, promo, c["read and replied"], "whatsapp", delivery="read")
        queued(session, promo, c["delivered, replied late"], "whatsapp", delivery="delivered")
        queued(session, promo, c["sms, stopped"], "sms")
        queued(session, promo, c["sms, undelivered"], "sms", delivery="failed", error="30006 landline")
        queued(session, promo, c["invalid number"], "whatsapp", outbox="failed", error="invalid number")
        queued(session, promo, c["telegram, not sent yet"], "telegram", outbox="pending")
        queued(session, promo, c["late opt-out"], "whatsapp", delivery="delivered")
        skipped(session, promo, c["no consent 1"], "no marketing consent")
        skipped(session, promo, c["no consent 2"], "no marketing consent")
        skipped(session, promo, c["capped"], "frequency cap")
        session.add(BroadcastRecipient(broadcast_id=promo, customer_id=c["not queued yet"], status="pending",
                                       created_at=NOW))

        # Replies: within 72 hours after their message was sent, and not before it.
        inbound(session, c["read and replied"], SENT + timedelta(hours=71, minutes=59))
        inbound(session, c["delivered, replied late"], SENT + timedelta(hours=72, minutes=1))
        inbound(session, c["sms, stopped"], SENT + timedelta(hours=1), "STOP")
        opted_out(session, c["sms, stopped"], SENT + timedelta(hours=1))
        inbound(session, c["late opt-out"], SENT - timedelta(minutes=5))  # wrote before the broadcast
        opted_out(session, c["late opt-out"], SENT + timedelta(hours=100))
        inbound(session, c["telegram, not sent yet"], SENT + timedelta(hours=1))  # never got it: not a reply

        # Redemptions: attributed to the broadcast, one cancelled; another one not attributed.
        voucher = reward(session)
        redeemed(session, c["read and replied"], voucher, SENT + timedelta(days=1), broadcast_id=promo)
        redeemed(session, c["read and replied"], voucher, SENT + timedelta(days=1), broadcast_id=promo,
                 status="cancelled")
        redeemed(session, c["delivered, replied late"], voucher, SENT + timedelta(days=2), broadcast_id=None)

        # Points earned within loyalty.attribution_days (7) after their message was sent.
        earned(session, c["delivered, replied late"], 50, SENT + timedelta(days=2))
        earned(session, c["read and replied"], 80, SENT + timedelta(days=10))  # too late
        earned(session, c["telegram, not sent yet"], 40, SENT + timedelta(days=1))  # not reached
        earned(session, c["sms, stopped"], -30, SENT + timedelta(days=1), kind="redeem")  # not earned

        # Another broadcast to one of the same customers counts for that one only.
        other = broadcast(session, "Flash sale")
        queued(session, other, c["read and replied"], "whatsapp", delivery="read")
    return promo, c


def test_crm_4_4_broadcast_stats_count_every_outcome(database, settings, promo):
    promo_id, _ = promo
    with database.unit_of_work(read_only=True) as session:
        stats = broadcast_stats(session, settings, promo_id, NOW + timedelta(days=14))
    assert stats == BroadcastStats(
        broadcast_id=promo_id, name="Promo Lebaran", status="sending", started_at=NOW, finished_at=None,
        recipients=11, waiting=1, skipped=3, skipped_by_reason={"no marketing consent": 2, "frequency cap": 1},
        queued=7,
        by_channel={"sms": ChannelStats(queued=2, pending=0, sent=2, delivered=0, read=0, failed=1),
                    "telegram": ChannelStats(queued=1, pending=1, sent=0, delivered=0, read=0, failed=0),
                    "whatsapp": ChannelStats(queued=4, pending=0, sent=3, delivered=3, read=1, failed=1)},
        pending=1, sent=5, delivered=3, read=1, failed=2,
        failed_by_reason={"30006 landline": 1, "invalid number": 1},
        replies=2, opt_outs=1, redemptions=1, redeemers=1, points_redeemed=300, earners=1, points_earned=50,
        reply_window_hours=72, attribution_days=7,
        rates={"delivered": 60.0, "read": 20.0, "reply": 40.0, "opt_out": 20.0, "redemption": 20.0},
    )


def test_crm_4_4_reply_window_follows_the_setting(database, settings, promo):
    promo_id, _ = promo
    wider = settings.model_copy(update={
        "broadcasts": settings.broadcasts.model_copy(update={"reply_window_hours": 120}),
        "loyalty": settings.loyalty.model_copy(update={"attribution_days": 14})})
    with database.unit_of_work(read_only=True) as session:
        stats = broadcast_stats(session, wider, promo_id, NOW + timedelta(days=14))
    # The late reply (72 h 1 min) and the late opt-out (100 h) now count; so do the points of day 10.
    assert (stats.replies, stats.opt_outs, stats.earners, stats.points_earned) == (3, 2, 2, 130)
    assert stats.rates["reply"] == 60.0


def test_crm_4_4_stats_read_as_text_for_the_cli_and_slack(database, settings, promo):
    promo_id, _ = promo
    with database.unit_of_work(read_only=True) as session:
        text = render_stats(broadcast_stats(session, settings, promo_id, NOW))
    assert text.splitlines() == [
        f"Broadcast #{promo_id} Promo Lebaran (sending, started 2026-01-05 02:00 UTC)",
        "- Recipients: 11: 7 queued, 3 skipped (no marketing consent 2, frequency cap 1), 1 not queued yet",
        "- Channels: sms 2 queued / 2 sent / 0 delivered / 0 read / 1 failed, telegram 1 queued / 0 sent / "
        "0 delivered / 0 read / 0 failed, whatsapp 4 queued / 3 sent / 3 delivered / 1 read / 1 failed",
        "- Sent: 5, not sent yet: 1",
        "- Delivered: 3 (60.0% of sent), read: 1 (20.0%)",
        "- Failed: 2 (30006 landline 1, invalid number 1)",
        "- Replies within 72 h: 2 (40.0%), opt-outs: 1 (20.0%)",
        "- Redemptions attributed: 1 by 1 customers (20.0%), 300 points",
        "- Points earned by recipients within 7 days: 50 (1 customers)",
    ]


def test_crm_4_4_a_broadcast_nobody_received_yet_has_no_rates(database, settings):
    with database.unit_of_work() as session:
        empty = broadcast(session, "Draft")
        stats = broadcast_stats(session, settings, empty, NOW)
        assert (stats.recipients, stats.sent, stats.by_channel, stats.failed_by_reason) == (0, 0, {}, {})
        assert set(stats.rates.values()) == {None}
        assert "- Delivered: 0 (- of sent), read: 0 (-)" in render_stats(stats)
        with pytest.raises(LookupError, match="no broadcast #999999"):
            broadcast_stats(session, settings, 999_999, NOW)


def test_crm_4_4_points_earned_and_redemptions_per_segment(database):
    start, end = NOW, NOW + timedelta(days=7)
    with database.unit_of_work() as session:
        ids = {name: customer(session, name) for name in ("champ 1", "champ 2", "at risk", "new, unscored")}
        for name, segment in (("champ 1", "champions"), ("champ 2", "champions"), ("at risk", "at_risk")):
            session.add(CustomerScore(customer_id=ids[name], recency=5, frequency=5, monetary=5, segment=segment,
                                      purchases=3, spent=1_000_000, interactions=0, computed_at=NOW))
        voucher = reward(session)
        earned(session, ids["champ 1"], 100, NOW + timedelta(days=1))
        earned(session, ids["champ 1"], 60, NOW + timedelta(days=2))
        earned(session, ids["champ 2"], 40, NOW + timedelta(days=3))
        earned(session, ids["champ 2"], 999, NOW - timedelta(days=1))  # before the period
        earned(session, ids["at risk"], 999, end)  # the end is not in the period
        earned(session, ids["new, unscored"], 25, NOW + timedelta(days=1))
        redeemed(session, ids["champ 1"], voucher, NOW + timedelta(days=4), broadcast_id=None)
        redeemed(session, ids["at risk"], voucher, NOW + timedelta(days=4), broadcast_id=None, points=500)
        redeemed(session, ids["at risk"], voucher, NOW + timedelta(days=5), broadcast_id=None, status="cancelled")
        rows = segment_participation(session, start, end)
    assert rows == [
        SegmentParticipation("champions", customers=2, earners=2, points_earned=200, redeemers=1, redemptions=1,
                             points_redeemed=300),
        SegmentParticipation("at_risk", customers=1, earners=0, points_earned=0, redeemers=1, redemptions=1,
                             points_redeemed=500),
        SegmentParticipation("(unscored)", customers=0, earners=1, points_earned=25, redeemers=0, redemptions=0,
                             points_redeemed=0),
    ]
