"""Persistence: typed SQLAlchemy models, query functions, one unit_of_work(), Alembic migrations.

Imports no other project package. Query functions take a session and never commit.
"""

from store.db import Database, create_database

__all__ = ["Database", "create_database"]
