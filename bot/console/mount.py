"""Mount the staff console (`/console`) on the app: its static assets and each group of pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from bot.console.web import STATIC

if TYPE_CHECKING:
    from bot.app import Sapa


def mount(app: FastAPI, sapa: Sapa) -> None:
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
