"""CRM-4.1: recency / frequency / monetary scores and the segments marketing lists customers by.

Transactions and messages are written straight into the database, as the import and the channels leave them;
the population is small and crafted so each customer's scores can be worked out by hand (see each test).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.cli import main
from handlers.analysis import SCORES
from store.merge import merge_customers
from store.models import ChannelIdentity, Conversation, Customer, CustomerScore, Message, Transaction
from store.scores import SEGMENTS, compute_scores, quintiles, segment_counts, segment_of

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def customer(session: Session, name: str, created: datetime = NOW) -> int:
    row = Customer(name=name, source="whatsapp", is_vip=False, created_at=created, updated_at=created)
    session.add(row)
    session.flush()
    return row.id


def buy(session: Session, customer_id: int, days_ago: float, amount: int, now: datetime = NOW) -> None:
    at = now - timedelta(days=days_ago)
    session.add(Transaction(customer_id=customer_id, external_id=f"trx-{uuid.uuid4().hex}", amount=amount,
                            occurred_at=at, source="csv", created_at=at))
    session.flush()


def wrote(session: Session, customer_id: int, days_ago: float, *, direction: str = "in") -> None:
    at = NOW - timedelta(days=days_ago)
    identity = ChannelIdentity(customer_id=customer_id, channel="telegram", address=f"tg-{uuid.uuid4().hex[:12]}",
                               created_at=at)
    session.add(identity)
    session.flush()
    conversation = Conversation(customer_id=customer_id, identity_id=identity.id, channel="telegram", status="bot",
                                language="id", opened_at=at, last_message_at=at, pending_data={})
    session.add(conversation)
    session.flush()
    session.add(Message(conversation_id=conversation.id, customer_id=customer_id, channel="telegram",
                        direction=direction, sender="customer" if direction == "in" else "bot", text="halo",
                        created_at=at))
    session.flush()


def population(session: Session) -> dict[str, int]:
    """Twelve buyers and a few who did not buy. By mid-rank quintiles among the 12 buyers:

    recency (days): 3, 4, 5 -> 5; 90 (seven buyers) -> 3; 300, 320 -> 1
    frequency: 6 and 5 -> 5; 2 (eight buyers) -> 3; 1 -> 1
    monetary: 6M, 3M, 2M -> 5; 500k (six) -> 3; 300k (two), 50k -> 1
    (Dedi's 4 days and 300k include the purchase of Joko, merged into Dedi.)
    """
    ids = {name: customer(session, name) for name in (
        "Ani champion", "Budi at risk", "Citra hibernating", "Dedi new", "Eko potential", "Fitri loyal",
        "Gita prospect", "Hadi inactive", "Indah bought long ago", "Joko merged")}
    for days in (3, 20, 40, 60, 80, 100):
        buy(session, ids["Ani champion"], days, 1_000_000)
    for days in (300, 310, 320, 330, 340):
        buy(session, ids["Budi at risk"], days, 400_000)
    buy(session, ids["Citra hibernating"], 320, 50_000)
    buy(session, ids["Dedi new"], 10, 200_000)
    buy(session, ids["Eko potential"], 5, 150_000)
    buy(session, ids["Eko potential"], 150, 150_000)
    for days in (90, 120, 150, 200, 250):
        buy(session, ids["Fitri loyal"], days, 600_000)
    for n in range(6):
        ids[f"regular {n}"] = customer(session, f"regular {n}")
        buy(session, ids[f"regular {n}"], 90, 250_000)
        buy(session, ids[f"regular {n}"], 95, 250_000)
    wrote(session, ids["Gita prospect"], 2)
    wrote(session, ids["Gita prospect"], 30)
    wrote(session, ids["Gita prospect"], 31, direction="out")  # our messages are not their interactions
    buy(session, ids["Indah bought long ago"], 400, 9_000_000)  # before the 365-day window
    wrote(session, ids["Indah bought long ago"], 380)
    buy(session, ids["Joko merged"], 4, 100_000)
    merge_customers(session, ids["Joko merged"], ids["Dedi new"], now=NOW, actor="test", reason="same person")
    return ids


def scores(session: Session) -> dict[int, CustomerScore]:
    return {s.customer_id: s for s in session.execute(select(CustomerScore)).scalars()}


def test_crm_4_1_quintiles_give_ties_one_score_and_spread_distinct_values_one_to_five():
    assert quintiles([10, 20, 30, 40, 50]) == {10: 1, 20: 2, 30: 3, 40: 4, 50: 5}
    assert quintiles([7, 7, 7, 7]) == {7: 3}  # everyone alike is average, not worst
    assert quintiles([1] * 40 + [2] * 30 + [3] * 15 + [8] * 15) == {1: 1, 2: 3, 3: 4, 8: 5}
    assert quintiles([42]) == {42: 3}
    assert quintiles([]) == {}


def test_crm_4_1_customers_land_in_the_segment_their_purchases_and_messages_earn(database, settings):
    with database.unit_of_work() as session:
        ids = population(session)
        scored = compute_scores(session, settings, NOW)
        got = scores(session)

    merged = ids["Joko merged"]
    assert scored == len(ids) - 1 and merged not in got  # a merged-away record is not scored
    segment = {name: got[i].segment for name, i in ids.items() if i != merged}
    assert segment == {
        "Ani champion": "champions", "Budi at risk": "at_risk", "Citra hibernating": "hibernating",
        "Dedi new": "new", "Eko potential": "potential", "Fitri loyal": "loyal", "Gita prospect": "prospect",
        "Hadi inactive": "inactive", "Indah bought long ago": "inactive",
        **{f"regular {n}": "needs_attention" for n in range(6)},
    }
    ani, budi, dedi, gita = (got[ids[n]] for n in ("Ani champion", "Budi at risk", "Dedi new", "Gita prospect"))
    assert (ani.recency, ani.frequency, ani.monetary) == (5, 5, 5)
    assert (ani.purchases, ani.spent, ani.last_purchase_at) == (6, 6_000_000, NOW - timedelta(days=3))
    assert (budi.recency, budi.frequency, budi.monetary) == (1, 5, 5)
    # Dedi took over Joko's purchase in the merge: 2 purchases, the last 4 days ago; still new (first 10 days ago).
    assert (dedi.purchases, dedi.spent, dedi.last_purchase_at) == (2, 300_000, NOW - timedelta(days=4))
    assert (gita.recency, gita.frequency, gita.monetary, gita.purchases, gita.interactions) == (0, 0, 0, 0, 2)
    assert got[ids["Indah bought long ago"]].interactions == 0  # the message was before the window too
    assert all(s.computed_at == NOW for s in got.values())


def test_crm_4_1_segment_counts_list_every_segment(database, settings):
    with database.unit_of_work() as session:
        assert segment_counts(session) == dict.fromkeys(SEGMENTS, 0)
        population(session)
        compute_scores(session, settings, NOW)
        assert segment_counts(session) == {
            "champions": 1, "loyal": 1, "potential": 1, "new": 1, "needs_attention": 6, "at_risk": 1,
            "hibernating": 1, "prospect": 1, "inactive": 2}


def test_crm_4_1_recompute_replaces_the_old_scores(database, settings):
    with database.unit_of_work() as session:
        ids = population(session)
        compute_scores(session, settings, NOW)
    later = NOW + timedelta(days=1)
    with database.unit_of_work() as session:
        buy(session, ids["Gita prospect"], 0, 5_000_000, now=later)  # the prospect buys for the first time
        merge_customers(session, ids["Hadi inactive"], ids["Gita prospect"], now=later, actor="test", reason="dup")
        compute_scores(session, settings, later)
        got = scores(session)
    assert ids["Hadi inactive"] not in got  # the old row of a record merged since is gone
    assert len(got) == len(ids) - 2
    assert (got[ids["Gita prospect"]].segment, got[ids["Gita prospect"]].purchases) == ("new", 1)
    assert {s.computed_at for s in got.values()} == {later}


def test_crm_4_1_scores_from_the_command_line(db_url, database):
    """`sapa analysis scores` before any computation, with --recompute, and one customer's scores."""
    now = datetime.now(UTC)
    with database.unit_of_work() as session:
        champion = customer(session, "Sari Wulandari")
        for days in (1, 8, 15):
            buy(session, champion, days, 2_000_000, now=now)
        other = customer(session, "Tono")
        buy(session, other, 200, 100_000, now=now)
    runner = CliRunner()
    args = ["--config", str(ROOT / "config.yml"), "analysis"]
    env = {"DATABASE_URL": db_url}

    first = runner.invoke(main, [*args, "scores"], env=env)
    assert first.exit_code == 0, first.output
    assert "scores have not been computed yet; run: sapa analysis scores --recompute" in first.output

    result = runner.invoke(main, [*args, "scores", "--recompute", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert "scores recomputed for 2 customers" in result.stderr
    data = json.loads(result.stdout)
    assert data["window_days"] == 365 and data["computed_at"] is not None
    # Two buyers: the one with more, bigger and more recent purchases scores 5/5/5, the other 1/1/1.
    assert {k: v for k, v in data["segments"].items() if v} == {"champions": 1, "hibernating": 1}

    table = runner.invoke(main, [*args, "scores"], env=env)
    rows = [line.split() for line in table.output.splitlines()]
    assert ["champions", "1"] in rows and ["hibernating", "1"] in rows and ["loyal", "0"] in rows
    assert "2 customers, scored from 365 days of transactions, computed " in table.output

    one = runner.invoke(main, [*args, "customer", str(champion)], env=env)
    assert one.exit_code == 0, one.output
    assert f"#{champion} Sari Wulandari: champions (R5 F5 M5); 3 purchases, Rp 6,000,000 spent" in one.output
    missing = runner.invoke(main, [*args, "customer", "Nobody Here"], env=env)
    assert missing.exit_code == 1 and "no customer matches 'Nobody Here'" in missing.output


def test_crm_4_1_one_purchase_is_not_buying_often():
    # Where every buyer bought once, frequency scores 3 for all: that alone makes no one at risk or loyal.
    assert segment_of(1, 3, 3, purchases=1, interactions=0, is_new=False) == "hibernating"
    assert segment_of(1, 3, 3, purchases=2, interactions=0, is_new=False) == "at_risk"
    assert segment_of(3, 3, 5, purchases=1, interactions=0, is_new=False) == "needs_attention"
    assert segment_of(3, 3, 5, purchases=2, interactions=0, is_new=False) == "loyal"
    assert segment_of(5, 5, 5, purchases=1, interactions=0, is_new=False) == "potential"


def test_crm_4_1_scores_recomputed_on_schedule(sapa, clock):
    """The scheduler's timer queues one recomputation per `analysis.recompute_every_hours` (24) bucket."""
    assert sapa.scheduler is not None
    assert sapa.scheduler._scheduler.get_job(f"periodic:{SCORES}") is not None
    with sapa.database.unit_of_work() as session:
        ids = population(session)
    sapa.scheduler.schedule_periodic(SCORES)
    sapa.scheduler.schedule_periodic(SCORES)  # a second replica, same bucket: one task
    assert sapa.runner.run_due() == 1
    with sapa.database.unit_of_work(read_only=True) as session:
        assert segment_counts(session)["needs_attention"] == 6
        first = {s.computed_at for s in scores(session).values()}
    assert first == {clock.now()}

    clock.advance(timedelta(hours=1))
    sapa.scheduler.schedule_periodic(SCORES)
    assert sapa.runner.run_due() == 0  # still the same day's bucket
    clock.advance(timedelta(hours=24))
    with sapa.database.unit_of_work() as session:
        wrote(session, ids["Hadi inactive"], -1)  # Hadi writes for the first time
    sapa.scheduler.schedule_periodic(SCORES)
    assert sapa.runner.run_due() == 1
    with sapa.database.unit_of_work(read_only=True) as session:
        got = scores(session)
    assert got[ids["Hadi inactive"]].segment == "prospect"
    assert {s.computed_at for s in got.values()} == {clock.now()}
