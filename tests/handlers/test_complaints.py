"""CRM-3.2 (a complaint's category and root cause, read from the message and confirmed by agents) and CRM-1.2 (the
profile agents see: contacts, preferences, purchase history), through the web chat and signed Slack commands.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.app import Sapa
from bot.cli import main
from store.models import Customer, Ticket, TicketEvent
from tests.support.slack import complained, desk_sapa, desk_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from desk_sapa(desk_settings(db_url, fakes), clock, interpreter, database)


def ticket_of(sapa: Sapa) -> Ticket:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Ticket)).scalar_one()


def test_crm_3_2_root_cause_is_read_from_the_complaint_and_confirmed_by_an_agent(customer, slack, sapa):
    complained(customer, slack, "pesanan saya belum sampai juga, telat seminggu, saya kecewa")
    ticket = ticket_of(sapa)
    assert (ticket.category, ticket.root_cause) == ("late_delivery", "courier_delay")

    answer = slack.command("U0RINA", "ticket TKT-000001 rootcause warehouse backlog")["text"]
    assert answer == "TKT-000001: root cause courier_delay → warehouse_backlog (by Rina)"
    assert slack.command("U0RINA", "ticket TKT-000001 category nonsense")["text"].startswith(
        "Unknown category `nonsense`; known: damaged_item, late_delivery")
    ticket = ticket_of(sapa)
    assert (ticket.category, ticket.root_cause) == ("late_delivery", "warehouse_backlog")
    with sapa.database.unit_of_work(read_only=True) as session:
        kinds = [(e.kind, e.detail.get("to")) for e in session.execute(
            select(TicketEvent).order_by(TicketEvent.id)).scalars()]
    assert kinds[0][0] == "opened" and ("root_cause_set", "warehouse_backlog") in kinds


def test_crm_3_2_a_complaint_with_no_known_words_has_no_category_yet(customer, slack, sapa):
    complained(customer, slack, "saya mau komplain, pelayanannya mengecewakan")
    assert (ticket_of(sapa).category, ticket_of(sapa).root_cause) == (None, None)
    assert slack.command("U0RINA", "ticket TKT-000001 category staff_conduct")["text"].endswith("(by Rina)")
    assert ticket_of(sapa).category == "staff_conduct"


def test_crm_1_2_agents_see_contacts_preferences_and_purchase_history(customer, slack, sapa, db_url, tmp_path):
    customer.say("halo")
    customer.say("Rina")
    customer.say("Setuju", payload="consent:data:yes")
    customer.say("Setuju", payload="consent:marketing:yes")
    customer.say("ganti email saya jadi rina.w@contoh.id")
    customer.say("iya")
    with sapa.database.unit_of_work(read_only=True) as session:
        rina = session.execute(select(Customer)).scalar_one()
    csv = tmp_path / "sales.csv"
    csv.write_text("customer_id,external_id,amount,occurred_at\n"
                   f"{rina.id},POS-1,Rp 1.500.000,2026-01-02\n{rina.id},POS-2,250000,2026-01-04\n")
    imported = CliRunner().invoke(main, ["--config", str(ROOT / "config.yml"), "transactions", "import", str(csv)],
                                  env={"DATABASE_URL": db_url})
    assert imported.exit_code == 0, imported.output
    profile = slack.command("U0RINA", f"customer #{rina.id}")["text"]
    assert f"*#{rina.id} Rina*" in profile and "email rina.w@contoh.id" in profile and "channels webchat" in profile
    assert "consent: data processing yes, marketing yes · purchases: 2, Rp 1.750.000 in total, last 2026-01-04" \
        in profile
