"""The loyalty ledger (store/loyalty.py, CRM-4.2) on the real databases: earning once per transaction, the tier
multiplier floored, FIFO spending, expiry that never goes below zero, the rewards catalogue synced without
overwriting stock, voucher codes, and redemptions attributed to the broadcast that reached the customer
(CRM-4.4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.config import Settings
from store import Database, loyalty
from store.models import (
    Broadcast,
    BroadcastRecipient,
    Customer,
    LoyaltyAccount,
    LoyaltyEntry,
    OutboxItem,
    Redemption,
    Reward,
    Transaction,
)

NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def customer(database: Database, name: str = "Budi") -> int:
    with database.unit_of_work() as session:
        row = Customer(name=name, source="test", created_at=NOW, updated_at=NOW)
        session.add(row)
        session.flush()
        return row.id


def purchase(database: Database, settings: Settings, customer_id: int, external_id: str, amount: int,
             occurred_at: datetime = NOW, now: datetime = NOW) -> LoyaltyEntry | None:
    with database.unit_of_work() as session:
        row = Transaction(customer_id=customer_id, external_id=external_id, amount=amount, occurred_at=occurred_at,
                          source="api", created_at=now)
        session.add(row)
        session.flush()
        entry = loyalty.earn(session, settings, customer_id, row, now)
        return None if entry is None else session.get_one(LoyaltyEntry, entry.id)


def balance(database: Database, customer_id: int) -> int:
    with database.unit_of_work(read_only=True) as session:
        account = session.get_one(LoyaltyAccount, customer_id)
        assert loyalty.ledger_total(session, customer_id) == account.balance
        return account.balance


def test_crm_4_2_a_transaction_earns_once_even_when_asked_twice(database, settings):
    budi = customer(database)
    entry = purchase(database, settings, budi, "INV-1", 1_259_000)
    assert entry is not None and (entry.points, entry.remaining, entry.balance_after) == (125, 125, 125)
    assert entry.expires_at == datetime(2027, 1, 5, 2, 0, tzinfo=UTC)
    with database.unit_of_work() as session:
        again = loyalty.earn(session, settings, budi, session.execute(select(Transaction)).scalar_one(), NOW)
    assert again is None
    assert balance(database, budi) == 125


def test_crm_4_2_tier_multiplier_is_applied_and_floored(database, settings):
    budi = customer(database)
    purchase(database, settings, budi, "INV-1", 10_000_000)  # 1000 points: silver (1.1x)
    assert purchase(database, settings, budi, "INV-2", 299_999).points == 31  # 29 x 1.1 = 31.9 -> 31
    assert purchase(database, settings, budi, "INV-3", 300_000).points == 33
    assert loyalty.points_for(settings, 200_000, 1.15) == 23  # 20 x 1.15 in floats is 22.999999999999996


def test_crm_4_2_programme_off_earns_nothing(database, settings):
    off = settings.model_copy(update={"loyalty": settings.loyalty.model_copy(update={"enabled": False})})
    budi = customer(database)
    assert purchase(database, off, budi, "INV-1", 5_000_000) is None
    with database.unit_of_work(read_only=True) as session:
        assert session.get(LoyaltyAccount, budi) is None
        assert loyalty.summary(session, off, budi, NOW).balance == 0


def test_crm_4_2_spending_takes_the_points_that_expire_first(database, settings):
    budi = customer(database)
    purchase(database, settings, budi, "NEW", 3_000_000, occurred_at=NOW - timedelta(days=10))  # 300
    purchase(database, settings, budi, "OLD", 2_000_000, occurred_at=NOW - timedelta(days=300))  # 200, older
    with database.unit_of_work() as session:
        loyalty.adjust(session, settings, budi, -250, "correction", "test", NOW)
    with database.unit_of_work(read_only=True) as session:
        left = {e.reason: e.remaining for e in session.execute(
            select(LoyaltyEntry).where(LoyaltyEntry.kind == "earn")).scalars()}
    assert left == {"transaction OLD": 0, "transaction NEW": 250}
    with database.unit_of_work() as session, pytest.raises(loyalty.LoyaltyError) as refused:
        loyalty.adjust(session, settings, budi, -251, "too much", "test", NOW)
    assert refused.value.reason == "insufficient_points" and str(refused.value) == (
        "cannot take 251 points: the balance is 250")
    assert balance(database, budi) == 250


def test_crm_4_2_expiry_takes_only_points_left_and_tells_what_is_expiring(database, settings):
    budi = customer(database)
    purchase(database, settings, budi, "OLD", 4_000_000, occurred_at=datetime(2025, 1, 20, tzinfo=UTC))  # 400
    purchase(database, settings, budi, "NEW", 1_000_000)  # 100
    with database.unit_of_work() as session:
        loyalty.redeem(session, settings, budi, "ONGKIR", "cli", "cli", NOW)  # 200 of the old points
        summary = loyalty.summary(session, settings, budi, NOW)
    assert (summary.balance, summary.expiring_points, summary.expiring_on) == (
        300, 200, datetime(2026, 1, 20, tzinfo=UTC))
    assert (summary.tier, summary.next_tier, summary.points_to_next) == ("member", "silver", 500)
    later = datetime(2026, 1, 21, tzinfo=UTC)
    with database.unit_of_work() as session:
        assert loyalty.expire(session, settings, later) == {budi: 200}
        assert loyalty.expire(session, settings, later) == {}  # nothing twice
    assert balance(database, budi) == 100
    with database.unit_of_work(read_only=True) as session:
        last = loyalty.ledger(session, budi, 1)[0]
        assert (last.kind, last.points, last.balance_after) == ("expire", -200, 100)
        # The old purchase left the tier window too: the tier counts the new one only.
        assert loyalty.tier_points(session, settings, budi, later) == 100


def test_crm_4_2_config_rewards_are_added_once_and_stock_is_never_overwritten(database, settings):
    with database.unit_of_work() as session:
        assert loyalty.sync_rewards(session, settings, NOW) == 3
    with database.unit_of_work() as session:
        session.execute(select(Reward).where(Reward.code == "SERVIS")).scalar_one().stock = 7
    with database.unit_of_work() as session:
        assert loyalty.sync_rewards(session, settings, NOW) == 0
        assert [(r.code, r.stock) for r in loyalty.catalogue(session)] == [
            ("ONGKIR", None), ("VCR50", None), ("SERVIS", 7)]


def test_crm_4_2_reward_errors_are_clear_and_change_nothing(database, settings):
    budi = customer(database)
    purchase(database, settings, budi, "INV-1", 6_000_000)  # 600 points, member
    expected = {"NOPE": ("unknown_reward", "no reward 'NOPE' in the catalogue"),
                "SERVIS": ("tier_too_low", "reward SERVIS needs tier silver (customer is member)")}
    for code, (reason, message) in expected.items():
        with database.unit_of_work() as session, pytest.raises(loyalty.LoyaltyError) as refused:
            loyalty.redeem(session, settings, budi, code, "cli", "cli", NOW)
        assert (refused.value.reason, str(refused.value)) == (reason, message)
    with database.unit_of_work() as session:
        session.execute(select(Reward).where(Reward.code == "VCR50")).scalar_one().stock = 0
    with database.unit_of_work() as session, pytest.raises(loyalty.LoyaltyError) as refused:
        loyalty.redeem(session, settings, budi, "VCR50", "cli", "cli", NOW)
    assert refused.value.reason == "out_of_stock"
    assert balance(database, budi) == 600


def test_crm_4_2_vouchers_are_readable_unique_and_a_request_key_redeems_once(database, settings):
    budi = customer(database)
    purchase(database, settings, budi, "INV-1", 10_000_000)  # 1000 points
    with database.unit_of_work() as session:
        first = loyalty.redeem(session, settings, budi, "ONGKIR", "webchat", "customer", NOW, request_key="k1")
        repeat = loyalty.redeem(session, settings, budi, "ONGKIR", "webchat", "customer", NOW, request_key="k1")
        other = loyalty.redeem(session, settings, budi, "ongkir", "cli", "cli", NOW)
        codes = (first.voucher_code, repeat.voucher_code, other.voucher_code)
    assert codes[0] == codes[1] != codes[2]
    assert all(len(code) == 14 and set(code.replace("-", "")) <= set(loyalty.VOUCHER_ALPHABET) for code in codes)
    randoms = {loyalty.new_voucher_code() for _ in range(2000)}
    assert len(randoms) == 2000
    assert balance(database, budi) == 600
    with database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(Redemption)).scalar_one() == 2


def test_crm_4_4_a_redemption_is_attributed_to_the_broadcast_that_reached_the_customer(database, settings):
    budi, siti = customer(database, "Budi"), customer(database, "Siti")
    for who, invoice in ((budi, "INV-1"), (siti, "INV-2")):
        purchase(database, settings, who, invoice, 10_000_000)
    with database.unit_of_work() as session:
        for name, sent_days_ago, status in (("old", 9, "sent"), ("recent", 2, "sent"), ("unsent", 1, "failed")):
            cast = Broadcast(name=name, status="done", created_by="test", created_at=NOW, updated_at=NOW)
            session.add(cast)
            session.flush()
            sent = NOW - timedelta(days=sent_days_ago)
            item = OutboxItem(channel="sms", recipient="+628", payload={}, status=status, next_attempt_at=sent,
                              created_at=sent, sent_at=sent if status == "sent" else None)
            session.add(item)
            session.flush()
            session.add(BroadcastRecipient(broadcast_id=cast.id, customer_id=budi, status="queued",
                                           outbox_id=item.id, queued_at=sent, created_at=sent))
    with database.unit_of_work() as session:
        budi_redeemed = loyalty.redeem(session, settings, budi, "ONGKIR", "sms", "customer", NOW)
        siti_redeemed = loyalty.redeem(session, settings, siti, "ONGKIR", "sms", "customer", NOW)
        recent = session.execute(select(Broadcast.id).where(Broadcast.name == "recent")).scalar_one()
        assert (budi_redeemed.broadcast_id, siti_redeemed.broadcast_id) == (recent, None)
    with database.unit_of_work() as session:
        late = loyalty.redeem(session, settings, budi, "ONGKIR", "sms", "customer", NOW + timedelta(days=6))
        assert late.broadcast_id is None  # 8 days after the last one that reached Budi: outside the 7 days
