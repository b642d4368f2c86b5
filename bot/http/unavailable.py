"""A database that cannot be reached answers 503 with Retry-After on every route, not a 500 with a traceback.

Issue 15: during a PostgreSQL restart every webhook in flight ended in uvicorn's "Exception in ASGI application"
and a 500. The provider re-delivered and nothing was lost, but a 500 says "Sapa is broken" where the truth is
"try again in a moment", and the traceback was the only log line. Connection-level errors only
(`store.db.UNAVAILABLE`): a query Sapa got wrong is still a 500 with its traceback.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from store.db import UNAVAILABLE, unavailable_reason

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable for %s %s (answered 503): %s", request.method, request.url.path,
                unavailable_reason(exc))
    return JSONResponse({"error": "the database is unavailable for a moment; try again"}, status_code=503,
                        headers={"Retry-After": str(RETRY_AFTER_S)})


def install(app: FastAPI) -> None:
    for kind in UNAVAILABLE:
        app.add_exception_handler(kind, database_unavailable)
