"""Marketing's pages (issue 17, permission campaigns.manage: marketing and admin): the campaigns overview here;
segments (campaign_segments.py), broadcasts (campaign_broadcasts.py, campaign_recipients.py) and the loyalty
programme (loyalty_routes.py) in their own modules, mounted from `mount`.

The console is one more face of the services the Slack commands (`/sapa segment`, `/sapa broadcast`), the CLI and
the HTTP API already use; nothing here computes a number of its own. Marketing sees names, tiers, channels and
counts, never a transcript or a customer's profile (handlers/permissions.py).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse

from bot.console import campaign_broadcasts, campaign_recipients, campaign_segments, loyalty_routes
from bot.console.auth import sapa_of
from bot.console.campaign_forms import describe
from bot.console.campaign_texts import Marketer, outcome
from bot.console.views import local_time
from bot.console.web import page
from handlers import broadcasts
from store import broadcasts as broadcast_store
from store import segments


def mount(app: FastAPI) -> None:
    routes = APIRouter(prefix="/console", include_in_schema=False)
    routes.add_api_route("/campaigns", campaigns_page, methods=["GET"], response_class=HTMLResponse)
    app.include_router(routes)
    campaign_segments.mount(app)
    campaign_recipients.mount(app)  # before the broadcast pages: /{id}/progress is not a broadcast's own page
    campaign_broadcasts.mount(app)
    loyalty_routes.mount(app)


def campaigns_page(request: Request, staff: Marketer) -> HTMLResponse:
    """The broadcasts (newest first, with how far each got) and the saved segments."""
    sapa = sapa_of(request)
    settings = sapa.settings
    with sapa.database.unit_of_work(read_only=True) as session:
        rows = []
        for broadcast in broadcasts.list_broadcasts(session, limit=100):
            progress = broadcast_store.progress(session, broadcast.id)
            rows.append({"broadcast": broadcast, "queued": progress.recipients.get("queued", 0),
                         "skipped": progress.recipients.get("skipped", 0),
                         "when": local_time(settings, broadcast.finished_at or broadcast.started_at
                                            or broadcast.scheduled_at or broadcast.created_at)})
        saved = [{"name": s.name, "filters": describe(s.filters)} for s in segments.list_all(session)]
    return page(request, "campaigns.html", staff=staff, csrf_token=staff.csrf_token, active="campaigns",
                notice=outcome(request), broadcasts=rows, saved=saved,
                channels=broadcasts.enabled_channels(settings))
