"""Mount the staff console (`/console`) on the app: its static assets and each group of pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from bot.console.web import STATIC

if TYPE_CHECKING:
    from bot.app import Sapa


def mount(app: FastAPI, sapa: Sapa) -> None:
    from bot.console import auth_routes, customer_routes, inbox_routes

    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    auth_routes.install(app)  # sign-in, staff accounts; anonymous visitors of any /console path get the sign-in page
    inbox_routes.mount(app)  # the queue, conversations, live updates
    customer_routes.mount(app)  # customers, tickets
