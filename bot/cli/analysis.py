"""`sapa analysis ...` (CRM-4.1 scores and segments) and `sapa programme report` (CRM-4.5)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import click

from bot.cli.common import load_cli_settings as _settings


@click.group()
def analysis() -> None:
    """Customer analysis (CRM-4.1): recency / frequency / monetary scores and segments."""


@analysis.command("scores")
@click.option("--recompute", is_flag=True, help="Recompute every customer's scores first (otherwise: as last "
              "computed by the scheduler).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.pass_obj
def analysis_scores(config: str | None, recompute: bool, as_json: bool) -> None:
    """Customers per segment (champions, loyal, potential, new, at_risk, ...)."""
    from bot.clock import SystemClock
    from store import create_database
    from store.scores import compute_scores, last_computed_at, segment_counts

    settings = _settings(config)
    database = create_database(settings.database.url)
    try:
        if recompute:
            began = time.perf_counter()
            with database.unit_of_work() as session:
                scored = compute_scores(session, settings, SystemClock().now())
            click.echo(f"scores recomputed for {scored} customers in {time.perf_counter() - began:.1f}s", err=True)
        with database.unit_of_work(read_only=True) as session:
            counts = segment_counts(session)
            computed_at = last_computed_at(session)
    finally:
        database.dispose()
    if as_json:
        click.echo(json.dumps({"computed_at": computed_at.isoformat() if computed_at else None,
                               "window_days": settings.analysis.window_days, "segments": counts}, indent=2))
        return
    if computed_at is None:
        click.echo("scores have not been computed yet; run: sapa analysis scores --recompute", err=True)
        return
    width = max(len(segment) for segment in counts)
    for segment, n in counts.items():
        click.echo(f"{segment:<{width}}  {n:>8}")
    click.echo(f"{sum(counts.values())} customers, scored from {settings.analysis.window_days} days of "
               f"transactions, computed {computed_at.astimezone(settings.tz):%Y-%m-%d %H:%M}")


@analysis.command("customer")
@click.argument("customer")
@click.pass_obj
def analysis_customer(config: str | None, customer: str) -> None:
    """One customer's scores and segment: CUSTOMER is an id, a phone, an email or a name."""
    from bot.cli.customer_view import find_for_cli
    from store import create_database
    from store.scores import score_of

    settings = _settings(config)
    database = create_database(settings.database.url)
    try:
        with database.unit_of_work(read_only=True) as session:
            found = find_for_cli(session, customer)
            scores = {c.id: score_of(session, c.id) for c in found}
    finally:
        database.dispose()
    if not found:
        raise click.ClickException(f"no customer matches {customer!r}")
    for c in found:
        score = scores[c.id]
        if score is None:
            click.echo(f"#{c.id} {c.name or '-'}: not scored yet (sapa analysis scores --recompute)")
            continue
        last = f"{score.last_purchase_at.astimezone(settings.tz):%Y-%m-%d}" if score.last_purchase_at else "-"
        click.echo(f"#{c.id} {c.name or '-'}: {score.segment} (R{score.recency} F{score.frequency} "
                   f"M{score.monetary}); {score.purchases} purchases, Rp {score.spent:,} spent, last purchase "
                   f"{last}, {score.interactions} messages in the window")


@click.group()
def programme() -> None:
    """The loyalty programme's evaluation (CRM-4.5)."""


@programme.command("report")
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First day, YYYY-MM-DD (default: 29 days before --to).")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Last day, inclusive, YYYY-MM-DD (default: today in the company time zone).")
@click.option("--compare-previous", is_flag=True, help="Compare with the period of the same length just before.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write to FILE.")
@click.pass_obj
def programme_report(config: str | None, first: datetime | None, last: datetime | None, compare_previous: bool,
                     fmt: str, out: Path | None) -> None:
    """Members per tier, points earned / redeemed / expired, redemption rate, active customers, segments and
    broadcast performance, with findings; optionally against the period before."""
    from bot.clock import SystemClock
    from bot.reports.management import local_period, previous_period
    from bot.reports.programme import build_programme_report, render_text, to_csv, to_json
    from store import create_database

    settings = _settings(config)
    now = SystemClock().now()
    last_day = last.date() if last else now.astimezone(settings.tz).date()
    first_day = first.date() if first else last_day - timedelta(days=29)
    if first_day > last_day:
        raise click.BadParameter(f"--from {first_day} is after --to {last_day}", param_hint="--from")
    start, end = local_period(settings, first_day, last_day)
    database = create_database(settings.database.url)
    try:
        with database.unit_of_work(read_only=True) as session:
            built = build_programme_report(session, settings, start, end, now=now,
                                           compare_to=previous_period(start, end) if compare_previous else None)
    finally:
        database.dispose()
    text = {"text": render_text, "json": to_json, "csv": to_csv}[fmt](built)
    if out is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        click.echo(f"{built.title} for {first_day} to {last_day} written to {out}")


COMMANDS: list[click.Command] = [analysis, programme]
