"""The broadcasts and segments HTTP API (CRM-4.1, CRM-4.3), for marketing tools.

Authorization: Bearer <SAPA_API_TOKEN> (as /api/transactions). An optional `X-Sapa-Agent: <Slack user id>` names
the person acting: it must be an active agent with role marketing, supervisor or management (else 403) and is
recorded as the actor; without it the actor is "api".

POST /api/segments {name, filters} -> 201 · GET /api/segments · GET /api/segments/{name} (with preview) ·
DELETE /api/segments/{name}
POST /api/broadcasts {name, segment | filters, messages {id, en}, channels [...], at?} -> 201 (a draft)
GET /api/broadcasts · GET /api/broadcasts/{id} (with progress and statistics)
POST /api/broadcasts/{id}/preview | test {to, channel, language?} | schedule {at?} | pause | resume | cancel
Errors are JSON {"error": "..."}: 401, 403, 404, 409 (wrong state, e.g. resume a done broadcast), 413, 422, 503.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import limits
from bot.http.blocking import run_blocking
from bot.http.docs import BEARER, json_body
from bot.http.transactions_api import authorised, error
from handlers import broadcasts
from store import segments
from store.broadcasts import BroadcastError
from store.models import Agent

MAX_BODY_BYTES = 64 * 1024
# The string fields of the bodies and paths, and the column each goes to (store/models.py, bot/limits.py).
FIELDS = {"name": limits.MAX_BROADCAST_NAME, "segment": limits.MAX_SEGMENT_NAME, "to": limits.MAX_ID,
          "channel": limits.MAX_ID, "language": limits.MAX_LANGUAGE, "at": limits.MAX_ID}
PATH_FIELDS = {"name": limits.MAX_SEGMENT_NAME, "action": limits.MAX_ID}
STATUS = {"invalid": 422, "not_found": 404, "state": 409}


# --- the bodies, for /openapi.json only: body_of and handlers/broadcasts.py read and check them -------------------

Names = list[str] | str  # a list, or one comma-separated string


class Filters(BaseModel):
    """Who a segment or broadcast reaches; every key is optional, none = every live customer."""

    model_config = ConfigDict(extra="forbid")

    loyalty_tier: Names | None = Field(None, description="Loyalty tier names (config loyalty.tiers).")
    vip: bool | None = None
    vip_tier: Names | None = Field(None, description="VIP tier names.")
    tier: Names | None = Field(None, description="Loyalty tier names, or `vip` for vip: true.")
    segment: Names | None = Field(None, description="RFM segment names.")
    channel: Names | None = Field(None, description="Reachable on one of these channels.")
    language: Names | None = Field(None, description="The language Sapa writes to them in.")
    last_purchase_within_days: int | None = Field(None, ge=0)
    last_purchase_before_days: int | None = Field(None, ge=0, description="Bought, but not in the last N days.")
    min_points: int | None = Field(None, ge=0)
    max_points: int | None = Field(None, ge=0)
    consent: Literal["marketing", "any"] | None = None


class NewSegment(BaseModel):
    name: str = Field(min_length=1, max_length=limits.MAX_SEGMENT_NAME, examples=["loyal_jakarta"],
                      description="Without spaces.")
    filters: Filters = Field(default_factory=Filters)
    replace: bool = Field(False, description="Update the filters of a segment of that name (else 422).")


class NewBroadcast(BaseModel):
    name: str = Field(min_length=1, max_length=limits.MAX_BROADCAST_NAME)
    segment: str | None = Field(None, max_length=limits.MAX_SEGMENT_NAME,
                                description="A saved segment's name; give a segment or filters, not both.")
    filters: Filters | None = None
    messages: dict[str, str] = Field(examples=[{"id": "Halo {{ name }}", "en": "Hi {{ name }}"}],
                                     description="The text per language (the default language's is required); "
                                                 "variables: name, first_name, company, points, tier.")
    channels: Names = Field(examples=[["whatsapp", "sms"]], description="Enabled channels, in preference order.")
    at: str | None = Field(None, examples=["2026-12-24T10:00:00+07:00"],
                           description="When `schedule` sends it, unless it gives another time (ISO date-time).")


class BroadcastAction(BaseModel):
    """The body of /api/broadcasts/{broadcast_id}/{action}: only `test` and `schedule` read one."""

    to: str | None = Field(None, max_length=limits.MAX_ID, examples=["+6281234567890"],
                           description="test: your own phone number or Telegram chat id.")
    channel: str | None = Field(None, max_length=limits.MAX_ID, examples=["whatsapp"],
                                description="test: the channel to send it on.")
    language: str | None = Field(None, max_length=limits.MAX_LANGUAGE, examples=["id"],
                                 description="test: the text's language.")
    at: str | None = Field(None, examples=["2026-12-24T10:00:00+07:00"],
                           description="schedule: an ISO date-time (else the broadcast's own, else now).")


# Names the person acting (module docstring); every route reads it.
AGENT: dict[str, Any] = {"parameters": [{
    "name": "X-Sapa-Agent", "in": "header", "required": False, "schema": {"type": "string"},
    "description": "The Slack user id of the agent acting (role marketing, supervisor or management); "
                   "without it the actor is \"api\"."}]}


def documented(body: type[BaseModel] | None = None, *, required: bool = True) -> dict[str, Any]:
    return {**(json_body(body, required=required) if body else {}), **BEARER, **AGENT}


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def mount(app: FastAPI, sapa: Any) -> None:
    async def body_of(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise _Refused(413, f"body larger than {MAX_BODY_BYTES} bytes")
        if not raw.strip():
            return {}
        try:
            data = limits.loads(raw)
        except limits.Refused as exc:
            raise _Refused(422, exc.reason) from None
        if not isinstance(data, dict):
            raise _Refused(422, "body must be a JSON object")
        return data

    def edge_problem(request: Request, data: dict[str, Any]) -> tuple[int, str] | None:
        """What bot/limits.py refuses before any work: an id past a BIGINT (no such broadcast), a string longer
        than its column or unstorable, a message text past limits.MAX_TEXT, a date outside the calendar."""
        broadcast_id = str(request.path_params.get("broadcast_id", "1"))  # FastAPI has read it as an int
        if limits.parse_id(broadcast_id.strip()) is None:
            return 404, f"no broadcast #{broadcast_id[:40]}"
        for key, max_length in PATH_FIELDS.items():
            value = request.path_params.get(key)
            if value is not None and (problem := limits.text_problem(value, key, max_length)):
                return 422, problem
        for key, max_length in FIELDS.items():
            value = data.get(key)
            if key in ("segment", "language", "at") and value is not None and not isinstance(value, str):
                return 422, f"{key} must be a string"
            if isinstance(value, str) and (problem := limits.text_problem(value, key, max_length)):
                return 422, problem
        messages = data.get("messages")
        if isinstance(messages, dict):
            for language, text in messages.items():
                if isinstance(text, str) and len(text) > limits.MAX_TEXT:
                    return 413, f"messages.{language[:8]} is longer than {limits.MAX_TEXT} characters"
        problem = limits.iso_date_problem(data.get("at"), "at")
        return (422, problem) if problem else None

    def actor_of(session: Session, request: Request) -> str:
        slack_user = request.headers.get("x-sapa-agent")
        if not slack_user:
            return "api"
        agent = session.execute(select(Agent).where(Agent.slack_user_id == slack_user.strip(),
                                                    Agent.active.is_(True))).scalar_one_or_none()
        if agent is None:
            raise _Refused(403, f"X-Sapa-Agent {slack_user!r} is not an active Sapa agent")
        if not broadcasts.allowed(agent):
            raise _Refused(403, broadcasts.REFUSAL.format(role=agent.role.replace("_", " ")))
        return f"agent:{agent.id}"

    async def handle(request: Request, work: Callable[[Session, str, dict[str, Any]], tuple[int, Any]],
                     *, read_body: bool = True) -> JSONResponse:
        token = sapa.settings.server.api_token
        if token is None:
            return error(503, "the API is off: set the SAPA_API_TOKEN environment variable and restart")
        if not authorised(request.headers.get("authorization"), token.get_secret_value()):
            return error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        try:
            data = await body_of(request) if read_body else {}
        except _Refused as exc:
            return error(exc.status, str(exc))
        if refused := edge_problem(request, data):
            return error(*refused)

        def run() -> JSONResponse:
            try:
                with sapa.database.unit_of_work() as session:
                    status, answer = work(session, actor_of(session, request), data)
            except _Refused as exc:
                return error(exc.status, str(exc))
            except BroadcastError as exc:
                return error(STATUS.get(exc.kind, 422), str(exc))
            except segments.SegmentError as exc:
                return error(404 if str(exc).startswith("no segment") else 422, str(exc))
            except segments.FilterError as exc:
                return error(422, str(exc))
            except OverflowError:  # e.g. a filter of 10**18 days: no date is that far back
                return error(422, "a number or date in the request is out of range")
            return JSONResponse(answer, status_code=status)

        response = await run_blocking(run)
        sapa.dispatcher.wake()
        sapa.scheduler.wake()
        return response

    # --- segments ---------------------------------------------------------------------------------------------

    @app.post("/api/segments", status_code=201, tags=["segments"], openapi_extra=documented(NewSegment))
    async def post_segment(request: Request) -> JSONResponse:
        def work(session: Session, actor: str, data: dict[str, Any]) -> tuple[int, Any]:
            name, filters = data.get("name"), data.get("filters", {})
            if not isinstance(name, str):
                raise segments.SegmentError("name: give the segment's name")
            saved, created = segments.save(session, sapa.settings, name, filters, created_by=actor,
                                           now=sapa.clock.now(), replace=bool(data.get("replace", False)))
            shown = segments.preview(session, sapa.settings, saved.filters, sapa.clock.now())
            return (201 if created else 200), {"name": saved.name, "filters": saved.filters, **shown.as_dict()}

        return await handle(request, work)

    @app.get("/api/segments", tags=["segments"], openapi_extra=documented())
    async def get_segments(request: Request) -> JSONResponse:
        def work(session: Session, actor: str, data: dict[str, Any]) -> tuple[int, Any]:
            return 200, [{"name": s.name, "filters": s.filters, "created_by": s.created_by}
                         for s in segments.list_all(session)]

        return await handle(request, work, read_body=False)

    @app.get("/api/segments/{name}", tags=["segments"], openapi_extra=documented())
    async def get_segment(request: Request, name: str) -> JSONResponse:
        def work(session: Session, actor: str, data: dict[str, Any]) -> tuple[int, Any]:
            found = segments.get(session, name)
            if found is None:
                raise segments.SegmentError(f"no segment named {name!r}")
            shown = segments.preview(session, sapa.settings, found.filters, sapa.clock.now())
            return 200, {"name": found.name, "filters": found.filters, **shown.as_dict()}

        return await handle(request, work, read_body=False)

    @app.delete("/api/segments/{name}", tags=["segments"], openapi_extra=documented())
    async def delete_segment(request: Request, name: str) -> JSONResponse:
        def work(session: Session, actor: str, data: dict[str, Any]) -> tuple[int, Any]:
            segments.delete(session, name)
            return 200, {"deleted": name}

        return await handle(request, work, read_body=False)

    # --- broadcasts -------------------------------------------------------------------------------------------

    @app.post("/api/broadcasts", status_code=201, tags=["broadcasts"], openapi_extra=documented(NewBroadcast))
    async def post_broadcast(request: Request) -> JSONResponse:
        def work(session: Session, actor: str, data: dict[str, Any]) -> tuple[int, Any]:
            made = broadcasts.create(session, sapa.settings, name=str(data.get("name") or ""),
                                     segment=data.get("segment"), filters=data.get("filters"),
                                     messages=data.get("messages"), channels=data.get("channels"),
                                     at=data.get("at"), created_by=actor, now=sapa.clock.now())
            return 201, broadcasts.summary(made)

        return await handle(request, work)

    @app.get("/api/broadcasts", tags=["broadcasts"], openapi_extra=documented())
    async def get_broadcasts(request: Request) -> JSONResponse:
        def work(session: Session, actor: str, data: dict[str, Any]) -> tuple[int, Any]:
            return 200, [broadcasts.summary(b) for b in broadcasts.list_broadcasts(session)]

        return await handle(request, work, read_body=False)

    @app.get("/api/broadcasts/{broadcast_id}", tags=["broadcasts"], openapi_extra=documented())
    async def get_broadcast(request: Request, broadcast_id: int) -> JSONResponse:
        def work(session: Session, actor: str, data: dict[str, Any]) -> tuple[int, Any]:
            found = broadcasts.status(session, sapa.settings, broadcast_id, sapa.clock.now())
            return 200, json.loads(json.dumps(found, default=str))

        return await handle(request, work, read_body=False)

    @app.post("/api/broadcasts/{broadcast_id}/{action}", tags=["broadcasts"],
              summary="Preview, test, schedule, pause, resume or cancel a broadcast",
              openapi_extra=documented(BroadcastAction, required=False))
    async def act(request: Request, broadcast_id: int, action: str) -> JSONResponse:
        def work(session: Session, actor: str, data: dict[str, Any]) -> tuple[int, Any]:
            now, settings = sapa.clock.now(), sapa.settings
            if action == "preview":
                return 200, broadcasts.preview(session, settings, broadcast_id, now)
            if action == "test":
                message = broadcasts.send_test(session, settings, broadcast_id, channel=str(data.get("channel", "")),
                                               to=str(data.get("to", "")), now=now, actor=actor,
                                               language=data.get("language"))
                return 202, {"queued": True, "message_id": message.id, "test": True}
            if action == "schedule":
                done = broadcasts.schedule(session, settings, broadcast_id, now=now, actor=actor, at=data.get("at"))
                return 200, broadcasts.summary(done)
            operations = {"pause": broadcasts.pause, "resume": broadcasts.resume, "cancel": broadcasts.cancel}
            if action not in operations:
                raise BroadcastError(f"unknown action {action!r}; use preview, test, schedule, pause, resume, cancel",
                                     "not_found")
            return 200, broadcasts.summary(operations[action](session, settings, broadcast_id, now=now, actor=actor))

        return await handle(request, work)
