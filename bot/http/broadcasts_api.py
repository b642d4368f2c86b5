"""The broadcasts HTTP API (CRM-4.3)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def mount(app: FastAPI, sapa: Any) -> None:
    return None
