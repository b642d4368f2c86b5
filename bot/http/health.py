"""Health for people and load balancers.

GET /healthz: is the database reachable, is the scheduler ticking, how full is the outbox, is Rasa up (a report).
GET /livez: the process answers (liveness: restart it if not; a database outage is not its fault).
GET /readyz: this replica can serve: the database answers and holds every migration this release needs.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from nlu.rasa_backend import RasaInterpreter
from store.messages import outbox_counts
from store.migrate import alembic_config, current_heads
from store.tasks import due_count

router = APIRouter()


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    sapa = request.app.state.sapa
    body: dict[str, Any] = {"status": "ok"}
    try:
        with sapa.database.unit_of_work(read_only=True) as session:
            session.execute(text("SELECT 1"))
            revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
            outbox = outbox_counts(session)
            due = due_count(session, now=sapa.clock.now())
        body["database"] = {"ok": True, "dialect": sapa.database.dialect, "revision": revision}
        # unconfirmed: sent to a provider that gave no clear answer and cannot be asked (docs/delivery.md)
        body["outbox"] = {"pending": outbox.get("pending", 0), "failed": outbox.get("failed", 0),
                          "unconfirmed": outbox.get("unconfirmed", 0)}
    except Exception as exc:
        body["status"] = "error"
        body["database"] = {"ok": False, "dialect": sapa.database.dialect, "error": type(exc).__name__}
        due = None
    last_tick = sapa.scheduler.last_tick_at
    body["scheduler"] = {
        "enabled": sapa.settings.scheduler.enabled,
        "running": sapa.scheduler.running,
        "last_tick_at": last_tick.isoformat() if last_tick else None,
        "due_tasks": due,
    }
    body["outbox_dispatcher"] = {"running": sapa.dispatcher.running}
    body["nlu"] = {"backend": sapa.settings.nlu.backend}
    if isinstance(sapa.interpreter, RasaInterpreter):
        # Messages are still understood (by the embedded backend), so a Rasa outage degrades, never errors.
        body["nlu"]["rasa"] = {"url": sapa.interpreter.url, "up": not sapa.interpreter.down}
        if sapa.interpreter.down and body["status"] == "ok":
            body["status"] = "degraded"
    if body["status"] == "ok" and sapa.settings.scheduler.enabled and not sapa.scheduler.running:
        body["status"] = "degraded"
    return JSONResponse(body, status_code=200 if body["status"] != "error" else 503)


@router.get("/livez")
def livez() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@cache
def _release_revisions() -> tuple[frozenset[str], frozenset[str]]:
    """This release's head revisions, and every revision it knows (read once: the files do not change)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return frozenset(current_heads()), frozenset(rev.revision for rev in script.walk_revisions())


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Ready when the database's revision is this release's head, or one this release does not know: a newer
    release ran its additive (expand) migration first, and this replica keeps serving until it is replaced
    (docs/deployment.md). A database behind this release lacks what the code needs: not ready."""
    sapa = request.app.state.sapa
    heads, known = _release_revisions()
    try:
        with sapa.database.unit_of_work(read_only=True) as session:
            revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception as exc:
        return JSONResponse({"status": "not ready", "reason": f"database: {type(exc).__name__}"}, status_code=503)
    body: dict[str, Any] = {"revision": revision, "release_head": sorted(heads)}
    if revision in heads or (revision is not None and revision not in known):
        return JSONResponse({"status": "ready", **body})
    return JSONResponse({"status": "not ready", "reason": "database migrations behind this release: run "
                         "`sapa db upgrade`", **body}, status_code=503)
