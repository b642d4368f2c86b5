"""The `sapa` command line: `main` (the entry point, bot/cli/main.py) and its sub-command modules."""

from bot.cli.main import main

__all__ = ["main"]
