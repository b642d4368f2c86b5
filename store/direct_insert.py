"""New rows written by one Core INSERT and then attached to the session as if they had been flushed.

The ORM's unit of work costs a fixed ~0.3 ms of CPU per flush (dependency sort, state bookkeeping, statement per
mapper) whatever it writes; on the inbound hot path it ran twice per message for rows that depend on nothing pending
(the customer's message, the bot's replies and their outbox rows). Here those rows are inserted with one statement
per table (`RETURNING id`, in parameter order) and then made persistent in the session without SQL, so the rest of
the transaction sees them exactly as flushed objects: in the identity map, loaded, and changes to them become UPDATEs
at the next flush (issue 18).

The caller gives column values, not objects: building an ORM object fires an attribute event per column (about 50
per message for the three rows), for state that is discarded when the row is attached. Every column gets a value:
Python-side column defaults are applied here as the unit of work would, others are None; a server-side default
without a value is refused rather than silently read back.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Column, Insert, Table, bindparam, insert, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store import driver_sql, loaded
from store.models import Base

T = TypeVar("T", bound=Base)
C = TypeVar("C", bound=Base)


@functools.cache
def _columns(cls: type[Base]) -> tuple[tuple[str, Column[Any]], ...]:
    """`loaded.columns(cls)` but the primary key, checked once: the key is an integer `id`, and a value the caller
    leaves out is the column's Python default or None, never a SQL default nobody reads back."""
    (key, _), *rest = loaded.columns(cls)
    if key != "id":
        raise ValueError(f"{cls.__name__}: an integer primary key `id` expected")
    for key, column in rest:
        default = column.default
        if default is not None and not (default.is_scalar or default.is_callable):
            raise ValueError(f"{cls.__name__}.{key}: a SQL default cannot be applied here")
    return tuple(rest)


def _complete(cls: type[Base], given: Mapping[str, Any]) -> dict[str, Any]:
    """Every column's value by attribute key: the given ones, else the Python default (as the unit of work applies
    it), else None; a column with only a server default must be given."""
    values: dict[str, Any] = {}
    for key, column in _columns(cls):
        value = given.get(key)
        if value is None:
            default: Any = column.default
            if default is not None:
                value = default.arg if default.is_scalar else default.arg(None)  # the callable takes a context
            elif key not in given and column.server_default is not None:
                raise ValueError(f"{cls.__name__}.{key}: give a value, the server default is unread")
        values[key] = value
    unknown = given.keys() - values.keys()
    if unknown:
        raise TypeError(f"{cls.__name__}: no such columns {sorted(unknown)}")
    return values


@functools.cache
def _keys_are_column_names(cls: type[Base]) -> bool:
    return all(key == column.key for key, column in _columns(cls))


def _by_column_name(cls: type[Base], values: dict[str, Any]) -> dict[str, Any]:
    """Values by attribute key, as the statement's parameters (by column name)."""
    return values if _keys_are_column_names(cls) else {column.key: values[key] for key, column in _columns(cls)}


@functools.cache
def _column_name(cls: type[Base], key: str) -> str:
    # Cached: asked for every reply written (the outbox row's link) and every task scheduled.
    return dict(_columns(cls))[key].key


@functools.cache
def _statement(table: Table, *, ordered: bool) -> Insert:
    # Built once per table: a statement built per call costs its cache key every time.
    return insert(table).returning(table.c.id, sort_by_parameter_order=ordered)


@functools.cache
def _skipping_statement(table: Table, dialect: str, unique: str) -> Insert:
    """`INSERT … ON CONFLICT (unique) DO NOTHING RETURNING id`: a row whose unique value exists returns no id."""
    key = [table.c[unique]]
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=key).returning(table.c.id)
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=key).returning(table.c.id)
    raise ValueError(f"skip_existing: no ON CONFLICT for {dialect}")


