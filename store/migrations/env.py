"""Alembic environment: the URL comes from the caller (store.migrate), never from a file."""

from __future__ import annotations

from alembic import context

from store.db import create_database
from store.models import Base

config = context.config
url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
if not url:
    raise RuntimeError("no database URL given to Alembic; run `sapa db upgrade`")

database = create_database(url, pool_size=1)
with database.engine.connect() as connection:
    # SQLite cannot ALTER most things in place: batch mode rebuilds tables instead.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
database.dispose()
