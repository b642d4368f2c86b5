"""`sapa segment ...` and `sapa broadcast ...`: CRM-4.1 saved segments and CRM-4.3 broadcasts from the shell.

The shell user is trusted like the other operator commands (actor "cli"); the work itself (selection, queueing)
is done by the running server's scheduler, so these commands only change rows and return at once.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
from sqlalchemy.orm import Session

from bot.cli.common import settings_and_session


def _run(config: str | None, work: Callable[[Session, Any, datetime], str]) -> None:
    from store.broadcasts import BroadcastError
    from store.segments import FilterError, SegmentError

    try:
        with settings_and_session(config) as (settings, session):
            text = work(session, settings, datetime.now(UTC))
    except (BroadcastError, FilterError, SegmentError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(text)


# --- segments -------------------------------------------------------------------------------------------------


@click.group()
def segment() -> None:
    """CRM-4.1: saved customer segments (filters), previewed with counts."""


@segment.command("create")
@click.argument("name")
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="e.g. segment=loyal,champions  channel=whatsapp  last_purchase_within_days=90 (repeatable)")
@click.option("--replace", is_flag=True, help="Update the segment if it exists.")
@click.pass_obj
def segment_create(config: str | None, name: str, filters: tuple[str, ...], replace: bool) -> None:
    """Save a segment NAME defined by filters; prints its preview."""
    from store import segments

    def work(session: Session, settings: Any, now: datetime) -> str:
        saved, created = segments.save(session, settings, name, segments.parse_pairs(filters), created_by="cli",
                                       now=now, replace=replace)
        if not created and not replace:
            raise segments.SegmentError(f"a segment named {name!r} already exists")
        shown = segments.preview(session, settings, saved.filters, now)
        return f"segment {saved.name}: {segments.describe_filters(saved.filters)}\n{segments.render_preview(shown)}"

    _run(config, work)


@segment.command("list")
@click.pass_obj
def segment_list(config: str | None) -> None:
    """Saved segments and their filters."""
    from store import segments

    def work(session: Session, settings: Any, now: datetime) -> str:
        found = segments.list_all(session)
        return "\n".join(f"{s.name}: {segments.describe_filters(s.filters)} (by {s.created_by})" for s in found) \
            or "no saved segments"

    _run(config, work)


@segment.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def segment_show(config: str | None, name: str, as_json: bool) -> None:
    """A segment's filters and preview: matching, eligible for marketing, reachable per channel, samples."""
    from store import segments

    def work(session: Session, settings: Any, now: datetime) -> str:
        found = segments.get(session, name)
        if found is None:
            raise segments.SegmentError(f"no segment named {name!r}")
        shown = segments.preview(session, settings, found.filters, now)
        if as_json:
            return json.dumps({"name": found.name, "filters": found.filters, **shown.as_dict()}, ensure_ascii=False)
        return f"segment {found.name}: {segments.describe_filters(found.filters)}\n{segments.render_preview(shown)}"

    _run(config, work)


@segment.command("delete")
@click.argument("name")
@click.pass_obj
def segment_delete(config: str | None, name: str) -> None:
    """Delete a saved segment (broadcasts keep the filters they copied)."""
    from store import segments

    def work(session: Session, settings: Any, now: datetime) -> str:
        segments.delete(session, name)
        return f"segment {name} deleted"

    _run(config, work)


# --- broadcasts -----------------------------------------------------------------------------------------------


@click.group()
def broadcast() -> None:
    """CRM-4.3: marketing broadcasts: create, preview, test, schedule, pause, resume, cancel, status."""


