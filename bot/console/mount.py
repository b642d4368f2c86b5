"""Mount the staff console (`/console`) on the app: its static assets and each group of pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from bot.console.web import STATIC

if TYPE_CHECKING:
    from bot.app import Sapa


def mount(app: FastAPI, sapa: Sapa) -> None:
    from bot.console import (
        auth_routes,
        campaign_routes,
        customer_routes,
        dashboard_routes,
        inbox_routes,
        knowledge_routes,
    )

    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    auth_routes.install(app)  # sign-in, staff accounts; anonymous visitors of any /console path get the sign-in page
    inbox_routes.mount(app)  # the queue, conversations, live updates
    customer_routes.mount(app)  # customers, tickets
    dashboard_routes.mount(app)  # managers: the live queue, a period's numbers with charts, drill-down, exports
    campaign_routes.mount(app)  # marketing: segments, broadcasts, the loyalty programme
    knowledge_routes.mount(app)  # FAQ entries and reply texts, with history and rollback
