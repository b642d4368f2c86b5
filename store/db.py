"""Engine and session setup, and the one unit_of_work().

Nothing here runs at import time; bot/app.py builds the Database from settings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from store.fast_flush import FastFlushSession


class _WriterLock:
    """A lock that refuses nesting in one thread: a nested write unit of work would wait on itself."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()

    def __enter__(self) -> None:
        if getattr(self._local, "held", False):
            raise RuntimeError("a write unit_of_work() was opened inside another one in the same thread")
        self._lock.acquire()
        self._local.held = True

    def __exit__(self, *exc: object) -> None:
        self._local.held = False
        self._lock.release()


class Database:
    """One engine and its session factory. `unit_of_work()` is the only way to get a session."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # SQLite allows one writer. Its busy handler makes waiting writers poll with sleeps of up
        # to 100 ms, in no order, which gave multi-second tails under load; queueing writers of this
        # process on a lock hands the database over at once. Other processes still meet busy_timeout.
        self._writer: AbstractContextManager[Any] = (
            _WriterLock() if self.dialect == "sqlite" else nullcontext()
        )
        self._sessions = sessionmaker(engine, expire_on_commit=False, class_=FastFlushSession)
        # SQLite: reads begin DEFERRED so they never wait for the write lock.
        self._read_sessions = sessionmaker(
            engine.execution_options(sqlite_begin="DEFERRED"), expire_on_commit=False, class_=FastFlushSession
        )

    @contextmanager
    def unit_of_work(self, read_only: bool = False) -> Iterator[Session]:
        """One transaction: commit when the block ends, roll back if it raises."""
        factory = self._read_sessions if read_only else self._sessions
        with nullcontext() if read_only else self._writer, factory() as session:
            try:
                yield session
                if read_only:
                    session.expunge_all()  # keep what was read usable after the block
                    session.rollback()
                else:
                    session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN IMMEDIATE below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the lock at BEGIN: two concurrent read-then-write transactions
        # would otherwise deadlock on the upgrade and one would fail with "database is locked".
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


# A pooled PostgreSQL connection is pinged before use only after it sat idle this long. Pinging at every checkout
# (pool_pre_ping) cost a round trip per transaction, 7-8% of a served message's CPU (issue 18); one returned a moment
# ago is alive or, if the server went away meanwhile, its statement fails as a disconnect: SQLAlchemy then drops every
# connection of the pool made before it, and the request is answered 503 (bot/http/unavailable.py) for a retry.
PING_AFTER_IDLE_S = 5.0
_RETURNED_AT = "sapa_returned_at"


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connected(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()  # just made: nothing to check

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(_RETURNED_AT, 0.0) < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool's documented signal: this connection is gone, discard it and check out a new one.
            raise sa_exc.DisconnectionError(f"idle connection failed its ping: {type(exc).__name__}") from exc


def create_database(url: str, *, echo: bool = False, pool_size: int = 10) -> Database:
    """Build the engine for a sqlite:// or postgresql:// URL (creating the SQLite folder if needed)."""
    parsed = make_url(url)
    # hide_parameters: a statement's values are customers' data (phones, texts, session ids); an error keeps the
    # SQL and says which parameters it had, never their values (issue 15: tracebacks carried them into logs).
    kwargs: dict[str, Any] = {"echo": echo, "future": True, "hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        kwargs["pool_size"] = pool_size
        engine = create_engine(parsed, **kwargs)
        _configure_sqlite(engine)
    else:
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, pool_size=pool_size, max_overflow=pool_size, **kwargs)
        _ping_when_idle(engine)
    return Database(engine)


# Connection-level failures: refused connections, a server shutting down or starting up, a connection cut
# mid-query, SQLite's lock past its busy timeout, no pooled connection free in time. They pass by themselves;
# a query Sapa got wrong (ProgrammingError, IntegrityError...) is not one of them.
UNAVAILABLE: tuple[type[Exception], ...] = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
                                            sa_exc.InvalidatePoolError, sa_exc.DisconnectionError)


def unavailable_reason(exc: BaseException) -> str | None:
    """For a connection-level failure, the driver's first line (never the statement or its parameters: customers'
    data); None for any other exception."""
    if not isinstance(exc, UNAVAILABLE):
        return None
    original = getattr(exc, "orig", None) or exc
    first = (str(original).strip().splitlines() or [""])[0]
    return f"{type(original).__name__}: {first[:200]}"