class _Messages(click.Command):
    """Accepts --message-XX TEXT for each configured language (id, en, ...)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        messages: dict[str, str] = {}
        rest: list[str] = []
        index = 0
        while index < len(args):
            arg = args[index]
            if arg.startswith("--message-"):
                key, sep, value = arg.partition("=")
                if not sep:
                    if index + 1 >= len(args):
                        raise click.UsageError(f"{arg} needs a text")
                    index += 1
                    value = args[index]
                messages[key.removeprefix("--message-")] = value
            else:
                rest.append(arg)
            index += 1
        ctx.meta["messages"] = messages
        return super().parse_args(ctx, rest)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """--help lists the message options too: they are parsed above, not declared as click options."""
        super().format_options(ctx, formatter)
        with formatter.section("Messages (one per language; --message-id is required)"):
            formatter.write_dl([
                ("--message-id TEXT", "The Indonesian text, a template: {{ name }}, {{ first_name }}, "
                                      "{{ company }}, {{ points }}, {{ tier }}."),
                ("--message-en TEXT", "The English text (customers whose language is en get it)."),
                ("--message-LANG TEXT", "The text for any other language in the config's languages."),
            ])


@broadcast.command("create", cls=_Messages)
@click.argument("name")
@click.option("--segment", "segment_name", default=None, help="A saved segment's name.")
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE", help="Inline filters instead of --segment.")
@click.option("--channels", required=True, help="Preference order, e.g. whatsapp,sms,telegram.")
@click.option("--at", default=None, help="When to send (ISO, local company time unless a zone is given).")
@click.pass_context
def broadcast_create(ctx: click.Context, name: str, segment_name: str | None, filters: tuple[str, ...],
                     channels: str, at: str | None) -> None:
    """Create a draft broadcast NAME to a segment (or filters) on the given channels, with a text per language.

    The channels must be enabled in the config (e.g. config.local-channels.yml): web chat cannot receive pushes.
    """
    from handlers import broadcasts
    from store import segments

    messages = dict(ctx.meta.get("messages", {}))

    def work(session: Session, settings: Any, now: datetime) -> str:
        made = broadcasts.create(session, settings, name=name, segment=segment_name,
                                 filters=segments.parse_pairs(filters), messages=messages, channels=channels,
                                 at=at, created_by="cli", now=now)
        return f"broadcast #{made.id} created (draft)\n" + broadcasts.render_preview(
            broadcasts.preview(session, settings, made.id, now))

    _run(ctx.obj, work)


def _simple(verb: str, help_text: str) -> click.Command:
    @click.command(verb, help=help_text)
    @click.argument("broadcast_id", type=int)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    def command(config: str | None, broadcast_id: int, as_json: bool) -> None:
        from handlers import broadcasts

        def work(session: Session, settings: Any, now: datetime) -> str:
            if verb == "preview":
                data = broadcasts.preview(session, settings, broadcast_id, now)
                return json.dumps(data, ensure_ascii=False) if as_json else broadcasts.render_preview(data)
            if verb == "status":
                data = broadcasts.status(session, settings, broadcast_id, now)
                return json.dumps(data, ensure_ascii=False, default=str) if as_json else broadcasts.render_status(data)
            operation = {"pause": broadcasts.pause, "resume": broadcasts.resume, "cancel": broadcasts.cancel}[verb]
            done = operation(session, settings, broadcast_id, now=now, actor="cli")
            return f"broadcast #{done.id} is now {done.status}"

        _run(config, work)

    return command


for _verb, _help in (("preview", "Recipients per channel, skipped by reason, sample text per language."),
                     ("status", "Progress and delivery statistics (CRM-4.4)."),
                     ("pause", "Stop feeding and park its unsent outbox rows."),
                     ("resume", "Continue a paused broadcast."),
                     ("cancel", "Withdraw everything not sent yet.")):
    broadcast.add_command(_simple(_verb, _help))


@broadcast.command("test")
@click.argument("broadcast_id", type=int)
@click.option("--to", "to", required=True, help="Your own number (SMS/WhatsApp) or Telegram chat id.")
@click.option("--channel", required=True, help="whatsapp, sms or telegram.")
@click.option("--language", default=None, help="The language version to send (default: yours, else the default).")
@click.pass_obj
def broadcast_test(config: str | None, broadcast_id: int, to: str, channel: str, language: str | None) -> None:
    """Send the broadcast now to your own address (not counted as a recipient)."""
    from handlers import broadcasts

    def work(session: Session, settings: Any, now: datetime) -> str:
        broadcasts.send_test(session, settings, broadcast_id, channel=channel, to=to, now=now, actor="cli",
                             language=language)
        return f"test of broadcast #{broadcast_id} queued to {channel}; the running server sends it"

    _run(config, work)


@broadcast.command("schedule")
@click.argument("broadcast_id", type=int)
@click.option("--at", default=None, help="ISO time (default: the time given at creation, else now).")
@click.pass_obj
def broadcast_schedule(config: str | None, broadcast_id: int, at: str | None) -> None:
    """Schedule a draft; the running server selects the recipients at that time and sends."""
    from handlers import broadcasts

    def work(session: Session, settings: Any, now: datetime) -> str:
        done = broadcasts.schedule(session, settings, broadcast_id, now=now, actor="cli", at=at)
        when = done.scheduled_at.astimezone(settings.tz).isoformat() if done.scheduled_at else "now"
        return f"broadcast #{done.id} scheduled for {when} ({done.status})"

    _run(config, work)


@broadcast.command("list")
@click.pass_obj
def broadcast_list(config: str | None) -> None:
    """The latest broadcasts."""
    from handlers import broadcasts

    def work(session: Session, settings: Any, now: datetime) -> str:
        return "\n".join(f"#{b.id} {b.name}: {b.status}" for b in broadcasts.list_broadcasts(session)) \
            or "no broadcasts"

    _run(config, work)


COMMANDS: list[click.Command] = [segment, broadcast]
