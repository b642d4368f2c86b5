"""`python -m bot.cli`: the `sapa` command without the console script."""

from bot.cli.main import main

main()
