"""`sapa staff`: staff accounts of the web console from the shell, and the first admin's set-up link.

- `sapa staff add NAME EMAIL --role ROLE [--slack-user U…] [--password-stdin]` prints a one-time link where the new
  member of staff sets their own password (or takes the password from standard input, for scripts).
- `sapa staff list [--json]`, `sapa staff disable EMAIL`, `sapa staff reset-password EMAIL` (a new one-time link; the
  old password stops working and their browsers are signed out).

Errors: a wrong argument (unknown role, not an email, a weak password) exits 2; a duplicate or an unknown email
exits 1. Every change is in the audit log as `cli:<OS user>`. Links and passwords are printed, never logged.

`announce_setup_link` is what `sapa serve` calls on start: while no active admin has a password, it creates a
set-up link and prints it once, as Jupyter and Grafana print their first-run links.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import click

from bot.cli.common import settings_and_session
from bot.cli.conversations import staff_actor
from handlers.permissions import ROLES
from store import staff as staff_store
from store.audit import record

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bot.app import Sapa
    from bot.config import Settings
    from store.models import Agent


def base_url(settings: Settings, host: str | None = None, port: int | None = None) -> str:
    """Where staff open the console: server.public_base_url, else the address `sapa serve` listens on."""
    if settings.server.public_base_url:
        return settings.server.public_base_url.rstrip("/")
    host = host or settings.server.host
    if host in ("0.0.0.0", "::", ""):  # listening everywhere: this machine's own browser still reaches it here
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port or settings.server.port}"


def link(settings: Settings, page: str, token: str, **address: Any) -> str:
    return f"{base_url(settings, **address)}/console/{page}?{urlencode({'token': token})}"


def _now() -> datetime:
    return datetime.now(UTC)


def _member(session: Session, email: str) -> Agent:
    member = staff_store.find_by_email(session, email)
    if member is None:
        click.echo(f"no staff member has the email {staff_store.normalise_email(email)!r}; see `sapa staff list`",
                   err=True)
        sys.exit(1)
    return member


@click.group("staff")
def staff() -> None:
    """Staff accounts of the web console (/console)."""


@staff.command("add")
@click.argument("name")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What they may do (handlers/permissions.py).")
@click.option("--slack-user", "slack_user_id", default=None, metavar="U123",
              help="Their Slack user id, when they also work in the Slack desk.")
@click.option("--password-stdin", is_flag=True,
              help="Read their password from standard input instead of printing a link to set it.")
@click.pass_obj
def add(config: str | None, name: str, email: str, role: str, slack_user_id: str | None,
        password_stdin: bool) -> None:
    """Add a member of staff; prints a one-time link where they set their password."""
    from bot.console.auth import hash_password, password_problem

    password_hash = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        problem = password_problem(password, email)
        if problem is not None:
            click.echo({"password.too_short": "the password needs at least 10 characters",
                        "password.is_email": "the password must not be the email address"}[problem], err=True)
            sys.exit(2)
        password_hash = hash_password(password)
    now = _now()
    with settings_and_session(config) as (settings, session):
        try:
            member = staff_store.create_staff(session, name=name, email=email, role=role, roles=ROLES, now=now,
                                              slack_user_id=slack_user_id, password_hash=password_hash)
        except staff_store.StaffError as exc:
            click.echo(str(exc), err=True)
            sys.exit(1 if exc.code.startswith("duplicate") else 2)
        session.flush()
        record(session, actor=staff_actor(), action="staff.added", subject_type="staff", subject_id=member.id,
               now=now, detail={"role": role, "via": "sapa staff add"})
        hours = settings.console.reset_link_hours
        token = None if password_hash else staff_store.create_token(
            session, purpose="reset", staff_id=member.id, now=now, lifetime=timedelta(hours=hours))
        member_id, email = member.id, member.email or email
    click.echo(f"added staff #{member_id} {name} <{email}> as {role}")
    if token is None:
        click.echo(f"they sign in at {base_url(settings)}/console/sign-in")
    else:
        click.echo(f"send them this one-time link to set their password (works {hours} h, shown only now):")
        click.echo(link(settings, "reset", token))


@staff.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON list, for scripts.")
@click.pass_obj
def list_(config: str | None, as_json: bool) -> None:
    """Everyone with a staff account: role, Slack id, whether active, last seen."""
    with settings_and_session(config) as (settings, session):
        rows = [_row(settings, member) for member in staff_store.list_staff(session)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    headers = ["id", "name", "email", "role", "slack", "status", "last seen"]
    table = [[str(r["id"]), r["name"], r["email"] or "-", r["role"], r["slack_user_id"] or "-",
              r["status"], r["last_seen"] or "-"] for r in rows]
    widths = [max(len(line[i]) for line in [headers, *table]) for i in range(len(headers))]
    for line in [headers, *table]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    if not rows:
        click.echo("no staff yet: `sapa staff add NAME EMAIL --role admin`", err=True)


def _row(settings: Settings, member: Agent) -> dict[str, Any]:
    status = "active" if member.active else "disabled"
    if member.active and not member.password_hash:
        status = "active, no password"
    seen = member.last_seen_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M") if member.last_seen_at else None
    return {"id": member.id, "name": member.name, "email": member.email, "role": member.role,
            "slack_user_id": member.slack_user_id, "active": member.active,
            "has_password": member.password_hash is not None, "status": status, "last_seen": seen}


@staff.command("disable")
@click.argument("email")
@click.pass_obj
def disable(config: str | None, email: str) -> None:
    """Disable a member of staff: they are signed out at once and cannot sign in or act."""
    now = _now()
    with settings_and_session(config) as (_, session):
        member = _member(session, email)
        if not member.active:
            click.echo(f"staff #{member.id} {member.name} is already disabled")
            return
        ended = staff_store.disable_staff(session, member)
        staff_store.revoke_tokens(session, member.id, now=now)
        record(session, actor=staff_actor(), action="staff.disabled", subject_type="staff", subject_id=member.id,
               now=now, detail={"via": "sapa staff disable", "sessions_ended": ended})
        said = f"disabled staff #{member.id} {member.name}; {ended} signed-in browser(s) signed out"
    click.echo(said)


@staff.command("reset-password")
@click.argument("email")
@click.pass_obj
def reset_password(config: str | None, email: str) -> None:
    """Print a one-time link to set a new password; the old one stops working and their browsers are signed out."""
    now = _now()
    with settings_and_session(config) as (settings, session):
        member = _member(session, email)
        if not member.active:
            click.echo(f"staff #{member.id} {member.name} is disabled; a reset link would not work", err=True)
            sys.exit(1)
        hours = settings.console.reset_link_hours
        token = staff_store.reset_password(session, member, actor=staff_actor(), now=now,
                                           lifetime=timedelta(hours=hours), via="sapa staff reset-password")
        name = member.name
    click.echo(f"{name}'s old password no longer works and their browsers are signed out.")
    click.echo(f"send them this one-time link to set a new password (works {hours} h, shown only now):")
    click.echo(link(settings, "reset", token))


def announce_setup_link(sapa: Sapa, *, host: str | None, port: int | None) -> str | None:
    """On `sapa serve`: while no active admin can sign in, a new set-up link (valid console.setup_link_hours),
    printed once to standard error. Returns the link, or None when an admin exists.

    Printed, not logged: the log handler masks every `?token=` value (bot/logs.py), which is right for every other
    line and would make this one useless. Nothing else ever shows the token, and only its hash is stored."""
    settings = sapa.settings
    now = sapa.clock.now()
    hours = settings.console.setup_link_hours
    with sapa.database.unit_of_work() as session:
        if staff_store.admin_can_sign_in(session):
            return None
        token = staff_store.create_token(session, purpose="setup", staff_id=None, now=now,
                                         lifetime=timedelta(hours=hours))
        record(session, actor="sapa:serve", action="staff.setup_link_issued", subject_type="staff", subject_id=None,
               now=now, detail={"hours": hours})
    url = link(settings, "setup", token, host=host, port=port)
    click.echo(f"WARNING: no admin can sign in to the Sapa console yet. Create the first admin within {hours} h "
               f"at {url}", err=True)
    return url


COMMANDS: list[click.Command] = [staff]
