"""Hot statements run by the driver with the SQL SQLAlchemy compiled for them once, not compiled-cache lookups.

A Core statement executed by SQLAlchemy costs about 30 µs of CPU per execution before the driver sees it (cache
key, compiled-cache lookup, parameter construction, execution context), measured on this project's machine; the
same SQL through `exec_driver_sql` with the parameters already converted costs about 13 µs. For the few statements
every message runs with a fixed set of keys (the direct inserts, the fast flush's UPDATEs), the SQL and the column
types' converters are taken from SQLAlchemy's own compilation once per dialect and key set, so the text and the
stored values are the same; events, error wrapping and the transaction stay SQLAlchemy's (issue 18).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, CursorResult, Dialect
from sqlalchemy.sql.dml import UpdateBase

_Convert = Callable[[Any], Any] | None


@functools.lru_cache(maxsize=256)  # a few statements x key sets per engine; tests make many engines
def _compiled(statement: UpdateBase, dialect: Dialect, keys: tuple[str, ...]
              ) -> tuple[str, tuple[tuple[str, str, _Convert], ...], bool]:
    """The SQL text, and per bind parameter (in the driver's order) its name, the caller's key and its converter."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    names = compiled.positiontup if compiled.positional else list(compiled.binds)
    assert names is not None
    escaped: dict[str, str] = compiled.escaped_bind_names or {}
    binds = []
    for name in names:
        bind = compiled.binds[name]
        if bind.key not in keys or bind.callable is not None:
            raise ValueError(f"{name}: only plain bind parameters given by the caller can be run by the driver")
        binds.append((escaped.get(name, name), bind.key, bind.type.dialect_impl(dialect).bind_processor(dialect)))
    return compiled.string, tuple(binds), compiled.positional


def execute(connection: Connection, statement: UpdateBase, params: Mapping[str, Any]) -> CursorResult[Any]:
    """`connection.execute(statement, params)` for one row of parameters, by the driver (see the module)."""
    sql, binds, positional = _compiled(statement, connection.dialect, tuple(params))
    if positional:
        return connection.exec_driver_sql(sql, tuple(
            params[key] if convert is None else convert(params[key]) for _, key, convert in binds))
    return connection.exec_driver_sql(sql, {
        name: params[key] if convert is None else convert(params[key]) for name, key, convert in binds})
