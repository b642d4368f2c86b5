"""Revisions of the knowledge base (issue 17): FAQ entries and reply templates as edited in the console.

An entry's current text is its latest revision (highest id for its kind and key); without any, it is still the
`config.yml` seed. Rows are only ever added: an edit, a deletion (content None) and a rollback (a copy of an older
revision, naming it in `restored_from_id`) are each one new row. Query functions take a session and never commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import KnowledgeRevision

Kind = Literal["faq", "template"]
KINDS: tuple[Kind, ...] = ("faq", "template")


def latest_id(session: Session) -> int:
    """The newest revision's id, 0 when nothing was ever edited: what a process compares to know it is current
    (one look-up of the primary key's maximum)."""
    return int(session.execute(select(func.max(KnowledgeRevision.id))).scalar() or 0)


def current(session: Session) -> dict[tuple[str, str], KnowledgeRevision]:
    """The latest revision of every edited entry, by (kind, key)."""
    newest = (select(func.max(KnowledgeRevision.id))
              .group_by(KnowledgeRevision.kind, KnowledgeRevision.key).scalar_subquery())
    rows = session.execute(select(KnowledgeRevision).where(KnowledgeRevision.id.in_(newest))).scalars()
    return {(row.kind, row.key): row for row in rows}


def latest_of(session: Session, kind: Kind, key: str) -> KnowledgeRevision | None:
    return session.execute(select(KnowledgeRevision)
                           .where(KnowledgeRevision.kind == kind, KnowledgeRevision.key == key)
                           .order_by(KnowledgeRevision.id.desc()).limit(1)).scalars().first()


def history(session: Session, kind: Kind, key: str, limit: int = 200) -> list[KnowledgeRevision]:
    """An entry's revisions, newest first."""
    return list(session.execute(select(KnowledgeRevision)
                                .where(KnowledgeRevision.kind == kind, KnowledgeRevision.key == key)
                                .order_by(KnowledgeRevision.id.desc()).limit(limit)).scalars())


def get(session: Session, revision_id: int) -> KnowledgeRevision | None:
    return session.get(KnowledgeRevision, revision_id)


def add(session: Session, kind: Kind, key: str, content: dict[str, Any] | None, *, actor: str, now: datetime,
        note: str | None = None, restored_from_id: int | None = None) -> KnowledgeRevision:
    """A new revision; `content` None records a deletion."""
    row = KnowledgeRevision(kind=kind, key=key, content=content, actor=actor, note=note,
                            restored_from_id=restored_from_id, created_at=now)
    session.add(row)
    session.flush()
    return row
