"""`sapa serve --cpu N`: keep the whole server process on one CPU core.

Python runs one thread at a time (the GIL), so a `sapa serve` process uses about one core however many it may use.
Its threads hand the GIL to each other many times per message (the event loop, the request thread running the
pipeline, the outbox); when they sit on different cores, each hand-over wakes another core and the message's objects
move between the cores' caches. On one core the same work took about a fifth less CPU per web chat message
(bench/README.md, issue 18). A host running several replicas gives each its own core; pinning two to the same core
halves both, which is why nothing is pinned unless asked.

The same can be had from outside (`taskset -c N`, systemd's CPUAffinity=, `docker run --cpuset-cpus`); the option
keeps it with the rest of the server's configuration and says clearly when the core asked for is not there.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

_TASKS = Path("/proc/self/task")


class CpuUnavailable(ValueError):
    """The core cannot be used: not on this machine, not allowed to this process, or no affinity on this OS."""


def allowed_cpus() -> set[int]:
    if not hasattr(os, "sched_getaffinity"):
        raise CpuUnavailable("pinning to a CPU needs Linux (os.sched_setaffinity); leave server.cpu unset here")
    return set(os.sched_getaffinity(0))


def pin_process(cpu: int) -> None:
    """Pin every thread of this process, and every thread it starts later, to `cpu`."""
    allowed = allowed_cpus()
    if cpu not in allowed:
        raise CpuUnavailable(f"CPU {cpu} is not one this process may use (allowed: {_ranges(allowed)})")
    # A thread's affinity is its own and new threads inherit their creator's: the threads that already exist (a
    # library may have started some at import) are pinned one by one, then the main thread's setting carries over.
    for task in _TASKS.iterdir() if _TASKS.is_dir() else ():
        try:
            os.sched_setaffinity(int(task.name), {cpu})
        except (ProcessLookupError, ValueError):
            continue  # the thread ended meanwhile
    os.sched_setaffinity(0, {cpu})
    log.info("server pinned to CPU %d (of %s)", cpu, _ranges(allowed))


def _ranges(cpus: set[int]) -> str:
    """{0, 1, 2, 5} -> "0-2,5", as Linux writes CPU lists."""
    runs: list[tuple[int, int]] = []
    for cpu in sorted(cpus):
        if runs and runs[-1][1] == cpu - 1:
            runs[-1] = (runs[-1][0], cpu)
        else:
            runs.append((cpu, cpu))
    return ",".join(str(first) if first == last else f"{first}-{last}" for first, last in runs)
