"""The `sapa` command line."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import click

from bot.cli import analysis, broadcasts, conversations, loyalty, staff
from bot.cli.common import load_cli_settings as _settings
from bot.logs import configure_logging

log = logging.getLogger("sapa")
SHUTDOWN_GRACE_S = 5  # seconds `sapa serve` waits for open connections when told to stop


@click.group()
@click.option("--config", "config", envvar="SAPA_CONFIG", default=None, help="Path to config.yml.")
@click.option("--log-level", default="INFO", show_default=True)
@click.pass_context
def main(ctx: click.Context, config: str | None, log_level: str) -> None:
    """Sapa: omnichannel customer service that runs the CRM and VIP SOPs."""
    configure_logging(log_level.upper())
    ctx.obj = config


@main.command()
@click.option("--host", default=None, help="Listen address (default: server.host).")
@click.option("--port", default=None, type=int,
              help="Listen port (default: server.port). Also sets SAPA_PORT, which a config may follow.")
@click.option("--cpu", default=None, type=click.IntRange(min=0),
              help="Keep the server on this CPU core (default: server.cpu; unset, the OS places it). "
                   "One core per replica; see docs/deployment.md.")
@click.pass_obj
def serve(config: str | None, host: str | None, port: int | None, cpu: int | None) -> None:
    """Serve the web chat, APIs and webhooks; run the outbox and the scheduler."""
    import os

    import uvicorn

    from bot.app import build, create_app
    from bot.cpu_affinity import CpuUnavailable, pin_process
    from store.migrate import current_heads

    if port is not None:  # config.local-channels.yml's public URL says ${SAPA_PORT:-8000}: it follows --port
        os.environ["SAPA_PORT"] = str(port)
    settings = _settings(config)
    cpu = cpu if cpu is not None else settings.server.cpu
    if cpu is not None:
        # Before build(): the outbox, scheduler and request threads it starts inherit the core.
        try:
            pin_process(cpu)
        except CpuUnavailable as exc:
            click.echo(f"sapa serve: cannot keep the server on CPU {cpu}: {exc}", err=True)
            sys.exit(2)
    sapa = build(settings)
    with sapa.database.unit_of_work(read_only=True) as session:
        from sqlalchemy import text

        try:
            revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:
            revision = None
    if revision not in current_heads():
        click.echo("The database is not migrated to the current schema. Run `sapa db upgrade` first.", err=True)
        sys.exit(2)
    staff.announce_setup_link(sapa, host=host, port=port)  # a fresh install: the link that creates the first admin
    app = create_app(sapa)
    # A stop (SIGTERM from systemd, Docker, a deploy) waits at most SHUTDOWN_GRACE_S for open connections: a browser
    # holding an idle keep-alive connection kept `sapa serve` from stopping until it was killed.
    uvicorn.run(app, host=host or settings.server.host, port=port or settings.server.port, log_config=None,
                timeout_graceful_shutdown=SHUTDOWN_GRACE_S)


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_obj
def db_upgrade(config: str | None, revision: str) -> None:
    """Apply Alembic migrations up to REVISION."""
    from store.migrate import upgrade

    settings = _settings(config)
    if settings.database.url.startswith("sqlite:///"):
        Path(settings.database.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database.url, revision)
    click.echo(f"database at revision {revision}")


@main.group()
def nlu() -> None:
    """Natural-language understanding."""


@nlu.command("train")
@click.option("--out", default="var/nlu", show_default=True, help="Folder for the trained model.")
@click.pass_obj
def nlu_train(config: str | None, out: str) -> None:
    """Train the embedded classifier from nlu/data/*.yml and save it."""
    from nlu.embedded import save, train
    from nlu.training_data import DEFAULT_DATA_DIR, data_fingerprint, load_examples

    settings = _settings(config)
    data_dir = Path(settings.nlu.data_dir) if settings.nlu.data_dir else DEFAULT_DATA_DIR
    examples = load_examples(data_dir)
    fingerprint = data_fingerprint(data_dir)
    model = train(examples, fingerprint)
    path = Path(out) / f"embedded-{fingerprint}.pkl"
    save(model, path)
    intents = len({e.intent for e in examples})
    click.echo(f"trained on {model.examples} examples, {intents} intents, in {model.seconds:.2f}s -> {path}")


@nlu.command("evaluate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--backend", type=click.Choice(["embedded", "rasa"]), default=None,
              help="Backend to judge (default: nlu.backend from the config).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.pass_obj
def nlu_evaluate(config: str | None, file: Path, backend: str | None, as_json: bool) -> None:
    """Score a backend on labelled messages (JSONL: text, intent, entities, now)."""
    from nlu.backends import build_interpreter
    from nlu.evaluation import EvaluationFileError, evaluate, format_report, load_cases
    from nlu.rasa_server import is_up

    settings = _settings(config)
    nlu_config = settings.nlu.model_copy(update={"backend": backend}) if backend else settings.nlu
    try:
        cases = load_cases(file)
    except EvaluationFileError as exc:
        raise click.ClickException(str(exc)) from exc
    if nlu_config.backend == "rasa" and not is_up(nlu_config.rasa.url):
        # Evaluating "rasa" while the fallback answers every message would report the wrong backend.
        raise click.ClickException(f"no Rasa server answers at {nlu_config.rasa.url}; start one with "
                                   "`sapa nlu rasa serve` or set nlu.rasa.url")
    report = evaluate(build_interpreter(nlu_config, Path("var/nlu")), cases)
    click.echo(json.dumps(report.as_json(), ensure_ascii=False) if as_json else format_report(report))


@nlu.command("crossval")
@click.option("--folds", default=5, show_default=True, type=click.IntRange(2, 20))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.pass_obj
def nlu_crossval(config: str | None, folds: int, as_json: bool) -> None:
    """K-fold cross-validation of the embedded backend on the training data."""
    from nlu.crossval import crossval, format_crossval
    from nlu.training_data import DEFAULT_DATA_DIR, load_examples

    settings = _settings(config)
    data_dir = Path(settings.nlu.data_dir) if settings.nlu.data_dir else DEFAULT_DATA_DIR
    result = crossval(load_examples(data_dir), folds, settings.nlu.confidence_threshold)
    click.echo(json.dumps(result.as_json(), ensure_ascii=False) if as_json else format_crossval(result))


@nlu.group("rasa")
def nlu_rasa() -> None:
    """A Rasa Open Source 3.6 server for the rasa backend (its own Python 3.10 environment)."""


@nlu_rasa.command("setup")
def nlu_rasa_setup() -> None:
    """Create the Rasa environment (nlu/rasa/setup.sh): needs Python 3.10 and PyPI, takes minutes."""
    from nlu.rasa_server import RasaUnavailable, setup_venv

    try:
        click.echo(f"Rasa environment ready: {setup_venv()}")
    except RasaUnavailable as exc:
        raise click.ClickException(str(exc)) from exc


@nlu_rasa.command("train")
@click.option("--out", default="var/rasa", show_default=True, help="Folder for Rasa models.")
@click.option("--force", is_flag=True, help="Train even if a model for this data exists.")
@click.pass_obj
def nlu_rasa_train(config: str | None, out: str, force: bool) -> None:
    """Train Rasa on nlu/data/*.yml with the pipeline in nlu/rasa/config.yml."""
    from nlu.rasa_server import RasaUnavailable, setup_venv, train
    from nlu.training_data import DEFAULT_DATA_DIR

    settings = _settings(config)
    data_dir = Path(settings.nlu.data_dir) if settings.nlu.data_dir else DEFAULT_DATA_DIR
    try:
        model = train(setup_venv(), Path(out).resolve(), data_dir, force=force)
    except RasaUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    took = f"in {model.seconds:.1f}s" if model.seconds else "(already trained on this data)"
    click.echo(f"Rasa model {took}: {model.path}")


@nlu_rasa.command("serve")
@click.option("--out", default="var/rasa", show_default=True, help="Folder for Rasa models.")
@click.option("--port", default=None, type=int, help="Port on 127.0.0.1 (default: from nlu.rasa.url).")
@click.pass_obj
def nlu_rasa_serve(config: str | None, out: str, port: int | None) -> None:
    """Train if needed, then serve Rasa's HTTP API on 127.0.0.1 until interrupted."""
    from urllib.parse import urlsplit

    from nlu.rasa_server import RasaUnavailable, serve, setup_venv, train
    from nlu.training_data import DEFAULT_DATA_DIR

    settings = _settings(config)
    data_dir = Path(settings.nlu.data_dir) if settings.nlu.data_dir else DEFAULT_DATA_DIR
    port = port or urlsplit(settings.nlu.rasa.url).port or 5005
    try:
        venv = setup_venv()
        model = train(venv, Path(out).resolve(), data_dir)
        with serve(venv, model.path, port, Path(out).resolve() / "rasa-server.log") as server:
            click.echo(f"Rasa serving {model.path.name} on {server.url} (log: {out}/rasa-server.log); Ctrl-C stops it")
            while True:
                time.sleep(3600)
    except RasaUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        click.echo("Rasa stopped")


@main.group()
def customers() -> None:
    """Customer records."""


@customers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def customers_import(config: str | None, file: Path) -> None:
    """Import customers from a CSV with columns name, phone, email, language (optional: timezone, and
    marketing_consent yes/no with consent_source and consent_at, the evidence of when and where it was given)."""
    from bot.cli.customer_import import import_customers
    from bot.clock import SystemClock
    from store import create_database

    settings = _settings(config)
    database = create_database(settings.database.url)
    with file.open("rb") as handle:
        total = max(sum(1 for _ in handle) - 1, 0)
    started = time.perf_counter()
    try:
        with click.progressbar(length=total, label="Importing customers", show_pos=True, show_eta=True) as bar:
            report = import_customers(database, SystemClock(), file, settings.languages, bar.update,
                                      timezone=settings.tz)
    except ValueError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    elapsed = time.perf_counter() - started
    for line, problem in report.errors[:200]:
        click.echo(f"line {line}: {problem}", err=True)
    if len(report.errors) > 200:
        click.echo(f"... and {len(report.errors) - 200} more bad rows", err=True)
    click.echo(
        f"imported {report.good} rows in {elapsed:.1f}s: {report.created} new customers, "
        f"{report.updated} updated, {report.duplicates_in_file} duplicates merged, "
        f"{len(report.errors)} bad rows skipped"
    )
    if report.look_like_existing:
        who = "new customer looks" if report.look_like_existing == 1 else "new customers look"
        click.echo(f"{report.look_like_existing} {who} like customers we already had (same phone on a "
                   f"channel, same email or name); review them with `sapa customers duplicates`")
    for said in report.consent_summary():
        click.echo(said)


@customers.command("show")
@click.argument("key")
@click.pass_obj
def customers_show(config: str | None, key: str) -> None:
    """Show a customer by id, phone or email."""
    from datetime import UTC, datetime

    from bot.cli.conversations import staff_actor
    from bot.cli.customer_view import describe, find_for_cli
    from store import create_database
    from store.audit import record

    settings = _settings(config)
    database = create_database(settings.database.url)
    with database.unit_of_work() as session:
        found = find_for_cli(session, key)
        if not found:
            click.echo(f"no customer matches {key!r}", err=True)
            sys.exit(1)
        for customer in found:
            click.echo(describe(session, customer, settings))
            click.echo("")
            # Every view of a customer's personal data by staff is audited, with who looked.
            record(session, actor=staff_actor(), action="customer.viewed", subject_type="customer",
                   subject_id=customer.id, now=datetime.now(UTC), detail={"via": "sapa customers show"})


@customers.command("duplicates")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per pair, for scripts.")
@click.pass_obj
def customers_duplicates(config: str | None, as_json: bool) -> None:
    """Records that look like one person (CRM-1.4), with the Slack command that merges them."""
    from handlers.desk_commands import duplicate_reason
    from store import create_database
    from store.duplicates import find_duplicates

    settings = _settings(config)
    database = create_database(settings.database.url)
    with database.unit_of_work(read_only=True) as session:
        pairs = find_duplicates(session)
    if as_json:
        click.echo(json.dumps([p.as_dict() for p in pairs], ensure_ascii=False, indent=2))
        return
    for pair in pairs:
        keep, duplicate = pair.keep, pair.duplicate
        click.echo(f"#{keep.id} {keep.name or '-'} ({keep.source}) <-> #{duplicate.id} {duplicate.name or '-'} "
                   f"({duplicate.source}): {duplicate_reason(pair)} [{pair.confidence}]  {pair.merge_command}")
    click.echo(f"{len(pairs)} possible duplicate pairs; merge in Slack with the command shown, "
               f"or mark two people as different with /sapa duplicates dismiss A B", err=True)


@customers.command("export")
@click.argument("customer_id", type=int)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the JSON here instead of standard output.")
@click.pass_obj
def customers_export(config: str | None, customer_id: int, out: Path | None) -> None:
    """Everything held about one customer, as JSON (a data-protection access request)."""
    from store import create_database
    from store.audit import record
    from store.models import Customer
    from store.privacy import export_customer

    settings = _settings(config)
    database = create_database(settings.database.url)
    with database.unit_of_work() as session:
        if session.get(Customer, customer_id) is None:
            raise click.ClickException(f"no customer #{customer_id}")
        data = export_customer(session, customer_id)
        from datetime import UTC, datetime

        from bot.cli.conversations import staff_actor

        record(session, actor=staff_actor(), action="customer.exported", subject_type="customer",
               subject_id=customer_id, now=datetime.now(UTC))
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    if out is None:
        click.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"customer #{customer_id} exported to {out}", err=True)


@customers.command("erase")
@click.argument("customer_id", type=int)
@click.option("--reason", required=True, help="Why (e.g. the request's reference); kept in the audit log.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def customers_erase(config: str | None, customer_id: int, reason: str, yes: bool) -> None:
    """Erase a customer's personal data (statistics are kept); for requests that arrive outside the chat."""
    from datetime import UTC, datetime

    from store import create_database
    from store.models import Customer
    from store.privacy import erase_customer

    if not yes:
        click.confirm(f"Permanently erase the personal data of customer #{customer_id}?", abort=True)
    settings = _settings(config)
    database = create_database(settings.database.url)
    with database.unit_of_work() as session:
        if session.get(Customer, customer_id) is None:
            raise click.ClickException(f"no customer #{customer_id}")
        counts = erase_customer(session, customer_id, now=datetime.now(UTC), actor="cli", reason=reason)
    click.echo(f"customer #{customer_id} erased: {counts['messages']} messages, {counts['tickets']} tickets, "
               f"{counts['identities']} channel addresses")


@main.command("report")
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First day, YYYY-MM-DD (default: 29 days before --to).")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Last day, inclusive, YYYY-MM-DD (default: today in the company time zone).")
@click.option("--compare-previous", is_flag=True, help="Compare with the period of the same length just before.")
@click.option("--vip", is_flag=True, help="VIP customers only (VIP-5.2).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write to FILE.")
@click.pass_obj
def report(config: str | None, first: datetime | None, last: datetime | None, compare_previous: bool, vip: bool,
           fmt: str, out: Path | None) -> None:
    """Service report: response and resolution times, SLA compliance, CSAT, breakdowns and findings."""
    from bot.clock import SystemClock
    from bot.reports.management import build_report, local_period, previous_period, render_text, to_csv, to_json
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
            built = build_report(session, settings, start, end, vip_only=vip, now=now,
                                 compare_to=previous_period(start, end) if compare_previous else None)
    finally:
        database.dispose()
    text = {"text": render_text, "json": to_json, "csv": to_csv}[fmt](built)
    if out is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        click.echo(f"{built.title} for {first_day} to {last_day} written to {out}")


@main.group()
def transactions() -> None:
    """Customer transactions (the VIP rules count them)."""


@transactions.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def transactions_import(config: str | None, file: Path) -> None:
    """Import transactions from a CSV (customer_phone or customer_email or customer_id, external_id, amount,
    occurred_at), then apply the VIP rules to the customers in it."""
    from bot.clock import SystemClock
    from handlers.vip import import_transactions
    from store import create_database

    settings = _settings(config)
    database = create_database(settings.database.url)
    with file.open("rb") as handle:
        total = max(sum(1 for _ in handle) - 1, 0)
    try:
        with click.progressbar(length=total, label="Importing transactions", show_pos=True) as bar:
            report = import_transactions(database, settings, SystemClock(), file, bar.update)
    except ValueError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    for line, problem in report.errors[:200]:
        click.echo(f"line {line}: {problem}", err=True)
    if len(report.errors) > 200:
        click.echo(f"... and {len(report.errors) - 200} more bad rows", err=True)
    for change in [*report.gained, *report.lost]:
        click.echo(f"customer #{change.customer_id} {'is now a VIP' if change.gained else 'is no longer a VIP'} "
                   f"({change.tier}): {change.reason}")
    click.echo(
        f"imported {report.added} transactions ({report.new_customers} new customers), "
        f"{report.duplicates} duplicates skipped, {len(report.errors)} bad rows skipped; "
        f"VIP: {len(report.gained)} gained, {len(report.lost)} lost"
    )


@main.command("fake-providers")
@click.option("--port", default=8099, show_default=True, envvar="SAPA_FAKE_PORT", show_envvar=True,
              help="Port on 127.0.0.1 (the local configs follow SAPA_FAKE_PORT).")
def fake_providers(port: int) -> None:
    """Run the local fake Telegram, Twilio and Slack APIs (for trying channels without accounts)."""
    from bot.devtools.fake_providers import main as run_fakes

    sys.exit(run_fakes(["--port", str(port)]))


_SIMULATE_HELP = {"--url": "The running Sapa (default: http://127.0.0.1:<server.port>; the local configs follow "
                            "SAPA_PORT)."}


@main.group()
def simulate() -> None:
    """Play a customer (telegram, sms, whatsapp) or a Slack agent against a running Sapa, signed like the real one."""


def _channel_simulation(channel: str) -> None:
    @simulate.command(channel)
    @click.argument("text")
    @click.option("--from", "sender", default=None, help="Telegram user id or E.164 phone (default: a demo one).")
    @click.option("--name", default="Budi", show_default=True, help="Display name the provider would send.")
    @click.option("--url", "sapa_url", default=None, help=_SIMULATE_HELP["--url"])
    @click.option("--fake", "fake_url", default=None,
                  help="The running `sapa fake-providers` (default: where the config sends this channel's calls, "
                  "else http://127.0.0.1:8099).")
    @click.option("--wait", default=10.0, show_default=True, help="Seconds to wait for replies.")
    @click.pass_context
    def run_channel(ctx: click.Context, text: str, sender: str | None, name: str, sapa_url: str | None,
                    fake_url: str | None, wait: float) -> None:
        """Send TEXT as a signed message on this channel to a running Sapa and print the replies it sent."""
        import httpx

        from bot.devtools.simulate import default_fake_url, default_sapa_url, describe
        from bot.devtools.simulate import simulate as run

        settings = _settings(ctx.find_root().obj)
        sapa_url = sapa_url or default_sapa_url(settings)
        fake_url = fake_url or default_fake_url(settings, channel)
        sender = sender or ("700001" if channel == "telegram" else "+6281234567890")
        try:
            status, replies = run(settings, channel, text, sender=sender, name=name, sapa_url=sapa_url,
                                  fake_url=fake_url, wait_s=wait)
        except ValueError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
        except httpx.HTTPError as exc:
            click.echo(f"cannot reach Sapa ({sapa_url}) or the fake providers ({fake_url}): {exc}", err=True)
            sys.exit(1)
        click.echo(f"> {text}    [{channel}, Sapa answered HTTP {status}]")
        for reply in replies:
            click.echo(f"< {describe(reply)}")
        if not replies:
            click.echo("(no reply reached the fake provider)")


for _channel in ("telegram", "sms", "whatsapp"):
    _channel_simulation(_channel)


def _agent_simulation(config: str | None, key: str, agent: str | None, sapa_url: str | None, wait: float,
                      action: str, text: str | None) -> None:
    import httpx

    from bot.devtools.simulate import agent_id, agent_press, agent_reply, default_sapa_url, find_target

    settings = _settings(config)
    sapa_url = sapa_url or default_sapa_url(settings)
    try:
        user = agent_id(settings, agent)
        target = find_target(settings, key, wait_s=wait)
        if text is not None:
            status, happened = agent_reply(settings, target, text, agent=user, sapa_url=sapa_url, wait_s=wait)
            said = f'> {user} replied "{text}"'
        else:
            status, happened = agent_press(settings, target, action, agent=user, sapa_url=sapa_url, wait_s=wait)
            said = f"> {user} pressed {action.replace('_', ' ').title()}"
    except ValueError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    except httpx.HTTPError as exc:
        click.echo(f"cannot reach Sapa ({sapa_url}): {exc}", err=True)
        sys.exit(1)
    about = f"{target.ticket}, " if target.ticket else ""
    click.echo(f"{said} on the card of conversation {target.conversation_id} ({about}card ts {target.card_ts})"
               f"    [Slack request, Sapa answered HTTP {status}]")
    for line in happened.to_customer:
        click.echo(f"< to the customer: {line}")
    for line in happened.in_thread:
        click.echo(f"< in the card's thread: {line}")
    if status == 200 and not happened.to_customer and not happened.in_thread:
        click.echo("(nothing happened yet; is `sapa serve` using the same database?)")
    if happened.status:
        click.echo(f"conversation {target.conversation_id} is now {happened.status}")
    if status == 403:
        click.echo("Sapa refused the Slack signature: give `sapa serve` and `sapa simulate` the same "
                   "SLACK_SIGNING_SECRET", err=True)
    if status != 200:
        sys.exit(1)


_AGENT_HELP = {"--agent": "Slack user id of the agent (default: the first of slack.agents).",
               "--url": _SIMULATE_HELP["--url"], "--wait": "Seconds to wait for the card and for what follows."}


@simulate.command("agent-reply")
@click.argument("ticket_or_conversation")
@click.argument("text")
@click.option("--agent", default=None, help=_AGENT_HELP["--agent"])
@click.option("--url", "sapa_url", default=None, help=_AGENT_HELP["--url"])
@click.option("--wait", default=10.0, show_default=True, help=_AGENT_HELP["--wait"])
@click.pass_context
def simulate_agent_reply(ctx: click.Context, ticket_or_conversation: str, text: str, agent: str | None,
                         sapa_url: str | None, wait: float) -> None:
    """An agent writes TEXT in the Slack thread of a ticket's (TKT-000001) or conversation's (12) card."""
    _agent_simulation(ctx.find_root().obj, ticket_or_conversation, agent, sapa_url, wait, "reply", text)


@simulate.command("agent-resolve")
@click.argument("ticket_or_conversation")
@click.option("--agent", default=None, help=_AGENT_HELP["--agent"])
@click.option("--url", "sapa_url", default=None, help=_AGENT_HELP["--url"])
@click.option("--wait", default=10.0, show_default=True, help=_AGENT_HELP["--wait"])
@click.pass_context
def simulate_agent_resolve(ctx: click.Context, ticket_or_conversation: str, agent: str | None,
                           sapa_url: str | None, wait: float) -> None:
    """An agent presses Resolve on a ticket's (TKT-000001) or conversation's (12) card."""
    _agent_simulation(ctx.find_root().obj, ticket_or_conversation, agent, sapa_url, wait, "resolve", None)


@main.group()
def telegram() -> None:
    """Telegram set-up."""


@telegram.command("set-webhook")
@click.option("--url", default=None, help="Public webhook URL (default: server.public_base_url + /webhooks/telegram).")
@click.pass_obj
def telegram_set_webhook(config: str | None, url: str | None) -> None:
    """Register Sapa's webhook with Telegram, with the secret token from TELEGRAM_WEBHOOK_SECRET."""
    from channels.base import ChannelContext
    from channels.registry import build_channels

    settings = _settings(config)
    if not settings.channels.telegram.enabled:
        click.echo("channels.telegram.enabled is false in the config", err=True)
        sys.exit(2)
    base = settings.server.public_base_url
    url = url or (f"{base.rstrip('/')}/webhooks/telegram" if base else None)
    if url is None:
        click.echo("give --url or set server.public_base_url", err=True)
        sys.exit(2)
    from channels.base import RetryLater, Undeliverable

    channel = build_channels({"telegram": settings.channels.telegram}, ChannelContext(base))["telegram"]
    try:
        channel.set_webhook(url)  # type: ignore[attr-defined]
    except (RetryLater, Undeliverable) as exc:
        click.echo(f"Telegram refused the webhook: {exc.reason}", err=True)
        sys.exit(1)
    finally:
        channel.close()  # type: ignore[attr-defined]
    click.echo(f"Telegram will deliver updates to {url} (with the secret token)")


# CRM-4 command groups live in their own modules (they import only bot.cli.common, never this module).
for _command in (*analysis.COMMANDS, *broadcasts.COMMANDS, *conversations.COMMANDS, *loyalty.COMMANDS,
                 *staff.COMMANDS):
    main.add_command(_command)

if __name__ == "__main__":
    main()
