"""bot.http.blocking: a request's blocking work runs off the event loop, to its end, and its error is the request's."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bot.http.blocking import THREADS, run_blocking


def test_the_work_runs_on_another_thread_and_gives_its_answer():
    loop_thread = threading.get_ident()

    async def request() -> tuple[int, str]:
        return await run_blocking(lambda greeting, name: (threading.get_ident(), f"{greeting}, {name}"), "Halo",
                                  name="Sari")

    worker, answer = asyncio.run(request())
    assert answer == "Halo, Sari" and worker != loop_thread


def test_the_works_error_is_the_requests():
    def fails() -> None:
        raise LookupError("unknown session")

    async def request() -> None:
        await run_blocking(fails)

    with pytest.raises(LookupError, match="unknown session"):
        asyncio.run(request())


def test_work_handed_over_runs_to_its_end_when_the_client_goes_away_before_it_started():
    """The pool is busy (every thread held), the message waits its turn, the client disconnects: it is still
    handled once a thread is free, as with Starlette's run_in_threadpool (not dropped from the queue)."""
    busy = threading.Event()
    finished = threading.Event()

    async def client_disconnects() -> None:
        holders = [asyncio.create_task(run_blocking(busy.wait, 5)) for _ in range(THREADS)]
        await asyncio.sleep(0.2)  # every thread of the pool now waits on `busy`
        task = asyncio.create_task(run_blocking(finished.set))
        await asyncio.sleep(0.05)
        task.cancel()  # what the server does to the request's task when the connection drops
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not finished.is_set()  # it had not started
        busy.set()
        await asyncio.gather(*holders)

    asyncio.run(client_disconnects())
    assert finished.wait(5), "an accepted message must be handled, not abandoned in the queue"
