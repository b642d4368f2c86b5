"""What every `sapa` sub-command needs: the settings (a config error ends the command with exit 2) and a unit of work.

Its own module so the sub-command modules (analysis, broadcasts, conversations, loyalty) and the entry module
(main) import it, rather than the sub-commands importing back from the entry module that imports them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.orm import Session

from bot.config import ConfigError, Settings, load_settings
from bot.logs import add_secrets, secret_values


def load_cli_settings(config: str | None) -> Settings:
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    add_secrets(secret_values(settings))  # the log handler redacts every configured secret value literally
    return settings


@contextmanager
def settings_and_session(config: str | None) -> Iterator[tuple[Settings, Session]]:
    """The settings and one unit of work on their database (committed when the block ends), for a command."""
    from store import create_database

    settings = load_cli_settings(config)
    database = create_database(settings.database.url)
    try:
        with database.unit_of_work() as session:
            yield settings, session
    finally:
        database.dispose()
