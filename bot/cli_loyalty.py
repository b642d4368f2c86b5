"""`sapa loyalty ...`: the command line for CRM-4 (loyalty)."""

from __future__ import annotations

import click


@click.group()
def loyalty() -> None:
    """loyalty commands."""


COMMANDS: list[click.Command] = [loyalty]
