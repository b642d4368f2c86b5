"""CRM-4.1: segments by filters, previewed with counts, saved by name, on a crafted population (both databases).

The population (ManualClock now = Monday 2026-01-05 09:00 WIB):
  #a Ani   gold, VIP platinum, champions, WhatsApp, id, bought 10 days ago, 6000 points, marketing yes
  #b Budi  member, loyal, SMS + Telegram, en, bought 200 days ago, 100 points, marketing yes
  #c Citra silver, at_risk, Telegram (undeliverable), id, no purchase, no account, marketing yes then STOP
  #d Dodi  no tier, new, SMS, no language, bought 2 days ago, marketing never asked
  #e Eka   merged into Ani: never matches
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.clock import ManualClock
from store import segments
from store.consents import record
from store.models import ChannelIdentity, Customer, CustomerScore, LoyaltyAccount, Transaction

NOW = ManualClock().now()


@pytest.fixture
def people(database) -> dict[str, int]:
    ids: dict[str, int] = {}
    with database.unit_of_work() as session:
        def customer(key: str, name: str, language: str | None, **extra: object) -> Customer:
            row = Customer(name=name, language=language, source="import", created_at=NOW, updated_at=NOW,
                           **{"is_vip": False, **extra})
            session.add(row)
            session.flush()
            ids[key] = row.id
            return row

        def identity(key: str, channel: str, address: str, dead: bool = False) -> None:
            session.add(ChannelIdentity(customer_id=ids[key], channel=channel, address=address, created_at=NOW,
                                        undeliverable_reason="blocked" if dead else None))

        def score(key: str, segment: str) -> None:
            session.add(CustomerScore(customer_id=ids[key], recency=3, frequency=3, monetary=3, segment=segment,
                                      purchases=1, spent=1, interactions=0, computed_at=NOW))

        def account(key: str, tier: str, balance: int) -> None:
            session.add(LoyaltyAccount(customer_id=ids[key], balance=balance, lifetime_points=balance, tier=tier,
                                       tier_since=NOW, created_at=NOW, updated_at=NOW))

        def bought(key: str, days: int) -> None:
            session.add(Transaction(customer_id=ids[key], external_id=f"{key}-{days}", amount=100_000,
                                    occurred_at=NOW - timedelta(days=days), source="csv", created_at=NOW))

        customer("a", "Ani", "id", is_vip=True, vip_tier="platinum")
        identity("a", "whatsapp", "+628111000001")
        score("a", "champions"), account("a", "gold", 6000), bought("a", 10)
        record(session, ids["a"], "marketing", True, channel="whatsapp", evidence="ya", now=NOW - timedelta(days=9))
        customer("b", "Budi", "en")
        identity("b", "sms", "+628111000002"), identity("b", "telegram", "7002")
        score("b", "loyal"), account("b", "member", 100), bought("b", 200)
        record(session, ids["b"], "marketing", True, channel="sms", evidence="yes", now=NOW - timedelta(days=9))
        customer("c", "Citra", "id")
        identity("c", "telegram", "7003", dead=True)
        score("c", "at_risk"), account("c", "silver", 0)
        record(session, ids["c"], "marketing", True, channel="telegram", evidence="ya", now=NOW - timedelta(days=9))
        record(session, ids["c"], "marketing", False, channel="telegram", evidence="STOP", now=NOW - timedelta(days=1))
        customer("d", "Dodi", None)
        identity("d", "sms", "+628111000004")
        score("d", "new"), bought("d", 2)
        eka = customer("e", "Eka", "id")
        eka.merged_into_id = ids["a"]
        record(session, ids["e"], "marketing", True, channel="sms", evidence="ya", now=NOW)
    return ids


CASES = [
    ({}, "abcd"),
    ({"tier": "gold,silver"}, "ac"),
    ({"tier": "vip"}, "a"),
    ({"vip": "false"}, "bcd"),
    ({"vip_tier": "platinum"}, "a"),
    ({"segment": ["loyal", "new"]}, "bd"),
    ({"channel": "telegram"}, "b"),  # Citra's Telegram is undeliverable
    ({"channel": "sms,whatsapp"}, "abd"),
    ({"language": "id"}, "acd"),  # no profile language counts as the default language
    ({"language": "en"}, "b"),
    ({"last_purchase_within_days": 30}, "ad"),
    ({"last_purchase_before_days": 90}, "b"),
    ({"min_points": 100}, "ab"),
    ({"max_points": 100}, "bcd"),
    ({"consent": "marketing"}, "ab"),
    ({"segment": "champions,loyal", "consent": "marketing", "channel": "sms"}, "b"),
]


@pytest.mark.parametrize(("filters", "expected"), CASES)
def test_crm_4_1_filters_select_the_right_customers(database, settings, people, filters, expected):
    vocab = segments.vocabulary(settings)
    with database.unit_of_work(read_only=True) as session:
        found = set(session.execute(segments.matching(segments.validate(filters, vocab), vocab, NOW)).scalars())
    assert found == {people[key] for key in expected}


def test_crm_4_1_preview_counts_eligible_and_reachable_by_channel_preference(database, settings, people):
    with database.unit_of_work(read_only=True) as session:
        shown = segments.preview(session, settings, {}, NOW, channels=("telegram", "sms", "whatsapp"))
    assert (shown.total, shown.eligible, shown.opted_out, shown.no_consent) == (4, 2, 1, 1)
    assert shown.reachable == {"telegram": 1, "sms": 0, "whatsapp": 1}  # Budi by Telegram first, Ani by WhatsApp
    assert shown.unreachable == 0
    assert [s["name"] for s in shown.samples] == ["Ani", "Budi"]
    assert "4 customers match; 2 may receive marketing" in segments.render_preview(shown)


@pytest.mark.parametrize(("filters", "message"), [
    ({"colour": "red"}, "unknown filter 'colour'"),
    ({"segment": "vips"}, "filter 'segment': unknown 'vips'"),
    ({"min_points": "lots"}, "filter 'min_points': give a whole number"),
    ({"vip": "maybe"}, "filter 'vip': give true or false"),
    ({"channel": "fax"}, "filter 'channel': unknown 'fax'"),
    ({"consent": "none"}, "filter 'consent'"),
    ({"min_points": 10, "max_points": 5}, "'min_points' is above 'max_points'"),
])
def test_crm_4_1_bad_filters_are_refused_naming_the_key(settings, filters, message):
    with pytest.raises(segments.FilterError) as exc:
        segments.validate(filters, segments.vocabulary(settings))
    assert message in str(exc.value)


def test_crm_4_1_saved_segment_round_trip(database, settings, people):
    with database.unit_of_work() as session:
        saved, created = segments.save(session, settings, "loyal_sms",
                                       segments.parse_pairs(["segment=loyal", "segment=champions", "channel=sms"]),
                                       created_by="agent:3", now=NOW)
        assert created and saved.filters == {"segment": ["loyal", "champions"], "channel": ["sms"]}
    with database.unit_of_work() as session:
        with pytest.raises(segments.SegmentError):
            segments.save(session, settings, "loyal_sms", {}, created_by="cli", now=NOW, replace=False)
        updated, created = segments.save(session, settings, "loyal_sms", {"channel": "whatsapp"}, created_by="cli",
                                         now=NOW)
        assert not created and updated.created_by == "agent:3"
    with database.unit_of_work(read_only=True) as session:
        assert [(s.name, s.filters) for s in segments.list_all(session)] == [("loyal_sms", {"channel": ["whatsapp"]})]
    with database.unit_of_work() as session:
        segments.delete(session, "loyal_sms")
    with database.unit_of_work(read_only=True) as session:
        assert segments.list_all(session) == []
        with pytest.raises(segments.SegmentError):
            segments.delete(session, "loyal_sms")
