"""Blocking work of a request (the database, the pipeline, password hashing) on a thread pool of Sapa's own.

Starlette's `run_in_threadpool` goes through anyio's worker threads (capacity limiter, cancel scopes, a checkpoint
and a thread hand-off of its own): about 0.7 M instructions per web chat message, 7% of the whole message with its
HTTP, pipeline and outbox (callgrind around a running `sapa serve`, issue 18). asyncio's `run_in_executor` on a
plain ThreadPoolExecutor does the same hop for a tenth of that.

The semantics stay those of `run_in_threadpool`: once a request has handed its work over, the work runs to its end
even if the client goes away (the await is shielded; an accepted message is never half-handled), and its exception
is the request's.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# As many threads as anyio's default limiter allows; made as they are needed and shared by every app in the process.
THREADS = 40
_POOL = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="sapa-request")


async def run_blocking(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    work = asyncio.get_running_loop().run_in_executor(_POOL, functools.partial(function, *args, **kwargs))
    return await asyncio.shield(work)
