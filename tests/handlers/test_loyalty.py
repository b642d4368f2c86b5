"""The loyalty programme (CRM-4.2), end to end: purchases posted to the real transactions API earn points once;
customers ask for their balance and redeem rewards over the web chat (id and en), WhatsApp and SMS (numbered
options, reward names, "ya"); points expire when the clock passes their date; tiers rise; agents look, adjust
and redeem with `/sapa` in Slack; `sapa loyalty ...` on the command line. Every test ends with the ledger
summing to the balance.

ManualClock starts Monday 2026-01-05 09:00 WIB (02:00 UTC).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import func, select

from bot.app import Sapa, build
from bot.cli import main
from bot.config import Settings, settings_from_mapping
from bot.devtools.fake_providers import FakeProviders
from handlers import loyalty as loyalty_handlers
from store.models import AuditEntry, Customer, LoyaltyAccount, LoyaltyEntry, Redemption, Reward
from tests.support.providers import ProviderCustomer, channel_config
from tests.support.slack import AGENTS, SECRETS
from tests.support.webchat import WebchatUser

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-api-token-loyalty-0123"
VOUCHER = re.compile(r"[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}")
MARKETING = {"slack_user_id": "U0MKT", "name": "Maya", "role": "marketing"}


def loyalty_settings(db_url: str, fakes: FakeProviders) -> Settings:
    """config.yml with every channel on the fake providers, the Slack desk, and SAPA_API_TOKEN set."""
    raw = yaml.safe_load((ROOT / "config.yml").read_text())
    raw["server"]["public_base_url"] = "https://sapa.example.test"
    raw["channels"].update(channel_config(fakes))
    raw["slack"] = {"enabled": True, "api_base_url": fakes.slack_base_url, "queue_channel": "C0QUEUE",
                    "vip_channel": "C0VIP", "escalation_channel": "C0ESC", "agents": [*AGENTS, MARKETING]}
    raw["database"]["url"] = db_url
    return settings_from_mapping(raw, {**SECRETS, "SAPA_API_TOKEN": TOKEN}, "test")


@pytest.fixture
def enabled() -> bool:
    return True  # a test parametrizes this to False: the programme switched off


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database, enabled) -> Iterator[Sapa]:
    settings = loyalty_settings(db_url, fakes)
    settings = settings.model_copy(update={"loyalty": settings.loyalty.model_copy(update={"enabled": enabled})})
    sapa = build(settings, clock=clock, interpreter=interpreter, database=database, model_cache=None)
    yield sapa
    sapa.stop_background()


# --- helpers ---------------------------------------------------------------------------------------------------


def bought(client: Any, external_id: str, amount: Any, occurred_at: datetime | str, **who: Any) -> dict[str, Any]:
    body = {"external_id": external_id, "amount": amount,
            "occurred_at": occurred_at if isinstance(occurred_at, str) else occurred_at.isoformat(), **who}
    response = client.post("/api/transactions", content=json.dumps(body),
                           headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"})
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def webchat_customer(client: Any, sapa: Sapa, name: str, language: str = "id") -> tuple[WebchatUser, int]:
    user = WebchatUser(client, sapa, language=language)
    user.say("halo" if language == "id" else "hello")
    user.say(name)
    with sapa.database.unit_of_work(read_only=True) as session:
        customer_id = session.execute(select(Customer.id).where(Customer.name == name)).scalar_one()
    return user, int(customer_id)


def account(sapa: Sapa, customer_id: int) -> LoyaltyAccount:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.get_one(LoyaltyAccount, customer_id)


def entries(sapa: Sapa, customer_id: int) -> list[tuple[str, int, int]]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return [(e.kind, e.points, e.balance_after) for e in session.execute(
            select(LoyaltyEntry).where(LoyaltyEntry.customer_id == customer_id).order_by(LoyaltyEntry.id)).scalars()]


def assert_ledger_matches_balances(sapa: Sapa) -> None:
    """The append-only ledger sums to every balance; the unspent points of positive rows too; none negative."""
    with sapa.database.unit_of_work(read_only=True) as session:
        for acct in session.execute(select(LoyaltyAccount)).scalars():
            total = session.execute(select(func.coalesce(func.sum(LoyaltyEntry.points), 0))
                                    .where(LoyaltyEntry.customer_id == acct.customer_id)).scalar_one()
            unspent = session.execute(select(func.coalesce(func.sum(LoyaltyEntry.remaining), 0))
                                      .where(LoyaltyEntry.customer_id == acct.customer_id,
                                             LoyaltyEntry.points > 0)).scalar_one()
            assert acct.balance >= 0
            assert total == unspent == acct.balance, (acct.customer_id, total, unspent, acct.balance)


def cli(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(main, ["--config", str(ROOT / "config.yml"), "loyalty", *args],
                              env={"DATABASE_URL": db_url})


# --- earning ---------------------------------------------------------------------------------------------------


def test_crm_4_2_a_purchase_posted_to_the_api_earns_points_once_and_the_balance_is_answered_in_chat(
        customer, client, sapa, clock):
    """1 point per Rp 10.000 (floored); the same invoice posted again earns nothing; the customer asks."""
    budi, budi_id = webchat_customer(client, sapa, "Budi")
    first = bought(client, "ERP-1", "Rp 1.259.000", clock.now() - timedelta(days=2), customer_id=budi_id)
    again = bought(client, "ERP-1", "Rp 1.259.000", clock.now() - timedelta(days=2), customer_id=budi_id)
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    bought(client, "ERP-2", 9_999, clock.now(), customer_id=budi_id)  # below one point: nothing
    assert entries(sapa, budi_id) == [("earn", 125, 125)]

    assert budi.say("poin saya berapa?") == [
        "Poin Anda, Budi: 125 poin. Level member Anda Member: kumpulkan poin dari setiap belanja. "
        "Kumpulkan 875 poin lagi untuk naik ke Silver."]
    assert budi.buttons() == []  # 125 points buy nothing yet: no "Tukar poin" button
    bought(client, "ERP-3", 1_000_000, clock.now(), customer_id=budi_id)
    assert budi.say("cek poin")[0].startswith("Poin Anda, Budi: 225 poin.")
    assert budi.buttons() == [{"title": "Tukar poin", "payload": "loyalty:rewards"}]
    assert_ledger_matches_balances(sapa)


def test_crm_4_2_balance_in_english_mentions_points_about_to_expire(client, sapa, clock):
    """Points from a purchase of 20 January 2025 expire 12 months later: inside the 30-day notice."""
    anna, anna_id = webchat_customer(client, sapa, "Anna", language="en")
    bought(client, "POS-77", 23_456_000, "2025-01-20", customer_id=anna_id)  # 2.345 points: silver
    bought(client, "POS-78", 1_000_000, clock.now(), customer_id=anna_id)  # silver earns 1.1x: 110
    assert anna.say("what is my points balance?") == [
        "Your points, Anna: 2,455 points. Your member level is Silver: 1.1x points and member offers. "
        "Collect 2,545 more points to reach Gold. Note: 2,345 points expire on 20 January 2026."]
    assert anna.buttons() == [{"title": "Redeem points", "payload": "loyalty:rewards"}]


def test_crm_4_2_csv_import_earns_like_the_api(db_url, database, tmp_path, clock):
    path = tmp_path / "transactions.csv"
    path.write_text("customer_phone,external_id,amount,occurred_at\n"
                    "0812-3456-7890,INV-1,Rp 500.000,2026-01-02\n"
                    "0812-3456-7890,INV-2,250000,2026-01-03\n")
    for _ in range(2):  # the same file twice: the second run is all duplicates, nothing earned twice
        result = CliRunner().invoke(main, ["--config", str(ROOT / "config.yml"), "transactions", "import",
                                           str(path)], env={"DATABASE_URL": db_url})
        assert result.exit_code == 0, result.output
    shown = cli(db_url, "show", "0812-3456-7890")
    assert shown.exit_code == 0, shown.output
    assert "75 points · tier member" in shown.output
    assert shown.output.count(" earn +") == 2 and "transaction INV-1" in shown.output


# --- redeeming over chat ---------------------------------------------------------------------------------------


def test_crm_4_2_customer_redeems_points_over_web_chat_with_confirmation_and_gets_a_voucher(client, sapa, clock):
    budi, budi_id = webchat_customer(client, sapa, "Budi")
    bought(client, "ERP-10", 6_000_000, clock.now(), customer_id=budi_id)  # 600 points
    assert budi.say("mau tukar poin dong") == ["Saldo Anda 600 poin. Pilih hadiah yang ingin Anda tukar:"]
    # SERVIS is for silver members and up: not offered to a member.
    assert budi.buttons() == [{"title": "Gratis ongkir 1x (200 poin)", "payload": "loyalty:redeem:ONGKIR"},
                              {"title": "Voucher belanja Rp 50.000 (500 poin)", "payload": "loyalty:redeem:VCR50"}]
    assert budi.say("Voucher belanja Rp 50.000 (500 poin)", payload="loyalty:redeem:VCR50") == [
        "Tukar 500 poin dengan Voucher belanja Rp 50.000? Sisa poin Anda setelah penukaran: 100 poin."]
    yes, cancel = budi.buttons()
    assert (yes["title"], cancel) == ("Ya", {"title": "Batal", "payload": "loyalty:no"})
    [done] = budi.say("Ya", payload=yes["payload"])
    voucher = VOUCHER.search(done)
    assert voucher is not None
    assert done == (f"Berhasil, Budi! Anda mendapatkan Voucher belanja Rp 50.000. Kode voucher Anda: "
                    f"{voucher.group()}. Tunjukkan kode ini saat bertransaksi. Sisa poin Anda: 100 poin.")
    # A double press of "Ya" redeems nothing more and repeats the same voucher.
    assert budi.say("Ya", payload=yes["payload"]) == [
        f"Penukaran ini sudah kami proses sebelumnya. Kode voucher Anda: {voucher.group()}."]
    with sapa.database.unit_of_work(read_only=True) as session:
        [redemption] = session.execute(select(Redemption)).scalars().all()
        assert (redemption.voucher_code, redemption.points, redemption.channel, redemption.status) == (
            voucher.group(), 500, "webchat", "issued")
    assert entries(sapa, budi_id) == [("earn", 600, 600), ("redeem", -500, 100)]
    assert_ledger_matches_balances(sapa)


def test_crm_4_2_redeem_in_english_by_reward_name_then_cancel(client, sapa, clock):
    anna, anna_id = webchat_customer(client, sapa, "Anna", language="en")
    bought(client, "ERP-20", 3_000_000, clock.now(), customer_id=anna_id)  # 300 points
    assert anna.say("I want to redeem my points") == ["You have 300 points. Choose the reward you would like:"]
    assert anna.buttons() == [{"title": "One free delivery (200 points)", "payload": "loyalty:redeem:ONGKIR"}]
    assert anna.say("the free delivery please") == [
        "Redeem 200 points for One free delivery? You will have 100 points left."]
    # The button says "Not now": a bare "Cancel" is an SMS opt-out keyword (handlers/consent.py).
    assert [b["title"] for b in anna.buttons()] == ["Yes", "Not now"]
    assert anna.say("no thanks") == ["All right, nothing was redeemed. You still have 300 points."]
    assert account(sapa, anna_id).balance == 300
    assert_ledger_matches_balances(sapa)


def test_crm_4_2_redeem_over_whatsapp_with_numbered_options(client, fakes, slack, sapa, clock):
    rudi = ProviderCustomer(client, fakes, "whatsapp", "+6281311112222", name="Rudi")
    rudi.write("halo")
    rudi.write("Rudi")
    slack.settle()
    bought(client, "ERP-30", 7_000_000, clock.now(), customer_phone="0813-1111-2222")  # 700 points
    rudi.write("cek poin saya")
    slack.settle()
    assert rudi.texts()[-1] == ("Poin Anda, Rudi: 700 poin. Level member Anda Member: kumpulkan poin dari setiap "
                                "belanja. Kumpulkan 300 poin lagi untuk naik ke Silver.\n\n1. Tukar poin")
    rudi.write("1")
    slack.settle()
    assert rudi.texts()[-1] == ("Saldo Anda 700 poin. Pilih hadiah yang ingin Anda tukar:\n\n"
                                "1. Gratis ongkir 1x (200 poin)\n2. Voucher belanja Rp 50.000 (500 poin)")
    rudi.write("2")
    slack.settle()
    assert rudi.texts()[-1] == ("Tukar 500 poin dengan Voucher belanja Rp 50.000? Sisa poin Anda setelah "
                                "penukaran: 200 poin.\n\n1. Ya\n2. Batal")
    rudi.write("1")
    slack.settle()
    assert re.fullmatch(rf"Berhasil, Rudi! Anda mendapatkan Voucher belanja Rp 50\.000\. Kode voucher Anda: "
                        rf"{VOUCHER.pattern}\. Tunjukkan kode ini saat bertransaksi\. Sisa poin Anda: 200 poin\.",
                        rudi.texts()[-1])
    with sapa.database.unit_of_work(read_only=True) as session:
        [redemption] = session.execute(select(Redemption)).scalars().all()
        assert redemption.channel == "whatsapp"
    assert_ledger_matches_balances(sapa)


def test_crm_4_2_redeem_over_sms_by_name_and_yes_in_words(client, fakes, slack, sapa, clock):
    siti = ProviderCustomer(client, fakes, "sms", "+6281298765432", name="Siti")
    siti.write("halo")
    siti.write("Siti")
    slack.settle()
    bought(client, "ERP-40", 2_500_000, clock.now(), customer_phone="+6281298765432")  # 250 points
    siti.write("poin bisa dituker apa aja min")
    slack.settle()
    assert siti.texts()[-1] == ("Saldo Anda 250 poin. Pilih hadiah yang ingin Anda tukar:\n\n"
                                "1. Gratis ongkir 1x (200 poin)")
    siti.write("gratis ongkir")
    slack.settle()
    assert siti.texts()[-1].startswith("Tukar 200 poin dengan Gratis ongkir 1x? Sisa poin Anda setelah "
                                       "penukaran: 50 poin.")
    siti.write("iya")
    slack.settle()
    assert "Anda mendapatkan Gratis ongkir 1x. Kode voucher Anda: " in siti.texts()[-1]
    assert siti.texts()[-1].endswith("Sisa poin Anda: 50 poin.")
    assert_ledger_matches_balances(sapa)


def test_crm_4_2_not_enough_points_is_said_plainly(client, sapa, clock):
    budi, budi_id = webchat_customer(client, sapa, "Budi")
    bought(client, "ERP-50", 1_500_000, clock.now(), customer_id=budi_id)  # 150 points
    assert budi.say("tukar poin") == [
        "Saldo Anda 150 poin belum cukup untuk ditukar. Hadiah termurah, Gratis ongkir 1x, butuh 200 poin: "
        "kurang 50 poin lagi."]
    assert budi.buttons() == []
    # A button for a reward never offered to Budi (hand-made, or another bot's): refused, nothing spent.
    assert budi.say("Voucher", payload="loyalty:redeem:VCR50") == [
        "Maaf, tombol itu tidak kami kenali, jadi tidak ada yang kami proses. Silakan tulis pesan Anda di sini."]
    assert account(sapa, budi_id).balance == 150


def test_crm_4_2_a_unicode_digit_is_not_a_choice(client, sapa, clock):
    """Issue 15: "²" passes str.isdigit() and int() refuses it; picking a reward by "²" was a 500."""
    budi, budi_id = webchat_customer(client, sapa, "Budi")
    bought(client, "ERP-61", 5_500_000, clock.now(), customer_id=budi_id)
    budi.say("tukar poin")
    for odd in ("²", "１", "٢"):  # superscript two, full-width one, Arabic-Indic two
        budi.say("tukar poin")
        assert budi.say(odd) == [  # answered, not a crash, and not taken as an option
            "Mohon maaf, kami belum memahami pesan Anda. Silakan tulis ulang dengan kata lain, atau kami hubungkan "
            "dengan petugas kami."]
    budi.say("tukar poin")
    budi.say("2")
    assert budi.last["replies"][0]["text"].startswith("Tukar 500 poin dengan Voucher belanja Rp 50.000?")


def test_crm_4_2_points_spent_elsewhere_between_confirmation_and_yes_are_not_spent_twice(
        client, slack, sapa, clock):
    """The balance is checked again at "Ya": an agent redeemed in between, so the customer is told plainly."""
    budi, budi_id = webchat_customer(client, sapa, "Budi")
    bought(client, "ERP-60", 5_500_000, clock.now(), customer_id=budi_id)  # 550 points
    budi.say("tukar poin")
    budi.say("2")  # typed on the web chat: the second option
    assert budi.last["replies"][0]["text"].startswith("Tukar 500 poin dengan Voucher belanja Rp 50.000?")
    yes = budi.buttons()[0]
    assert "Voucher code" in slack.command("U0RINA", f"redeem #{budi_id} ONGKIR")["text"]  # 350 left
    assert budi.say("Ya", payload=yes["payload"]) == [
        "Mohon maaf, poin Anda belum cukup: Voucher belanja Rp 50.000 butuh 500 poin, saldo Anda 350 poin "
        "(kurang 150 poin)."]
    assert account(sapa, budi_id).balance == 350
    assert_ledger_matches_balances(sapa)


def test_crm_4_2_the_last_unit_of_a_reward_taken_meanwhile_is_out_of_stock(db_url, client, slack, sapa, clock):
    added = cli(db_url, "rewards", "add", "TUMBLER", "--points", "100", "--name-id", "Tumbler Sapa",
                "--name-en", "Sapa tumbler", "--stock", "1")
    assert added.exit_code == 0, added.output
    budi, budi_id = webchat_customer(client, sapa, "Budi")
    siti, siti_id = webchat_customer(client, sapa, "Siti")
    for who, external_id in ((budi_id, "ERP-70"), (siti_id, "ERP-71")):
        bought(client, external_id, 1_000_000, clock.now(), customer_id=who)  # 100 points each
    budi.say("tukar poin")
    assert budi.buttons() == [{"title": "Tumbler Sapa (100 poin)", "payload": "loyalty:redeem:TUMBLER"}]
    budi.say("Tumbler", payload="loyalty:redeem:TUMBLER")
    siti.say("tukar poin")
    siti.say("Tumbler", payload="loyalty:redeem:TUMBLER")
    siti.say("Ya", payload=siti.buttons()[0]["payload"])
    assert VOUCHER.search(siti.last["replies"][0]["text"])
    assert budi.say("Ya", payload=budi.buttons()[0]["payload"]) == [
        "Mohon maaf, Tumbler Sapa sedang habis. Poin Anda tidak terpakai; silakan pilih hadiah lain."]
    assert (account(sapa, budi_id).balance, account(sapa, siti_id).balance) == (100, 0)
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(Reward.stock).where(Reward.code == "TUMBLER")).scalar_one() == 0
    assert_ledger_matches_balances(sapa)


# --- expiry and tiers -----------------------------------------------------------------------------------------


def test_crm_4_2_points_expire_when_the_clock_passes_their_date(client, slack, sapa, clock):
    budi, budi_id = webchat_customer(client, sapa, "Budi")
    bought(client, "OLD-1", 3_000_000, "2025-01-20", customer_id=budi_id)  # 300 points, expire 20 Jan 2026
    bought(client, "NEW-1", 1_000_000, "2026-01-04", customer_id=budi_id)  # 100 points, expire 4 Jan 2027
    assert slack.command("U0SUPER", f"points adjust #{budi_id} -50 wrong invoice")["text"] == (
        f"#{budi_id} Budi: -50 points (wrong invoice). Balance now 350. Recorded in the audit log.")
    # The 50 taken came from the oldest points: 250 of them are left to expire.
    clock.set(datetime.fromisoformat("2026-01-20T08:00:00+07:00"))
    sapa.scheduler.schedule_periodic(loyalty_handlers.EXPIRE)
    sapa.scheduler.schedule_periodic(loyalty_handlers.EXPIRE)  # another replica, the same day: one job
    slack.settle()
    assert entries(sapa, budi_id)[-1] == ("expire", -250, 100)
    assert budi.say("poin saya berapa") == [
        "Poin Anda, Budi: 100 poin. Level member Anda Member: kumpulkan poin dari setiap belanja. "
        "Kumpulkan 900 poin lagi untuk naik ke Silver."]
    clock.advance(timedelta(days=1))  # the next day's run finds nothing more to expire
    sapa.scheduler.schedule_periodic(loyalty_handlers.EXPIRE)
    slack.settle()
    assert [kind for kind, _, _ in entries(sapa, budi_id)].count("expire") == 1
    assert_ledger_matches_balances(sapa)


def test_crm_4_2_tier_rises_with_points_earned_and_raises_the_multiplier(client, sapa, clock):
    budi, budi_id = webchat_customer(client, sapa, "Budi")
    bought(client, "T-1", 9_990_000, clock.now() - timedelta(days=3), customer_id=budi_id)  # 999: member
    first = account(sapa, budi_id)
    assert (first.tier, first.tier_since) == ("member", clock.now())
    clock.advance(timedelta(hours=1))
    bought(client, "T-2", 10_000, clock.now(), customer_id=budi_id)  # 1 point -> 1000: silver
    silver = account(sapa, budi_id)
    assert (silver.tier, silver.tier_since) == ("silver", clock.now())
    clock.advance(timedelta(hours=1))
    bought(client, "T-3", 1_000_000, clock.now(), customer_id=budi_id)  # silver earns 1.1x: 110
    assert entries(sapa, budi_id)[-1] == ("earn", 110, 1110)
    assert account(sapa, budi_id).tier_since == silver.tier_since  # unchanged while the tier is
    assert budi.say("aku member apa sih, silver ato gold") == [
        "Poin Anda, Budi: 1.110 poin. Level member Anda Silver: poin 1,1x dan promo khusus member. "
        "Kumpulkan 3.890 poin lagi untuk naik ke Gold."]
    budi.say("tukar poin")  # silver may choose the air-conditioner service now... if it could afford it
    assert [b["payload"] for b in budi.buttons()] == ["loyalty:redeem:ONGKIR", "loyalty:redeem:VCR50"]
    assert_ledger_matches_balances(sapa)


# --- agents in Slack --------------------------------------------------------------------------------------------


def test_crm_4_2_agents_look_adjust_and_redeem_in_slack(client, slack, sapa, clock):
    budi, budi_id = webchat_customer(client, sapa, "Budi")
    bought(client, "ERP-80", 4_000_000, clock.now(), customer_id=budi_id)  # 400 points
    shown = slack.command("U0RINA", f"points #{budi_id}")["text"]
    assert shown.startswith(f"*#{budi_id} Budi* — 400 points · tier member since 2026-01-05")
    assert "earn +400 → 400 · transaction ERP-80 · system" in shown

    assert slack.command("U0RINA", f"points adjust #{budi_id} +100 goodwill")["text"] == (
        "Only supervisors, management and marketing can adjust points.")
    assert slack.command("U0SUPER", f"points adjust #{budi_id} +100")["text"].startswith("Usage:")
    assert slack.command("U0SUPER", f"points adjust #{budi_id} +100 late delivery goodwill")["text"] == (
        f"#{budi_id} Budi: +100 points (late delivery goodwill). Balance now 500. Recorded in the audit log.")
    assert slack.command("U0MKT", f"points adjust #{budi_id} -9000 test")["text"] == (
        "Not adjusted: cannot take 9000 points: the balance is 500.")
    assert slack.command("U0MKT", f"redeem #{budi_id} VCR50")["text"] == (
        "Only customer service, account managers, supervisors and management can redeem for a customer.")
    assert slack.command("U0RINA", f"redeem #{budi_id} SERVIS")["text"] == (
        "Not redeemed: reward SERVIS needs tier silver (customer is member).")
    assert slack.command("U0RINA", f"redeem #{budi_id} NOPE")["text"] == (
        "Not redeemed: no reward 'NOPE' in the catalogue.")
    redeemed = slack.command("U0RINA", f"redeem #{budi_id} vcr50")["text"]
    voucher = VOUCHER.search(redeemed)
    assert voucher and redeemed == (f"#{budi_id} Budi redeemed VCR50 (Rp 50,000 shopping voucher) for 500 points. "
                                    f"Voucher code: *{voucher.group()}*. Balance now 0.")
    assert slack.command("U0RINA", f"redeem #{budi_id} ONGKIR")["text"] == (
        "Not redeemed: reward ONGKIR costs 200 points; the balance is 0.")
    catalogue = slack.command("U0BOSS", "rewards")["text"]
    assert "• `SERVIS` Free air-conditioner service · 1,500 points · 50 left · silver" in catalogue
    assert "• `VCR50` Rp 50,000 shopping voucher · 500 points · unlimited · all tiers" in catalogue
    with sapa.database.unit_of_work(read_only=True) as session:
        audited = [(a.actor, a.action, a.detail.get("points")) for a in session.execute(
            select(AuditEntry).where(AuditEntry.action.like("loyalty.%")).order_by(AuditEntry.id)).scalars()]
        [redemption] = session.execute(select(Redemption)).scalars().all()
    assert [action for _, action, _ in audited] == ["loyalty.adjust", "loyalty.redeem"]
    assert (redemption.channel, redemption.actor.startswith("agent:")) == ("slack", True)
    assert entries(sapa, budi_id) == [("earn", 400, 400), ("adjust", 100, 500), ("redeem", -500, 0)]
    assert budi.say("cek saldo poin dong min")[0].startswith("Poin Anda, Budi: 0 poin.")
    assert_ledger_matches_balances(sapa)


# --- the command line -------------------------------------------------------------------------------------------


def test_crm_4_2_command_line_rewards_adjust_redeem_and_expire(db_url, client, sapa, clock):
    _, budi_id = webchat_customer(client, sapa, "Budi")
    listed = cli(db_url, "rewards", "list")
    assert listed.exit_code == 0, listed.output
    assert "ONGKIR One free delivery · 200 points · unlimited · all tiers" in listed.output

    assert cli(db_url, "rewards", "add", "MUG", "--points", "150", "--name-id", "Mug cantik",
               "--name-en", "A nice mug", "--stock", "3", "--min-tier", "platinum").exit_code == 0
    duplicate = cli(db_url, "rewards", "add", "mug", "--points", "1", "--name-id", "x", "--name-en", "x")
    assert duplicate.exit_code == 1 and "reward MUG already exists" in duplicate.output
    bad_tier = cli(db_url, "rewards", "add", "CUP", "--points", "1", "--name-id", "x", "--name-en", "x",
                   "--min-tier", "diamond")
    assert bad_tier.exit_code == 2 and "'diamond' is not a tier" in bad_tier.output
    assert "stock 3 -> 0" in cli(db_url, "rewards", "stock", "MUG", "0").output
    assert "stock 50 -> 49" in cli(db_url, "rewards", "stock", "SERVIS", "49").output
    assert cli(db_url, "rewards", "disable", "ONGKIR").exit_code == 0
    listed = cli(db_url, "rewards", "list").output
    assert "MUG Mug cantik" not in listed and "MUG A nice mug · 150 points · 0 left · platinum" in listed
    assert "ONGKIR One free delivery · 200 points · unlimited · all tiers · disabled" in listed

    adjusted = cli(db_url, "adjust", f"#{budi_id}", "+700", "--reason", "welcome bonus")
    assert adjusted.exit_code == 0, adjusted.output
    assert adjusted.output.strip() == f"customer #{budi_id}: +700 points (welcome bonus); balance now 700"
    too_much = cli(db_url, "adjust", str(budi_id), "-800", "--reason", "oops")
    assert too_much.exit_code == 1 and "not adjusted: cannot take 800 points: the balance is 700" in too_much.output
    assert cli(db_url, "adjust", str(budi_id), "lots", "--reason", "x").exit_code == 2
    assert "not redeemed: reward ONGKIR is not offered any more" in cli(db_url, "redeem", str(budi_id),
                                                                         "ONGKIR").output
    redeemed = cli(db_url, "redeem", str(budi_id), "VCR50")
    assert redeemed.exit_code == 0, redeemed.output
    assert re.fullmatch(rf"customer #{budi_id} redeemed VCR50 for 500 points: voucher {VOUCHER.pattern}; "
                        rf"balance now 200\n", redeemed.output)
    assert cli(db_url, "show", "999999").exit_code == 1

    expired = cli(db_url, "expire")  # the CLI runs on the real clock: these points are minutes old
    assert expired.exit_code == 0, expired.output
    assert expired.output.strip() == "0 points expired for 0 customers; 0 tiers changed"
    shown = cli(db_url, "show", str(budi_id)).output
    assert "redeem -500 → 200 · reward VCR50 · cli" in shown
    assert "adjust +700 → 700 · welcome bonus · cli" in shown
    assert_ledger_matches_balances(sapa)


@pytest.mark.parametrize("enabled", [False])
def test_crm_4_2_with_the_programme_off_points_questions_go_to_a_person_and_nothing_is_earned(client, sapa, clock):
    budi, budi_id = webchat_customer(client, sapa, "Budi")
    bought(client, "ERP-90", 5_000_000, clock.now(), customer_id=budi_id)
    assert budi.say("poin saya berapa?") == [
        "Baik, kami mengerti. Untuk keperluan ini petugas kami yang akan membantu Anda langsung. "
        "Mau kami hubungkan sekarang?"]
    assert budi.buttons() == [{"title": "Bicara dengan petugas", "payload": "intent:talk_to_agent"}]
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(LoyaltyEntry)).scalar_one() == 0
