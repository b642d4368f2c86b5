"""Objects made from column values the caller read or wrote itself, put into the session as a query's load puts them.

For rows the hot path reads or writes with Core (store/direct_insert.py, store/inbound_context.py): the object is
built without attribute events (its `__dict__` is the loaded state) and enters the session's identity map directly,
as sqlalchemy.orm.loading does for a new row, without the ORM query's per-statement loading machinery or
session.add's attach events and cascades (issue 18: about 4% of a message's instructions for the three rows it
writes). Relationships stay unloaded and load on first use. It uses SQLAlchemy 2.0/2.1 internals (the instance
state's key and session id); tests/store/test_loaded.py and test_direct_insert.py check the result.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Column, inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state

from store.models import Base

T = TypeVar("T", bound=Base)


@functools.cache
def columns(cls: type[Base]) -> tuple[tuple[str, Column[Any]], ...]:
    """(attribute key, column) of every column attribute of `cls`, its one primary key column first."""
    mapper = inspect(cls)
    if len(mapper.primary_key) != 1:
        raise ValueError(f"{cls.__name__}: one primary key column expected")
    pairs = [(attr.key, cast(Column[Any], attr.columns[0])) for attr in mapper.column_attrs]
    pairs.sort(key=lambda pair: not pair[1].primary_key)
    return tuple(pairs)


def attach(session: Session, cls: type[T], values: Mapping[str, Any], *, new_row: bool = False) -> T:
    """The object of `cls` with these column values (by attribute key, every column given, the primary key
    included): the one the session holds for that key if any (as a query gives it, unchanged), else a new one,
    loaded and unchanged. `new_row`: the row was just inserted, so an object the session holds with its key is
    that of a row rolled back with a savepoint (SQLite gives its id again), and gives way."""
    mapper = inspect(cls)
    key = mapper.identity_key_from_primary_key((values[columns(cls)[0][0]],))
    held = None if new_row else session.identity_map.get(key)
    if held is not None:
        return cast(T, held)
    obj = cast(T, mapper.class_manager.new_instance())
    obj.__dict__.update(values)  # the loaded state: no attribute event, nothing marked changed
    state = instance_state(obj)
    state.key = key  # type: ignore[assignment]  # typed by Base, not T
    state.session_id = session.hash_key
    if new_row:
        session.identity_map.replace(state)
    else:
        session.identity_map.add(state)
    return obj


def attach_row(session: Session, cls: type[T], row: Sequence[Any]) -> T | None:
    """`attach` with the values in `columns(cls)`'s order (a slice of a Core row); None when the id is None (an
    outer join that found nothing)."""
    if row[0] is None:
        return None
    return attach(session, cls, dict(zip((key for key, _ in columns(cls)), row, strict=True)))
