"""The customer's own data (CRM-1.3, CRM-1.4, CRM-1.5): profile changes with confirmation, duplicate merge from
Slack, erasure on request (confirmed, executed, logged, statistics kept), and export of everything held.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from bot.app import Sapa
from bot.cli import main
from store.models import AuditEntry, ChannelIdentity, Customer, Message, OutboxItem
from store.privacy import ERASED
from tests.support.slack import desk_sapa, desk_settings
from tests.support.webchat import WebchatUser

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from desk_sapa(desk_settings(db_url, fakes), clock, interpreter, database)


def rina(customer: WebchatUser) -> None:
    customer.say("halo")
    customer.say("Rina")


def the_customer(sapa: Sapa) -> Customer:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Customer).where(Customer.merged_into_id.is_(None))).scalars().first()


def test_crm_1_5_erasure_is_confirmed_executed_and_logged_and_statistics_kept(customer, sapa):
    rina(customer)
    customer.say("ganti email saya jadi rina.w@contoh.id")
    customer.say("iya")
    replies = customer.say("tolong hapus semua data pribadi saya")
    assert replies == [
        "Anda meminta kami menghapus data pribadi Anda, Rina. Nama, nomor, email, dan isi percakapan Anda akan "
        "dihapus permanen dan tidak bisa dikembalikan; catatan statistik tanpa identitas tetap kami simpan. "
        "Lanjutkan?"]
    assert customer.buttons() == [{"title": "Ya", "payload": "erase:yes"}, {"title": "Tidak", "payload": "erase:no"}]
    with sapa.database.unit_of_work(read_only=True) as session:
        messages_before = session.execute(select(func.count()).select_from(Message)).scalar_one()

    assert customer.say("Ya", payload="erase:yes") == [
        "Data pribadi Anda telah kami hapus sesuai permintaan. Terima kasih telah menggunakan layanan "
        "PT Contoh Sejahtera."]
    with sapa.database.unit_of_work(read_only=True) as session:
        erased = session.execute(select(Customer)).scalar_one()
        identity = session.execute(select(ChannelIdentity)).scalar_one()
        inbound = session.execute(select(Message).where(Message.direction == "in")).scalars().all()
        audit = session.execute(select(AuditEntry).where(AuditEntry.action == "customer.erased")).scalar_one()
        messages_after = session.execute(select(func.count()).select_from(Message)).scalar_one()
    assert (erased.name, erased.email, erased.phone) == (None, None, None)
    assert identity.address == f"erased-{identity.id}"
    # The last message (the "Ya" that confirmed) was logged before the erasure ran, so it is erased too.
    assert {m.text for m in inbound} == {ERASED}
    assert {m.intent for m in inbound} >= {"greet", "delete_data"}  # statistics survive
    assert messages_after == messages_before + 2  # the "Ya" and the confirmation: nothing deleted, only emptied
    assert audit.detail["reason"] == "requested on webchat" and audit.detail["messages"] >= 6
    # The web chat session no longer leads to the erased customer: writing again starts afresh.
    customer.say("halo lagi")
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(Customer)).scalar_one() == 2


def test_crm_1_5_erasure_can_be_declined(customer, sapa):
    rina(customer)
    customer.say("hapus akun saya")
    assert customer.say("gak jadi deh") == ["Baik, data Anda tidak kami hapus."]
    assert the_customer(sapa).name == "Rina"


def test_crm_1_3_profile_change_needs_confirmation(customer, sapa):
    rina(customer)
    assert customer.say("ganti email saya jadi Rina.W@Contoh.id") == ["Ubah email Anda menjadi rina.w@contoh.id?"]
    assert the_customer(sapa).email is None  # nothing changes before the yes
    assert customer.say("Ya", payload="profile:yes") == ["Beres, email Anda sekarang rina.w@contoh.id."]
    assert customer.say("nomor hp saya sekarang 0812-3456-7890") == ["Ubah nomor telepon Anda menjadi +6281234567890?"]
    assert customer.say("tidak") == ["Baik, data Anda tidak kami ubah."]
    changed = the_customer(sapa)
    assert (changed.email, changed.phone) == ("rina.w@contoh.id", None)
    with sapa.database.unit_of_work(read_only=True) as session:
        audit = session.execute(select(AuditEntry).where(AuditEntry.action == "customer.update")).scalar_one()
    assert audit.detail == {"field": "email", "had_value": False, "channel": "webchat"}


def test_crm_1_4_duplicates_are_merged_from_slack_keeping_history(client, customer, slack, sapa):
    rina(customer)
    customer.say("pesanan saya sudah sampai mana ya?")
    other = WebchatUser(client, sapa)
    other.say("halo")
    other.say("Rina W")
    with sapa.database.unit_of_work(read_only=True) as session:
        first, second = session.execute(select(Customer.id).order_by(Customer.id)).scalars().all()
    answer = slack.command("U0RINA", f"merge #{second} #{first} same person, two browsers")["text"]
    assert answer.startswith(f"Merged #{second} into #{first} Rina:")
    with sapa.database.unit_of_work(read_only=True) as session:
        owners = set(session.execute(select(Message.customer_id)).scalars())
        merged = session.get_one(Customer, second)
        audit = session.execute(select(AuditEntry).where(AuditEntry.action == "customers.merge")).scalar_one()
    assert owners == {first} and merged.merged_into_id == first
    assert "same person, two browsers (by Rina)" in json.dumps(audit.detail)


def test_crm_1_5_export_lists_everything_held(customer, sapa, db_url, tmp_path):
    rina(customer)
    customer.say("ganti email saya jadi rina.w@contoh.id")
    customer.say("iya")
    out = tmp_path / "rina.json"
    customer_id = the_customer(sapa).id
    result = CliRunner().invoke(main, ["--config", str(ROOT / "config.yml"), "customers", "export", str(customer_id),
                                       "--out", str(out)], env={"DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["customer"]["email"] == "rina.w@contoh.id" and data["customer"]["name"] == "Rina"
    assert [c["channel"] for c in data["channels"]] == ["webchat"]
    texts = [m["text"] for c in data["conversations"] for m in c["messages"]]
    assert "ganti email saya jadi rina.w@contoh.id" in texts and "Beres, email Anda sekarang rina.w@contoh.id." in texts
    assert [a["action"] for a in data["audit"]] == ["customer.update"]
    missing = CliRunner().invoke(main, ["--config", str(ROOT / "config.yml"), "customers", "export", "999999"],
                                 env={"DATABASE_URL": db_url})
    assert missing.exit_code != 0 and "no customer #999999" in missing.output


def test_erasure_from_the_cli_withdraws_queued_messages(customer, sapa, db_url):
    rina(customer)
    customer_id = the_customer(sapa).id
    result = CliRunner().invoke(main, ["--config", str(ROOT / "config.yml"), "customers", "erase", str(customer_id),
                                       "--reason", "email request REQ-7", "--yes"], env={"DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    assert f"customer #{customer_id} erased" in result.output
    with sapa.database.unit_of_work(read_only=True) as session:
        rows = session.execute(select(OutboxItem)).scalars().all()
    assert rows and all(r.payload == {} and r.recipient == "erased" for r in rows)
    assert all(r.status != "pending" for r in rows)


def test_crm_1_5_erasure_over_telegram_still_confirms_to_the_person_who_asked(client, sapa, fakes, clock):
    from tests.support.providers import ProviderCustomer, drain

    person = ProviderCustomer(client, fakes, "telegram", "700077", name="Wayan")
    person.write("halo")
    person.write("Wayan")
    person.write("tolong hapus data pribadi saya")
    person.write("iya, hapus saja")
    drain(sapa, clock)
    assert person.texts()[-1] == ("Data pribadi Anda telah kami hapus sesuai permintaan. Terima kasih telah "
                                  "menggunakan layanan PT Contoh Sejahtera.")
    with sapa.database.unit_of_work(read_only=True) as session:
        identity = session.execute(select(ChannelIdentity)).scalar_one()
    assert identity.address == f"erased-{identity.id}"
