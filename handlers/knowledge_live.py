"""The FAQ and reply texts customers get now (issue 17): config.yml's, with the console's edits laid over.

`config.yml` is the seed: an entry nobody edited is the configured one, and a new installation starts from it. Edits
are revisions (store/knowledge.py); the current text of an entry is its latest revision. `Knowledge` is the live
object each process holds (`sapa.knowledge`): `settings()` is the configured Settings with the current FAQ entries
and templates laid over it, rebuilt only when the newest revision id changes. That id is read at most once a second
(one look-up of the primary key's maximum) and forgotten at once when this process saves, so the bot answers with an
edit immediately in the process that made it and within a second in every other replica. The pipeline, the task
runner (scheduler/jobs.CurrentTaskKinds), the console's desk and the Slack commands all take their Settings from it.
Editing, history and rollback are in handlers/knowledge.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.config import FaqEntry, Settings
from store import knowledge as store
from store.db import Database
from store.models import KnowledgeRevision

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0


# --- the current texts -------------------------------------------------------------------------------------------


def entry_content(entry: FaqEntry) -> dict[str, Any]:
    """A FAQ entry as a revision stores it."""
    return {"id": entry.id, "question": dict(entry.question), "examples": list(entry.examples),
            "answer": dict(entry.answer), "terms": list(entry.terms)}


def overlay(seed: Settings, revisions: Mapping[tuple[str, str], KnowledgeRevision]) -> Settings:
    """The seed Settings with the current revisions laid over: edited entries replaced where they stood, deleted
    ones left out, new ones after the configured ones (oldest first), templates replaced by name. A revision that
    no longer validates (the configured languages changed since) is skipped with a warning: the seed stays."""
    edited: dict[str, FaqEntry | None] = {}
    for (kind, key), row in sorted(revisions.items(), key=lambda item: item[1].id):
        if kind != "faq":
            continue
        try:
            edited[key] = None if row.content is None else FaqEntry.model_validate(row.content)
        except ValidationError as exc:
            log.warning("knowledge: FAQ revision %s of %r no longer validates, the configured entry is used: %s",
                        row.id, key, exc.errors()[0].get("msg"))
    entries: list[FaqEntry] = []
    for entry in seed.faq.entries:
        if entry.id not in edited:
            entries.append(entry)
        elif (replacement := edited.pop(entry.id)) is not None:
            entries.append(replacement)
    entries.extend(entry for entry in edited.values() if entry is not None)
    templates = {name: dict(texts) for name, texts in seed.templates.items()}
    for (kind, key), row in revisions.items():
        if kind == "template" and row.content is not None and key in templates:
            templates[key] = {str(lang): str(text) for lang, text in row.content.items()}
    faq = seed.faq.model_copy(update={"entries": tuple(entries)})
    return seed.model_copy(update={"faq": faq, "templates": templates})


class Knowledge:
    """The FAQ and reply texts this process answers with (see the module's docstring)."""

    def __init__(self, seed: Settings, database: Database, *, check_every_s: float = CHECK_EVERY_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.seed = seed
        self.database = database
        self.check_every_s = check_every_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._state: tuple[int, Settings] = (0, seed)  # the newest revision id included, and the settings
        self._checked_at: float | None = None
        self._saves = 0  # counts `invalidate` calls: a read that raced a save does not count as a fresh check

    @property
    def revision(self) -> int:
        """The newest revision id the current settings include (0: the seed as configured)."""
        return self._state[0]

    def settings(self) -> Settings:
        """The Settings to answer with now: the seed with the current FAQ entries and templates."""
        checked = self._checked_at
        if checked is not None and self._monotonic() - checked < self.check_every_s:
            return self._state[1]
        with self._lock:
            checked = self._checked_at
            if checked is not None and self._monotonic() - checked < self.check_every_s:
                return self._state[1]
            saves = self._saves
            try:
                with self.database.unit_of_work(read_only=True) as session:
                    latest = store.latest_id(session)
                    if latest != self._state[0]:
                        self._state = (latest, overlay(self.seed, store.current(session)) if latest else self.seed)
            except SQLAlchemyError as exc:
                # The database is away (or not migrated yet at start-up): answer with the texts last read and
                # look again in a second; whatever needs the database next reports the outage itself.
                log.warning("knowledge: could not read the current texts, the last known are used: %s",
                            type(exc).__name__)
            if saves == self._saves:
                self._checked_at = self._monotonic()
            return self._state[1]

    def invalidate(self) -> None:
        """Something was saved here (call it after the commit): the next `settings()` reads the database instead
        of waiting for its second."""
        self._saves += 1
        self._checked_at = None

    def current_in(self, session: Session) -> Settings:
        """The current settings as `session` sees them (inside an edit's transaction, before it commits)."""
        latest = store.latest_id(session)
        revision, settings = self._state
        if latest == revision:  # revisions are only added: the same newest id is the same texts
            return settings
        return overlay(self.seed, store.current(session)) if latest else self.seed
