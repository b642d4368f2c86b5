"""Due tasks run in batches: a burst is worked off at once, one task's failure stays its own, a crash or a second
process never makes a task run twice to completion or not at all (issue 18)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from bot.clock import SystemClock
from scheduler.clock import SchedulerClock
from scheduler.runner import TaskRunner
from store.db import create_database
from store.models import Customer, Task
from store.tasks import claim_due, schedule


class Crash(BaseException):
    """What the process dying looks like from inside a task: nothing after it runs, no handler catches it."""


def tasks(database) -> list[Task]:
    with database.unit_of_work(read_only=True) as session:
        return list(session.execute(select(Task).order_by(Task.id)).scalars())


def add_customers(database, clock, names: list[str]) -> None:
    with database.unit_of_work() as session:
        session.execute(insert(Customer), [
            {"name": name, "source": "test", "is_vip": False, "created_at": clock.now(), "updated_at": clock.now()}
            for name in names])


def customer_names(database) -> list[str | None]:
    with database.unit_of_work(read_only=True) as session:
        return list(session.execute(select(Customer.name).order_by(Customer.id)).scalars())


def rename(session, task, now) -> None:
    """A task with a visible effect: the customer in its payload gets the name in its payload."""
    nth = select(Customer).order_by(Customer.id).offset(task.payload["customer"]).limit(1)
    customer = session.execute(nth).scalar_one()
    customer.name = task.payload["name"]
    if task.payload.get("fail"):
        raise RuntimeError(f"could not finish {task.payload['name']}")


def schedule_renames(database, clock, payloads: list[dict]) -> None:
    with database.unit_of_work() as session:
        for payload in payloads:
            schedule(session, "rename", due_at=clock.now(), now=clock.now(), payload=payload)


def test_a_failing_task_in_a_batch_undoes_only_its_own_changes_and_retries_with_its_error(database, clock):
    add_customers(database, clock, ["ani", "budi", "citra"])
    schedule_renames(database, clock, [{"customer": 0, "name": "Ani"}, {"customer": 1, "name": "Budi", "fail": True},
                                       {"customer": 2, "name": "Citra"}])
    runner = TaskRunner(database, clock, {"rename": rename}, max_attempts=2)

    assert runner.run_due() == 3

    assert customer_names(database) == ["Ani", "budi", "Citra"]
    first, failed, third = tasks(database)
    assert (first.status, third.status) == ("done", "done")
    assert first.finished_at is not None and first.last_error is None
    assert (failed.status, failed.attempts, failed.due_at) == ("pending", 1, clock.now() + timedelta(seconds=30))
    assert failed.last_error == "RuntimeError: could not finish Budi"
    clock.advance(timedelta(seconds=30))
    assert runner.run_due() == 1
    assert tasks(database)[1].status == "failed" and customer_names(database) == ["Ani", "budi", "Citra"]


def test_a_burst_larger_than_one_claim_is_worked_off_in_one_drain(database, clock):
    ran: Counter[int] = Counter()
    with database.unit_of_work() as session:
        session.execute(insert(Task), [
            {"kind": "count", "due_at": clock.now(), "payload": {}, "status": "pending", "attempts": 0,
             "created_at": clock.now()} for _ in range(1200)])
    runner = TaskRunner(database, clock, {"count": lambda s, task, now: ran.update([task.id])})

    assert runner.drain(limit=500) == 1200

    assert len(ran) == 1200 and set(ran.values()) == {1}
    assert {t.status for t in tasks(database)} == {"done"}
    assert runner.drain() == 0


def test_a_batch_commits_after_its_count_or_time_bound_so_other_writers_get_in_between(database, clock):
    sessions: list[object] = []

    def note_session(session, task, now) -> None:
        sessions.append(session)

    schedule_renames(database, clock, [{"customer": 0, "name": f"n{i}"} for i in range(5)])
    TaskRunner(database, clock, {"rename": note_session}, batch_tasks=2).run_due()
    assert _run_lengths(sessions) == [2, 2, 1]

    sessions.clear()
    schedule_renames(database, clock, [{"customer": 0, "name": f"m{i}"} for i in range(3)])
    TaskRunner(database, clock, {"rename": note_session}, batch_seconds=0.0).run_due()
    assert _run_lengths(sessions) == [1, 1, 1]
    assert {t.status for t in tasks(database)} == {"done"}


def _run_lengths(sessions: list[object]) -> list[int]:
    """How many tasks ran in each transaction, in order."""
    lengths: list[int] = []
    for i, session in enumerate(sessions):
        if i and sessions[i - 1] is session:
            lengths[-1] += 1
        else:
            lengths.append(1)
    return lengths


def test_a_process_that_dies_mid_batch_leaves_its_tasks_to_run_again_after_the_claim_timeout(database, clock):
    add_customers(database, clock, ["ani", "budi", "citra"])
    schedule_renames(database, clock, [{"customer": i, "name": n} for i, n in enumerate(["Ani", "Budi", "Citra"])])

    def dies_at_citra(session, task, now) -> None:
        rename(session, task, now)
        if task.payload["name"] == "Citra":
            raise Crash()

    with pytest.raises(Crash):
        TaskRunner(database, clock, {"rename": dies_at_citra}, worker="dead:1", batch_seconds=60).run_due()
    assert customer_names(database) == ["ani", "budi", "citra"]  # the batch never committed
    assert {t.status for t in tasks(database)} == {"running"}

    restarted = TaskRunner(database, clock, {"rename": rename}, worker="new:2")
    assert restarted.run_due() == 0  # the dead process's claim holds until it times out
    clock.advance(timedelta(minutes=5, seconds=1))
    assert restarted.run_due() == 3
    assert customer_names(database) == ["Ani", "Budi", "Citra"]
    assert [(t.status, t.attempts, t.claimed_by) for t in tasks(database)] == [("done", 2, "new:2")] * 3


def test_tasks_claimed_elsewhere_are_not_run_until_their_claim_times_out(database, clock):
    schedule_renames(database, clock, [{"customer": 0, "name": "Ani"}])
    with database.unit_of_work() as session:
        assert len(claim_due(session, now=clock.now(), worker="other:1", limit=10,
                             claim_timeout=timedelta(minutes=5))) == 1
    ran: list[int] = []
    runner = TaskRunner(database, clock, {"rename": lambda s, task, now: ran.append(task.id)})
    assert runner.drain() == 0 and ran == []


def test_two_processes_draining_one_database_run_every_task_exactly_once(database, db_url):
    """Each runner has its own engine, as two `sapa serve` processes would; SKIP LOCKED (PostgreSQL) or the
    writer lock (SQLite) gives each claimed row to one of them."""
    now = SystemClock().now()
    with database.unit_of_work() as session:
        session.execute(insert(Task), [
            {"kind": "count", "due_at": now, "payload": {}, "status": "pending", "attempts": 0, "created_at": now}
            for _ in range(1500)])
    ran: Counter[int] = Counter()
    lock = threading.Lock()

    def count(session, task, now) -> None:
        with lock:
            ran[task.id] += 1

    other = create_database(db_url)
    runners = [TaskRunner(db, SystemClock(), {"count": count}, worker=f"p{i}", batch_tasks=50)
               for i, db in enumerate((database, other))]
    try:
        threads = [threading.Thread(target=lambda r=r: r.drain(limit=100)) for r in runners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        other.dispose()
    assert len(ran) == 1500 and set(ran.values()) == {1}
    done = tasks(database)
    assert {t.status for t in done} == {"done"} and {t.attempts for t in done} == {1}


def test_a_busy_scheduler_looks_again_soon_instead_of_a_whole_poll_interval_later(database):
    """With a 60 s poll, tasks that fall due while the clock is draining still run within seconds."""
    ran = threading.Event()
    seen: Counter[int] = Counter()

    def count(session, task, now) -> None:
        seen[task.id] += 1
        if len(seen) == 40:
            ran.set()

    ticker = SchedulerClock(TaskRunner(database, SystemClock(), {"count": count}), poll_interval_s=60,
                            timezone="Asia/Jakarta")
    ticker.start()
    try:
        for i in range(40):
            with database.unit_of_work() as session:
                schedule(session, "count", due_at=SystemClock().now(), now=SystemClock().now())
            if i == 0:
                ticker.wake()  # the first task starts a tick, as a Slack event does; the rest arrive during it
            time.sleep(0.01)
        assert ran.wait(20), f"only {len(seen)} of 40 tasks ran"
        assert set(seen.values()) == {1}
    finally:
        ticker.stop()
