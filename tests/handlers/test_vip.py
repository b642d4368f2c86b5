"""VIP identification and VIP greetings (VIP-1.1, VIP-1.2, VIP-1.3, VIP-2.1, VIP-2.3), end to end.

Transactions come in through `sapa transactions import` (the real CLI on the test database) and the
authenticated HTTP API; the customer writes through the web chat; agents and account managers are a
Slack workspace on the fake provider.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select

from bot.app import Sapa, build
from bot.cli import main
from bot.config import Settings, settings_from_mapping
from bot.devtools.fake_providers import FakeProviders
from handlers import vip
from store.models import Agent, AuditEntry, Customer, Task, Transaction
from tests.support.providers import channel_config
from tests.support.slack import AGENTS, SECRETS, Slack, conversation_of
from tests.support.webchat import WebchatUser

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-api-token-0123456789"
WIB = ZoneInfo("Asia/Jakarta")


@pytest.fixture
def api_token() -> str | None:
    return TOKEN  # a test parametrizes this to None: no SAPA_API_TOKEN in the environment


def vip_settings(db_url: str, fakes: FakeProviders, api_token: str | None) -> Settings:
    """config.yml with the Slack desk on the fake provider and SAPA_API_TOKEN in the environment."""
    raw = yaml.safe_load((ROOT / "config.yml").read_text())
    raw["server"]["public_base_url"] = "https://sapa.example.test"
    raw["channels"].update(channel_config(fakes))
    raw["slack"] = {"enabled": True, "api_base_url": fakes.slack_base_url, "queue_channel": "C0QUEUE",
                    "vip_channel": "C0VIP", "escalation_channel": "C0ESC", "agents": AGENTS}
    raw["database"]["url"] = db_url
    environ = {**SECRETS, **({"SAPA_API_TOKEN": api_token} if api_token else {})}
    return settings_from_mapping(raw, environ, "test")


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database, api_token) -> Iterator[Sapa]:
    sapa = build(vip_settings(db_url, fakes, api_token), clock=clock, interpreter=interpreter, database=database,
                 model_cache=None)
    yield sapa
    sapa.stop_background()


def post(client, body: Any, token: str | None = TOKEN) -> Any:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return client.post("/api/transactions", content=json.dumps(body), headers={
        **headers, "content-type": "application/json"})


def budi(customer: WebchatUser, sapa: Sapa, *, account_manager: bool = True) -> int:
    """Budi introduces himself on the web chat; Andi is his account manager."""
    customer.say("halo")
    customer.say("Budi")
    with sapa.database.unit_of_work() as session:
        row = session.execute(select(Customer).where(Customer.name == "Budi")).scalar_one()
        if account_manager:
            row.account_manager_id = session.execute(
                select(Agent.id).where(Agent.slack_user_id == "U0AMGR")).scalar_one()
        return row.id


def bought(client, customer_id: int, external_id: str, amount: Any, occurred_at: datetime) -> dict[str, Any]:
    response = post(client, {"customer_id": customer_id, "external_id": external_id, "amount": amount,
                             "occurred_at": occurred_at.isoformat()})
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def customer_row(sapa: Sapa, customer_id: int) -> Customer:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.get_one(Customer, customer_id)


def vip_posts(slack: Slack) -> list[str]:
    return [p["text"] for p in slack.posts("C0VIP") if not p.get("blocks") and not p.get("thread_ts")]


# --- VIP-1.1: transactions in, the rules decide --------------------------------------------------------------


def test_vip_1_1_rules_make_a_customer_vip_from_imported_transactions(db_url, database, tmp_path):
    """VIP-1.1: the CSV import stores each external id once and applies the rules (value, or relationship + value)."""
    today = datetime.now(WIB).date()

    def day(days_ago: int) -> str:
        return (today - timedelta(days=days_ago)).isoformat()

    path = tmp_path / "transactions.csv"
    path.write_text(
        "customer_phone,customer_email,customer_id,external_id,amount,occurred_at\n"
        f"0812-3456-7890,,,INV-1,Rp 60.000.000,{day(10)}\n"          # Budi: Rp 105.000.000 this year -> gold
        f"0812-3456-7890,,,INV-2,45000000,{day(20)}\n"
        f",siti@example.com,,INV-3,\"Rp 30.000.000,00\",{day(5)}\n"  # Siti: 800 days a customer, Rp 30 juta -> loyal
        f",siti@example.com,,INV-4,Rp 2.000.000,{day(800)}\n"
        f"0813-1111-2222,,,INV-5,1500000,{day(3)}\n"                   # Ani: Rp 1.500.000 -> regular
        f"0812-3456-7890,,,INV-1,Rp 60.000.000,{day(10)}\n"          # the same invoice again: skipped
        f"0812-3456-7890,,,INV-6,lima juta,{day(1)}\n"
        f"0812-3456-7890,,,INV-7,100000,kemarin\n"
        f",,,INV-8,100000,{day(1)}\n"
        f",,999,INV-9,100000,{day(1)}\n"
    )

    def run() -> Any:
        return CliRunner().invoke(main, ["--config", str(ROOT / "config.yml"), "transactions", "import", str(path)],
                                  env={"DATABASE_URL": db_url})

    result = run()
    assert result.exit_code == 0, result.output
    assert "line 8: amount 'lima juta' is not a number of rupiah (e.g. 1500000 or Rp 1.500.000)" in result.output
    assert ("line 9: occurred_at 'kemarin' is not an ISO date such as 2026-01-05 or 2026-01-05T14:30:00+07:00"
            in result.output)
    assert "line 10: a transaction needs customer_phone, customer_email or customer_id" in result.output
    assert "line 11: no customer #999" in result.output
    assert ("imported 5 transactions (3 new customers), 1 duplicates skipped, 4 bad rows skipped; "
            "VIP: 2 gained, 0 lost") in result.output
    with database.unit_of_work(read_only=True) as session:
        people = {c.phone or c.email: c for c in session.execute(select(Customer)).scalars()}
        stored = session.execute(select(Transaction.external_id).order_by(Transaction.external_id)).scalars().all()
        gained = session.execute(select(AuditEntry).where(AuditEntry.action == "vip.gained")).scalars().all()
    assert stored == ["INV-1", "INV-2", "INV-3", "INV-4", "INV-5"]
    assert (people["+6281234567890"].is_vip, people["+6281234567890"].vip_tier) == (True, "gold")
    assert people["+6281234567890"].vip_reason == (
        "Rp 105.000.000 in the last 365 days (at least Rp 100.000.000)")
    assert (people["siti@example.com"].is_vip, people["siti@example.com"].vip_tier) == (True, "loyal")
    assert people["+6281311112222"].is_vip is False
    assert len(gained) == 2

    again = run()  # the same file twice: nothing doubles, nobody changes
    assert again.exit_code == 0, again.output
    assert "imported 0 transactions (0 new customers), 6 duplicates skipped, 4 bad rows skipped; " \
           "VIP: 0 gained, 0 lost" in again.output


def test_vip_1_1_api_transaction_makes_vip(customer, client, slack, sapa, clock):
    """VIP-1.1 / VIP-1.3: a purchase posted to the API makes Budi a VIP; his account manager is told in Slack."""
    budi_id = budi(customer, sapa)
    first = bought(client, budi_id, "ERP-1001", 40_000_000, clock.now() - timedelta(days=30))
    assert first["duplicate"] is False and first["vip_change"] is None and first["vip"] == {
        "is_vip": False, "tier": None}
    second = bought(client, budi_id, "ERP-1002", "Rp 65.000.000", clock.now() - timedelta(days=1))
    assert second["vip_change"] == {"gained": True, "tier": "gold",
                                    "reason": "Rp 105.000.000 in the last 365 days (at least Rp 100.000.000)"}
    slack.settle()
    assert vip_posts(slack) == [f"⭐ Budi (#{budi_id}) is now a VIP (gold): Rp 105.000.000 in the last 365 days "
                                "(at least Rp 100.000.000). <@U0AMGR>"]
    row = customer_row(sapa, budi_id)
    assert (row.is_vip, row.vip_tier, row.vip_since) == (True, "gold", clock.now())


# --- the API's door: token, body, idempotency ----------------------------------------------------------------


def test_vip_1_1_api_refuses_a_missing_or_wrong_token_and_stores_nothing(client, sapa, clock):
    body = {"customer_phone": "0812-3456-7890", "external_id": "ERP-1", "amount": 150_000_000,
            "occurred_at": "2026-01-02"}
    for token in (None, "wrong-token", TOKEN[:-1]):
        response = post(client, body, token)
        assert response.status_code == 401, response.text
        assert response.json() == {"error": "missing or wrong bearer token"}
        assert response.headers["www-authenticate"] == "Bearer"
    basic = client.post("/api/transactions", json=body, headers={"authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(Transaction)).first() is None
        assert session.execute(select(Customer)).first() is None


@pytest.mark.parametrize("api_token", [None])
def test_vip_1_1_api_is_off_without_a_configured_token(client, sapa):
    response = post(client, {"customer_id": 1, "external_id": "ERP-1", "amount": 1, "occurred_at": "2026-01-02"})
    assert response.status_code == 503
    assert response.json() == {
        "error": "the transactions API is off: set the SAPA_API_TOKEN environment variable and restart"}
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(Transaction)).first() is None


def test_vip_1_1_api_rejects_malformed_bodies(client, sapa):
    def error(body: Any) -> str:
        response = client.post("/api/transactions", content=body if isinstance(body, str) else json.dumps(body),
                               headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"})
        assert response.status_code == 422, response.text
        return str(response.json()["error"])

    assert error("{not json") == "body is not valid JSON"
    assert error([1, 2]) == "body must be a JSON object"
    assert error({"amount": "banyak"}) == (
        "a transaction needs customer_phone, customer_email or customer_id; external_id is missing; "
        "amount 'banyak' is not a number of rupiah (e.g. 1500000 or Rp 1.500.000); "
        "occurred_at None is not an ISO date such as 2026-01-05 or 2026-01-05T14:30:00+07:00")
    assert error({"customer_phone": "12", "external_id": "X", "amount": -5, "occurred_at": "2026-01-02"}) == (
        "customer_phone '12' is not a valid phone number; amount -5 must be more than zero")
    assert error({"customer_id": 42, "external_id": "X", "amount": 5, "occurred_at": "2026-01-02"}) == (
        "no customer #42")
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(Transaction)).first() is None


def test_vip_1_1_api_is_idempotent_on_external_id(client, slack, sapa, clock):
    body = {"customer_phone": "+62 812 3456 7890", "external_id": "ERP-7", "amount": "Rp 150.000.000",
            "occurred_at": "2026-01-02T14:30:00"}
    first = post(client, body)
    assert first.status_code == 201, first.text
    again = post(client, {**body, "amount": 999})  # a retry (even a garbled one) changes nothing
    assert again.status_code == 200
    assert again.json()["duplicate"] is True and again.json()["transaction_id"] == first.json()["transaction_id"]
    assert again.json()["vip_change"] is None
    slack.settle()
    with sapa.database.unit_of_work(read_only=True) as session:
        rows = session.execute(select(Transaction)).scalars().all()
        person = session.execute(select(Customer)).scalar_one()
    assert [(r.amount, r.occurred_at, r.source) for r in rows] == [
        (150_000_000, datetime(2026, 1, 2, 7, 30, tzinfo=UTC), "api")]
    assert (person.phone, person.is_vip) == ("+6281234567890", True)
    # No account manager yet: every account manager hears of the new VIP, once.
    assert vip_posts(slack) == [f"⭐ +6281234567890 (#{person.id}) is now a VIP (gold): Rp 150.000.000 in the last "
                                "365 days (at least Rp 100.000.000). <@U0AMGR>"]


# --- VIP-1.2: recognised at a glance ------------------------------------------------------------------------


def test_vip_1_2_vip_flag_shown_on_agent_cards(customer, client, slack, sapa, clock):
    budi_id = budi(customer, sapa)
    bought(client, budi_id, "ERP-1", 120_000_000, clock.now() - timedelta(days=2))
    customer.say("saya mau bicara dengan petugas")
    slack.settle()
    card = slack.card("C0VIP")  # the VIP channel, not the queue
    assert card["text"] == "⭐ VIP Budi needs an agent (webchat)"  # the notification
    blocks = json.dumps(card["blocks"], ensure_ascii=False)
    assert "⭐ VIP gold · Customer needs an agent" in blocks and "<@U0AMGR>" in blocks
    assert not [p for p in slack.posts("C0QUEUE") if p.get("blocks")]
    profile = slack.command("U0RINA", f"customer #{budi_id}")["text"]
    assert f"*#{budi_id} Budi* — ⭐ VIP (gold)" in profile


# --- VIP-1.3: checked again every day -------------------------------------------------------------------------


def test_vip_1_3_periodic_reevaluation_demotes_and_reports(customer, client, slack, sapa, clock):
    budi_id = budi(customer, sapa)
    bought(client, budi_id, "ERP-1", 120_000_000, clock.now() - timedelta(days=1))
    siti = WebchatUser(client, sapa)
    siti.say("halo")
    siti.say("Siti")
    with sapa.database.unit_of_work(read_only=True) as session:
        siti_id = session.execute(select(Customer.id).where(Customer.name == "Siti")).scalar_one()
    assert "is now a VIP (strategic)" in slack.command("U0AMGR", f"vip add #{siti_id} key account")["text"]
    slack.settle()

    sapa.scheduler.schedule_periodic(vip.REEVALUATE)  # today: nothing has changed
    slack.settle()
    assert customer_row(sapa, budi_id).is_vip is True

    clock.advance(timedelta(days=365))  # Budi's purchase is now more than a year old
    sapa.scheduler.schedule_periodic(vip.REEVALUATE)
    sapa.scheduler.schedule_periodic(vip.REEVALUATE)  # a second replica, the same day: one task
    slack.settle()
    assert customer_row(sapa, budi_id).is_vip is False and customer_row(sapa, budi_id).vip_tier is None
    strategic = customer_row(sapa, siti_id)
    assert (strategic.is_vip, strategic.vip_tier) == (True, "strategic")  # never demoted by the rules
    assert vip_posts(slack)[-1] == (
        f"Budi (#{budi_id}) is no longer a VIP (was gold): Rp 0 in the last 365 days and customer for 366 days "
        "(needs Rp 100.000.000, or 730 days and Rp 25.000.000). <@U0AMGR>")
    assert len([p for p in vip_posts(slack) if "no longer a VIP" in p]) == 1
    with sapa.database.unit_of_work(read_only=True) as session:
        tasks = session.execute(select(Task).where(Task.kind == vip.REEVALUATE)).scalars().all()
        lost = session.execute(select(AuditEntry).where(AuditEntry.action == "vip.lost")).scalar_one()
    assert len(tasks) == 2 and {t.status for t in tasks} == {"done"}  # one per day
    assert lost.subject_id == str(budi_id) and lost.detail["tier"] == "gold"


# --- VIP-2.1 / VIP-2.3: greeted by name, the account manager alerted -----------------------------------------


def test_vip_2_1_vip_greeted_by_name_with_vip_template(customer, client, slack, sapa, clock):
    budi_id = budi(customer, sapa)
    assert customer.say("halo") == ["Halo Budi! Selamat datang kembali di PT Contoh Sejahtera. Ada yang bisa kami "
                                    "bantu hari ini?"]  # not a VIP yet: the everyday greeting
    bought(client, budi_id, "ERP-1", 120_000_000, clock.now() - timedelta(days=2))
    assert customer.say("halo") == [
        "Selamat datang kembali, Budi. Terima kasih atas kepercayaan Anda sebagai pelanggan prioritas "
        "PT Contoh Sejahtera. Ada yang bisa kami bantu hari ini?"]

    english = WebchatUser(client, sapa, language="en")
    english.say("hello")
    english.say("John")
    with sapa.database.unit_of_work(read_only=True) as session:
        john_id = session.execute(select(Customer.id).where(Customer.name == "John")).scalar_one()
    bought(client, john_id, "ERP-2", 100_000_000, clock.now() - timedelta(days=2))
    assert english.say("hello") == [
        "Welcome back, John. Thank you for your trust as a priority customer of PT Contoh Sejahtera. "
        "How can we help you today?"]


def test_vip_2_3_account_manager_alerted_and_open_requests_mentioned(customer, client, slack, sapa, clock):
    budi_id = budi(customer, sapa)
    bought(client, budi_id, "ERP-1", 120_000_000, clock.now() - timedelta(days=2))
    customer.say("kulkas saya tidak dingin sama sekali, saya kecewa")
    slack.settle()
    conversation = conversation_of(sapa)
    assert slack.press("U0RINA", "claim", conversation.id, conversation.desk_ts) == 200
    assert slack.press("U0RINA", "back_to_bot", conversation.id, conversation.desk_ts) == 200
    slack.settle()
    before = len(vip_posts(slack))

    clock.advance(timedelta(minutes=sapa.settings.conversation.idle_close_minutes + 1))  # a new conversation
    assert customer.say("halo") == [
        "Selamat datang kembali, Budi. Terima kasih atas kepercayaan Anda sebagai pelanggan prioritas "
        "PT Contoh Sejahtera. Tiket TKT-000001 sedang kami proses. Ada yang bisa kami bantu hari ini?"]
    slack.settle()
    assert vip_posts(slack)[before:] == [
        "⭐ VIP Budi (gold) is writing on webchat: “halo” · open tickets TKT-000001 <@U0AMGR>"]

    customer.say("halo")  # the same conversation: the account manager already knows
    slack.settle()
    assert len(vip_posts(slack)) == before + 1
