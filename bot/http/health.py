"""GET /healthz: is the database reachable, is the scheduler ticking, how full is the outbox, is Rasa up."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from nlu.rasa_backend import RasaInterpreter
from store.messages import outbox_counts
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