@functools.cache
def _linked_statement(parent: type[Base], child: type[Base], link: str) -> Insert:
    """One statement for a parent row and a child row pointing at it (PostgreSQL): `WITH parent_row AS (INSERT …
    RETURNING id) INSERT INTO child (link, …) SELECT parent_row.id, … FROM parent_row RETURNING child.id, link`.
    Parameters are `p_<column>` and `c_<column>`."""
    parent_table = cast(Table, inspect(parent).local_table)
    child_table = cast(Table, inspect(child).local_table)
    written = parent_table.insert().values({
        column.key: bindparam(f"p_{column.key}", type_=column.type) for _, column in _columns(parent)
    }).returning(parent_table.c.id).cte("parent_row")
    child_columns = [column for _, column in _columns(child) if column.key != link]
    return child_table.insert().from_select(
        [link, *(column.key for column in child_columns)],
        select(written.c.id, *(bindparam(f"c_{column.key}", type_=column.type) for column in child_columns)),
    ).returning(child_table.c.id, child_table.c[link])


def insert_linked_attached(session: Session, parent: type[T], parent_values: Mapping[str, Any], child: type[C],
                           child_values: Mapping[str, Any], *, link: str) -> tuple[T, C]:
    """A parent row and a child row whose `link` column is the parent's new id, in one round trip on PostgreSQL
    (a data-modifying CTE; SQLite has none: two statements), both attached as `insert_attached` attaches them.

    An outbound message and its outbox row are written together for nearly every inbound message; the second
    round trip was one of about nine per message on PostgreSQL (issue 18)."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        (parent_row,) = insert_attached(session, parent, [parent_values])
        (child_row,) = insert_attached(session, child, [{**child_values, link: cast(Any, parent_row).id}])
        return parent_row, child_row
    parent_complete = _complete(parent, parent_values)
    child_complete = _complete(child, {**child_values, link: None})
    link_column = _column_name(child, link)
    parameters = {f"p_{column.key}": parent_complete[key] for key, column in _columns(parent)}
    parameters.update({f"c_{column.key}": child_complete[key] for key, column in _columns(child)
                       if column.key != link_column})
    child_id, parent_id = cast(tuple[int, int], tuple(
        driver_sql.execute(connection, _linked_statement(parent, child, link_column), parameters).one()))
    return (loaded.attach(session, parent, {**parent_complete, "id": parent_id}, new_row=True),
            loaded.attach(session, child, {**child_complete, link: parent_id, "id": child_id}, new_row=True))


def insert_attached(session: Session, cls: type[T], rows: Sequence[Mapping[str, Any]], *,
                    skip_existing: str | None = None) -> list[T]:
    """INSERT new rows of `cls` (column values by attribute key) in one statement; return them as objects of the
    session, loaded (every column, the new `id` included) and unchanged, in the order given.

    Pending changes in the session are not flushed first: the rows must not depend on anything unflushed. The
    objects are made without attribute events (their state is what the database now holds), as a query's load
    makes them.

    With `skip_existing` (a column with a unique constraint, one row only), a row whose value there is already stored
    (or being stored by a transaction it then waits for, on PostgreSQL) is not written and not returned: one
    statement instead of a look, a savepoint, the insert and its release.
    """
    if not rows:
        return []
    if skip_existing is not None and len(rows) != 1:
        raise ValueError("skip_existing writes one row at a time")
    table = cast(Table, inspect(cls).local_table)
    complete = [_complete(cls, row) for row in rows]
    parameters = [_by_column_name(cls, values) for values in complete]
    connection = session.connection()
    if skip_existing is not None:
        statement = _skipping_statement(table, connection.dialect.name, _column_name(cls, skip_existing))
        new_id = driver_sql.execute(connection, statement, parameters[0]).scalar_one_or_none()
        if new_id is None:
            return []
        ids = [new_id]
    elif len(parameters) == 1:  # the common case: by the driver, without executemany's machinery
        ids = [driver_sql.execute(connection, _statement(table, ordered=False), parameters[0]).scalar_one()]
    elif connection.dialect.name == "sqlite":
        # SQLAlchemy keeps the parameter order on SQLite only by one INSERT per row. One multi-row INSERT gives each
        # row the next rowid in turn (max + 1), so the ids, in ascending order, are the rows' in parameter order.
        ids = sorted(connection.execute(_statement(table, ordered=False), parameters).scalars())
    else:
        ids = list(connection.execute(_statement(table, ordered=True), parameters).scalars())
    return [loaded.attach(session, cls, {**values, "id": new_id}, new_row=True)
            for values, new_id in zip(complete, ids, strict=True)]
