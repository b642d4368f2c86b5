"""POST /api/transactions: a shop or ERP system reports a purchase; the VIP rules run on it (VIP-1.1).

Authorization: Bearer <SAPA_API_TOKEN>. Body (JSON object): external_id, amount (1500000 or "Rp 1.500.000"),
occurred_at (ISO date or date-time), and one of customer_phone, customer_email, customer_id.
-> 201 {"transaction_id", "customer_id", "duplicate": false, "vip": {...}, "vip_change": ... | null}
-> 200 the same with "duplicate": true when the external_id is already stored (nothing changes)
Errors are JSON {"error": "..."}: 401 (no or wrong token, nothing stored), 503 (no token configured),
413, 422 (malformed body, unknown customer_id).
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from bot import limits
from bot.http.blocking import run_blocking
from bot.http.docs import BEARER, json_body
from handlers.vip import evaluate, read_transaction, record_transaction

MAX_BODY_BYTES = 16 * 1024


# For /openapi.json only: the route reads the body by hand and handlers/vip.read_transaction checks it.
class NewTransaction(BaseModel):
    """A purchase reported by a shop or ERP system."""

    external_id: str = Field(min_length=1, max_length=120, examples=["INV-2026-0001"],
                             description="The shop's id of the purchase; a second report of it changes nothing.")
    amount: int | str = Field(examples=[1500000, "Rp 1.500.000"], description="Whole rupiah, more than zero.")
    occurred_at: str = Field(examples=["2026-01-05", "2026-01-05T14:30:00+07:00"],
                             description="An ISO date or date-time; without an offset, the company's time zone.")
    customer_phone: str | None = Field(None, max_length=limits.MAX_EMAIL, examples=["+6281234567890"],
                                       description="One of customer_phone, customer_email, customer_id is required.")
    customer_email: str | None = Field(None, max_length=limits.MAX_EMAIL, examples=["budi@example.com"])
    customer_id: int | str | None = Field(None, examples=[42, "#42"], description="Sapa's customer number.")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def authorised(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    # compare_digest: the time taken does not tell how much of a guessed token was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def edge_problem(data: dict[str, Any]) -> str | None:
    """What bot/limits.py refuses in a transaction body before it is read: unstorable or over-long strings, a
    customer_id that is not an ASCII number fitting a BIGINT ("²" passes str.isdigit()), an impossible date."""
    for key in ("external_id", "customer_phone", "customer_email", "customer_id", "amount", "occurred_at"):
        value = data.get(key)
        if isinstance(value, str) and (problem := limits.text_problem(value, key, limits.MAX_EMAIL)):
            return problem
    customer_id = data.get("customer_id")
    if isinstance(customer_id, str) and customer_id.strip():
        if limits.parse_id(customer_id.strip().lstrip("#")) is None:
            return f"customer_id {customer_id[:40]!r} is not a customer number"
    elif isinstance(customer_id, int) and not isinstance(customer_id, bool) and not 0 < customer_id <= limits.INT64_MAX:
        return f"customer_id {customer_id} is not a customer number"
    return limits.iso_date_problem(data.get("occurred_at"), "occurred_at")


def mount(app: FastAPI, sapa: Any) -> None:
    @app.post("/api/transactions", status_code=201, tags=["transactions"],
              openapi_extra={**json_body(NewTransaction), **BEARER})
    async def post_transaction(request: Request) -> JSONResponse:
        token = sapa.settings.server.api_token
        if token is None:
            return error(503, "the transactions API is off: set the SAPA_API_TOKEN environment variable and restart")
        if not authorised(request.headers.get("authorization"), token.get_secret_value()):
            return error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return error(413, f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            data = limits.loads(body)
        except limits.Refused as exc:
            return error(422, exc.reason)
        if not isinstance(data, dict):
            return error(422, "body must be a JSON object")
        if problem := edge_problem(data):
            return error(422, problem)
        now = sapa.clock.now()
        try:
            item = read_transaction(data, sapa.settings, now)
        except (ValueError, OverflowError) as exc:
            return error(422, str(exc))
        if item.amount > limits.MAX_AMOUNT:
            return error(422, f"amount is more than {limits.MAX_AMOUNT:,} rupiah")

        def store() -> JSONResponse:
            with sapa.database.unit_of_work() as session:
                recorded = record_transaction(session, sapa.settings, item, source="api", now=now)
                if recorded is None:
                    return error(422, f"no customer #{item.customer_id}")
                change = evaluate(session, sapa.settings, recorded.customer, now) if recorded.added else None
                customer = recorded.customer
                answer = {
                    "transaction_id": recorded.transaction.id, "customer_id": customer.id,
                    "duplicate": not recorded.added,
                    "vip": {"is_vip": customer.is_vip, "tier": customer.vip_tier},
                    "vip_change": None if change is None else {"gained": change.gained, "tier": change.tier,
                                                               "reason": change.reason},
                }
            return JSONResponse(answer, status_code=201 if recorded.added else 200)

        response = await run_blocking(store)
        sapa.dispatcher.wake()
        return response
