"""`sapa broadcasts ...`: the command line for CRM-4 (broadcasts)."""

from __future__ import annotations

import click


@click.group()
def broadcasts() -> None:
    """broadcasts commands."""


COMMANDS: list[click.Command] = [broadcasts]
