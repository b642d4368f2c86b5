"""Duplicate customers (CRM-1.4): one person on WhatsApp and Telegram is found, shown to agents in Slack with
the exact merge command, merged with every message and ticket kept; two different people can be dismissed;
an import says how many new rows look like customers we already had.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.app import Sapa
from bot.cli import main
from store.models import AuditEntry, Customer, DuplicateDismissal, Message, Ticket
from tests.support.providers import ProviderCustomer
from tests.support.slack import Slack, desk_sapa, desk_settings
from tests.support.webchat import WebchatUser

ROOT = Path(__file__).resolve().parents[2]
PHONE = "+6281298765432"


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from desk_sapa(desk_settings(db_url, fakes), clock, interpreter, database)


def live_customers(sapa: Sapa) -> list[Customer]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return list(session.execute(
            select(Customer).where(Customer.merged_into_id.is_(None)).order_by(Customer.id)).scalars())


def dewi_on_whatsapp(client, fakes, slack: Slack) -> ProviderCustomer:
    whatsapp = ProviderCustomer(client, fakes, "whatsapp", PHONE, name="Dewi")
    whatsapp.write("halo")
    whatsapp.write("Dewi")
    whatsapp.write("pesanan saya sudah sampai mana ya?")
    slack.settle()
    return whatsapp


def cli(db_url: str, *args: str):
    result = CliRunner().invoke(main, ["--config", str(ROOT / "config.yml"), *args], env={"DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    return result


def test_crm_1_4_agent_sees_duplicates_across_channels_and_merges_them(client, fakes, sapa, slack, db_url):
    whatsapp = dewi_on_whatsapp(client, fakes, slack)
    telegram = ProviderCustomer(client, fakes, "telegram", "700010", name="Dewi")
    telegram.write("halo")
    telegram.write("nomor hp saya sekarang 0812-9876-5432")
    telegram.write("iya")
    slack.settle()
    # The number belongs to the WhatsApp record: the Telegram customer is told an agent will check it.
    assert telegram.texts()[-1] == (
        "Nomor itu sudah terdaftar atas nama pelanggan lain. Petugas kami bisa membantu memeriksanya.")
    telegram.write("paket saya datang dalam keadaan rusak, saya kecewa sekali")
    slack.settle()
    kept, duplicate = (c.id for c in live_customers(sapa))
    with sapa.database.unit_of_work(read_only=True) as session:
        assert set(session.execute(select(Ticket.customer_id)).scalars()) == {duplicate}

    listing = slack.command("U0RINA", "duplicates")["text"]
    assert listing == (
        "*1 possible duplicate pair* (strong first):\n"
        f"• #{kept} Dewi (whatsapp) ↔ #{duplicate} (name not known) (telegram) — same phone {PHONE} · strong\n"
        f"    same person: `/sapa merge #{duplicate} #{kept}` · two people: `/sapa duplicates dismiss #{kept} "
        f"#{duplicate}`")
    profile = slack.command("U0RINA", f"customer #{duplicate}")["text"]
    assert (f"⚠️ possible duplicate of #{kept} Dewi (same phone) · `/sapa merge #{duplicate} #{kept}`"
            in profile)
    assert json.loads(cli(db_url, "customers", "duplicates", "--json").stdout)[0]["merge_command"] == (
        f"/sapa merge #{duplicate} #{kept}")

    answer = slack.command("U0RINA", f"merge #{duplicate} #{kept} same phone, Telegram and WhatsApp")["text"]
    assert answer.startswith(f"Merged #{duplicate} into #{kept} Dewi:")
    telegram.write("halo lagi")  # Telegram now reaches the kept record too
    whatsapp.write("terima kasih")
    slack.settle()
    with sapa.database.unit_of_work(read_only=True) as session:
        assert set(session.execute(select(Message.customer_id)).scalars()) == {kept}
        assert set(session.execute(select(Ticket.customer_id)).scalars()) == {kept}
        channels = set(session.execute(select(Message.channel).where(Message.direction == "in")).scalars())
    assert channels == {"whatsapp", "telegram"}
    assert [c.id for c in live_customers(sapa)] == [kept]
    assert slack.command("U0RINA", "duplicates")["text"] == "No possible duplicate customers. 🎉"
    assert "possible duplicate" not in slack.command("U0RINA", f"customer #{kept}")["text"]


def rina_with_email(client, sapa: Sapa, name: str) -> WebchatUser:
    person = WebchatUser(client, sapa)
    person.say("halo")
    person.say(name)
    person.say("ganti email saya jadi rina@contoh.id")
    assert person.say("iya") == ["Beres, email Anda sekarang rina@contoh.id."]
    return person


def test_crm_1_4_agent_dismisses_two_people_who_share_an_email(client, sapa, slack):
    rina_with_email(client, sapa, "Rina")
    rina_with_email(client, sapa, "Rina Wulandari")
    first, second = (c.id for c in live_customers(sapa))
    assert f"#{first} Rina (webchat) ↔ #{second} Rina Wulandari (webchat) — same email rina@contoh.id · strong" in (
        slack.command("U0SUPER", "duplicates")["text"])

    answer = slack.command("U0RINA", f"duplicates dismiss #{second} #{first}")["text"]
    assert answer == (f"Noted: #{first} and #{second} are different people; they will not be listed as "
                      "duplicates again.")
    assert slack.command("U0SUPER", f"duplicates dismiss #{first} #{second}")["text"] == (
        f"#{first} and #{second} were already marked as different people.")
    assert slack.command("U0RINA", "duplicates")["text"] == "No possible duplicate customers. 🎉"
    assert "possible duplicate" not in slack.command("U0RINA", f"customer #{first}")["text"]
    assert slack.command("U0NOBODY", f"duplicates dismiss #{first} #{second}")["text"].startswith(
        "You are not a registered Sapa agent.")
    with sapa.database.unit_of_work(read_only=True) as session:
        row = session.execute(select(DuplicateDismissal)).scalar_one()
        audit = session.execute(select(AuditEntry).where(
            AuditEntry.action == "customers.duplicate_dismissed")).scalar_one()
    assert (row.customer_a_id, row.customer_b_id, row.dismissed_by) == (first, second, "Rina")
    assert audit.actor.startswith("agent:") and audit.detail == {"other": second, "by": "Rina"}


def test_crm_1_4_import_reports_rows_that_look_like_existing_customers(client, fakes, sapa, slack, db_url, tmp_path):
    whatsapp = dewi_on_whatsapp(client, fakes, slack)
    whatsapp.write("nomor hp saya sekarang 0813-1111-2222")
    whatsapp.write("iya")  # her profile now has the new number; WhatsApp still knows her by the old one
    slack.settle()
    assert whatsapp.texts()[-1] == "Beres, nomor telepon Anda sekarang +6281311112222."
    path = tmp_path / "customers.csv"
    path.write_text("name,phone,email,language\n"
                    "Dewi Lestari,0812-9876-5432,,id\n"  # the old number, from an old list
                    "Made Wirawan,0817-7777-8888,,\n")
    result = cli(db_url, "customers", "import", str(path))
    assert "2 new customers, 0 updated" in result.stdout
    assert ("1 new customer looks like customers we already had (same phone on a channel, same email or name); "
            "review them with `sapa customers duplicates`") in result.stdout
    (pair,) = json.loads(cli(db_url, "customers", "duplicates", "--json").stdout)
    assert (pair["keep"]["name"], pair["duplicate"]["name"], pair["reason"], pair["confidence"]) == (
        "Dewi", "Dewi Lestari", "same phone", "strong")
    listing = cli(db_url, "customers", "duplicates").stdout
    assert listing.startswith(f"#{pair['keep']['id']} Dewi (whatsapp) <-> #{pair['duplicate']['id']} Dewi Lestari "
                              f"(import): same phone {PHONE} [strong]  /sapa merge #{pair['duplicate']['id']} "
                              f"#{pair['keep']['id']}")
