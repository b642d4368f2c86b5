"""Durable tasks: rows are the truth, time comes from the clock, failures retry then fail visibly."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import select

from bot.clock import SystemClock
from scheduler.clock import SchedulerClock
from scheduler.runner import TaskRunner
from store.models import Conversation, Task
from store.tasks import schedule


def tasks(database) -> list[Task]:
    with database.unit_of_work(read_only=True) as session:
        return list(session.execute(select(Task).order_by(Task.id)).scalars())


def test_task_runs_when_the_clock_reaches_its_due_time(database, clock):
    ran = []
    runner = TaskRunner(database, clock, {"follow_up": lambda s, task, now: ran.append((task.payload, now))})
    with database.unit_of_work() as session:
        schedule(session, "follow_up", due_at=clock.now() + timedelta(hours=1), now=clock.now(),
                 payload={"ticket": 7})
    assert runner.run_due() == 0
    clock.advance(timedelta(minutes=59))
    assert runner.run_due() == 0
    clock.advance(timedelta(minutes=1))
    assert runner.run_due() == 1
    assert ran == [({"ticket": 7}, clock.now())]
    assert tasks(database)[0].status == "done"
    assert runner.run_due() == 0


def test_scheduling_the_same_thing_twice_keeps_one_task(database, clock):
    with database.unit_of_work() as session:
        first = schedule(session, "survey", due_at=clock.now(), now=clock.now(), dedupe_key="survey:ticket:1")
        second = schedule(session, "survey", due_at=clock.now(), now=clock.now(), dedupe_key="survey:ticket:1")
        assert first.id == second.id
    assert len(tasks(database)) == 1


def test_failing_task_retries_with_backoff_then_fails_with_its_error(database, clock):
    def broken(session, task, now):
        raise RuntimeError("downstream said no")

    runner = TaskRunner(database, clock, {"broken": broken}, max_attempts=3)
    with database.unit_of_work() as session:
        schedule(session, "broken", due_at=clock.now(), now=clock.now())
    runner.run_due()
    (task,) = tasks(database)
    assert (task.status, task.attempts, task.due_at) == ("pending", 1, clock.now() + timedelta(seconds=30))
    clock.advance(timedelta(seconds=30))
    runner.run_due()
    clock.advance(timedelta(seconds=60))
    runner.run_due()
    (task,) = tasks(database)
    assert task.status == "failed" and task.attempts == 3
    assert "downstream said no" in (task.last_error or "")


def test_a_failed_task_rolls_back_its_own_changes(database, clock, customer, sapa):
    customer.say("halo")

    def half_done(session, task, now):
        session.execute(select(Conversation)).scalar_one().status = "closed"
        raise RuntimeError("crash half way")

    runner = TaskRunner(database, clock, {"half": half_done}, max_attempts=1)
    with database.unit_of_work() as session:
        schedule(session, "half", due_at=clock.now(), now=clock.now())
    runner.run_due()
    with database.unit_of_work(read_only=True) as session:
        assert session.execute(select(Conversation)).scalar_one().status == "bot"


def test_unknown_task_kind_fails_visibly(database, clock):
    runner = TaskRunner(database, clock, {}, max_attempts=1)
    with database.unit_of_work() as session:
        schedule(session, "nobody_handles_this", due_at=clock.now(), now=clock.now())
    runner.run_due()
    (task,) = tasks(database)
    assert task.status == "failed" and "no function registered" in (task.last_error or "")


def test_idle_sweep_closes_idle_bot_conversations_but_not_human_ones(customer, client, sapa, clock):
    from tests.support.webchat import WebchatUser

    customer.say("halo")
    waiting = WebchatUser(client, sapa)
    waiting.say("saya mau bicara dengan petugas")
    clock.advance(timedelta(minutes=sapa.settings.conversation.idle_close_minutes + 5))
    sapa.schedule_idle_sweep()
    sapa.schedule_idle_sweep()  # a second replica in the same bucket adds nothing
    assert sapa.runner.run_due() == 1
    with sapa.database.unit_of_work(read_only=True) as session:
        statuses = [c.status for c in session.execute(select(Conversation).order_by(Conversation.id)).scalars()]
    assert statuses == ["closed", "waiting"]


def test_apscheduler_clock_runs_due_tasks_in_the_background(database):
    done = threading.Event()
    runner = TaskRunner(database, SystemClock(), {"ping": lambda s, t, now: done.set()})
    ticker = SchedulerClock(runner, poll_interval_s=0.1, timezone="Asia/Jakarta")
    with database.unit_of_work() as session:
        schedule(session, "ping", due_at=SystemClock().now(), now=SystemClock().now())
    ticker.start()
    try:
        assert done.wait(15), "the scheduler never ran the due task"
        deadline = time.monotonic() + 10
        while tasks(database)[0].status != "done" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tasks(database)[0].status == "done"
        assert ticker.running and ticker.last_tick_at is not None
    finally:
        ticker.stop()


def test_a_task_scheduled_by_another_transaction_meanwhile_is_the_one_returned(database, clock):
    # Two replicas schedule the same periodic bucket at once: on PostgreSQL the second INSERT waits for the first
    # transaction and then writes nothing; either way one task, and the second caller gets it.
    import threading

    first_in = threading.Event()
    release = threading.Event()
    result: dict[str, int] = {}

    def first() -> None:
        with database.unit_of_work() as session:
            result["first"] = schedule(session, "nps_round", due_at=clock.now(), now=clock.now(),
                                       dedupe_key="nps:2026-12").id
            first_in.set()
            release.wait(10)

    worker = threading.Thread(target=first)
    worker.start()
    assert first_in.wait(10)
    second_done = threading.Event()

    def second() -> None:
        with database.unit_of_work() as session:
            result["second"] = schedule(session, "nps_round", due_at=clock.now(), now=clock.now(),
                                        dedupe_key="nps:2026-12").id
        second_done.set()

    other = threading.Thread(target=second)
    other.start()
    assert not second_done.wait(0.3)  # it waits for the first transaction (SQLite: the writer lock; PG: the key)
    release.set()
    worker.join(10)
    other.join(10)
    assert result["first"] == result["second"]
    assert [t.dedupe_key for t in tasks(database)] == ["nps:2026-12"]
