"""dashboard pages of the console (issue 17): being built."""

from __future__ import annotations

from fastapi import FastAPI


def mount(app: FastAPI) -> None:
    pass
