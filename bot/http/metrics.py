"""GET /metrics: Prometheus's text format (bot/metrics.py says what is counted).

Open like /healthz, since it holds no customer data, only counts per channel; SAPA_METRICS_TOKEN makes it ask
for `Authorization: Bearer <token>` (401 without one, 403 for a wrong one), for deployments where the port
is reachable by more than the monitoring system.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.http.transactions_api import authorised
from bot.metrics import registry_for


def mount(app: FastAPI, sapa: Any) -> None:
    registry = registry_for(sapa.database, sapa.clock)

    # A plain def: FastAPI runs it in the thread pool, so the scrape's database reads never block the event loop.
    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        token = sapa.settings.server.metrics_token
        if token is not None:
            header = request.headers.get("authorization")
            if not header:
                return JSONResponse({"error": "missing bearer token"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
            if not authorised(header, token.get_secret_value()):
                return JSONResponse({"error": "wrong bearer token"}, status_code=403)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
