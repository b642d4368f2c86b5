"""`sapa analysis ...`: the command line for CRM-4 (analysis)."""

from __future__ import annotations

import click


@click.group()
def analysis() -> None:
    """analysis commands."""


COMMANDS: list[click.Command] = [analysis]
