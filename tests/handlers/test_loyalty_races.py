"""CRM-4.2 redemption races on PostgreSQL (only there do two transactions really run at once; SQLite serialises
writers). Two threads with their own sessions start together (a Barrier) and each holds its transaction open a
moment after redeeming, so the other's pre-check has already seen the old balance or stock: the conditional
UPDATEs must still let exactly one through. Each race runs ROUNDS times.

Without PostgreSQL these tests skip loudly (a failure with SAPA_REQUIRE_POSTGRES=1), via the `pg_server` fixture.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import func, select

from bot.config import Settings
from store import Database, create_database, loyalty
from store.models import Customer, LoyaltyAccount, LoyaltyEntry, Redemption, Reward
from tests.support.pgserver import PostgresServer

ROUNDS = 20
HOLD_S = 0.05  # the winner keeps its row locks this long before committing: the loser must wait, then lose
NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


@pytest.fixture
def pg_database(pg_server: PostgresServer) -> Iterator[Database]:
    """A fresh migrated PostgreSQL database: these tests have no SQLite variant on purpose."""
    name = f"race{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(f"host=127.0.0.1 port={pg_server.port} user=postgres dbname=postgres",
                         autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE sapa_template")
    database = create_database(pg_server.url(name))
    assert database.dialect == "postgresql"
    yield database
    database.dispose()


@pytest.fixture
def pg_settings(base_settings: Settings) -> Settings:
    return base_settings


def new_customer(database: Database, settings: Settings, name: str, points: int) -> int:
    with database.unit_of_work() as session:
        row = Customer(name=name, source="test", created_at=NOW, updated_at=NOW)
        session.add(row)
        session.flush()
        if points:
            loyalty.adjust(session, settings, row.id, points, "race setup", "test", NOW)
        return row.id


def new_reward(database: Database, code: str, cost: int, stock: int | None) -> None:
    with database.unit_of_work() as session:
        session.add(Reward(code=code, names={"id": code, "en": code}, points_cost=cost, stock=stock, active=True,
                           created_at=NOW, updated_at=NOW))


def race(database: Database, attempts: list[Callable[[], object]]) -> tuple[list[object], list[BaseException]]:
    """Run the attempts at once, each in its own unit of work held open HOLD_S after it; (results, errors)."""
    barrier = threading.Barrier(len(attempts))
    results: list[object] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(attempt: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            result = attempt()
            with lock:
                results.append(result)
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(attempt,)) for attempt in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a redemption hung"
    return results, errors


def redeem_attempt(database: Database, settings: Settings, customer_id: int, code: str,
                   request_key: str | None = None) -> Callable[[], object]:
    def attempt() -> object:
        with database.unit_of_work() as session:
            redemption = loyalty.redeem(session, settings, customer_id, code, "webchat", "customer", NOW,
                                        request_key=request_key)
            time.sleep(HOLD_S)  # commit later: the other transaction is already past its pre-check
            return redemption.voucher_code

    return attempt


def ledger_matches(database: Database, customer_id: int) -> int:
    with database.unit_of_work(read_only=True) as session:
        account = session.get_one(LoyaltyAccount, customer_id)
        total = session.execute(select(func.coalesce(func.sum(LoyaltyEntry.points), 0))
                                .where(LoyaltyEntry.customer_id == customer_id)).scalar_one()
        unspent = session.execute(select(func.coalesce(func.sum(LoyaltyEntry.remaining), 0))
                                  .where(LoyaltyEntry.customer_id == customer_id, LoyaltyEntry.points > 0)).scalar_one()
        assert account.balance >= 0
        assert total == unspent == account.balance
        return account.balance


def test_crm_4_2_two_redemptions_at_once_against_one_balance_never_double_spend(pg_database, pg_settings):
    """A balance that covers one redemption, two redeeming at the same instant: one voucher, the other refused."""
    new_reward(pg_database, "GIFT", 500, None)
    budi = new_customer(pg_database, pg_settings, "Budi", 0)
    for round_number in range(ROUNDS):
        with pg_database.unit_of_work() as session:
            loyalty.adjust(session, pg_settings, budi, 700, f"round {round_number}", "test", NOW)  # covers one
        results, errors = race(pg_database, [redeem_attempt(pg_database, pg_settings, budi, "GIFT")
                                             for _ in range(2)])
        assert len(results) == 1, (round_number, results, errors)
        [error] = errors
        assert isinstance(error, loyalty.LoyaltyError) and error.reason == "insufficient_points", error
        assert ledger_matches(pg_database, budi) == 200
        with pg_database.unit_of_work() as session:  # back to 0 for the next round
            loyalty.adjust(session, pg_settings, budi, -200, "round reset", "test", NOW)
    with pg_database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(Redemption)).scalar_one() == ROUNDS


def test_crm_4_2_two_customers_racing_for_the_last_unit_one_gets_it_and_the_other_keeps_his_points(
        pg_database, pg_settings):
    budi = new_customer(pg_database, pg_settings, "Budi", 100 * ROUNDS)
    siti = new_customer(pg_database, pg_settings, "Siti", 100 * ROUNDS)
    for round_number in range(ROUNDS):
        code = f"LAST{round_number}"
        new_reward(pg_database, code, 100, 1)
        results, errors = race(pg_database, [redeem_attempt(pg_database, pg_settings, who, code)
                                             for who in (budi, siti)])
        assert len(results) == 1, (round_number, results, errors)
        [error] = errors
        assert isinstance(error, loyalty.LoyaltyError) and error.reason == "out_of_stock", error
        with pg_database.unit_of_work(read_only=True) as session:
            assert session.execute(select(Reward.stock).where(Reward.code == code)).scalar_one() == 0
        # The loser's points went back with the savepoint: together they spent exactly one unit's cost.
        assert ledger_matches(pg_database, budi) + ledger_matches(pg_database, siti) == 100 * (2 * ROUNDS
                                                                                               - round_number - 1)
    with pg_database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(Redemption)).scalar_one() == ROUNDS


def test_crm_4_2_the_same_confirmation_pressed_twice_at_once_redeems_once(pg_database, pg_settings):
    """Enough points for two, but one request key (the chat's "Ya"): both presses get the one voucher."""
    new_reward(pg_database, "GIFT", 100, None)
    budi = new_customer(pg_database, pg_settings, "Budi", 200 * ROUNDS)
    for round_number in range(ROUNDS):
        key = f"confirm-{round_number}"
        results, errors = race(pg_database, [redeem_attempt(pg_database, pg_settings, budi, "GIFT", key)
                                             for _ in range(2)])
        assert errors == [] and len(results) == 2 and results[0] == results[1], (results, errors)
        assert ledger_matches(pg_database, budi) == 200 * ROUNDS - 100 * (round_number + 1)
    with pg_database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(Redemption)).scalar_one() == ROUNDS
