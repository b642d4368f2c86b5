"""The periodic NPS survey (CRM-5.2, VIP-5.1): a round asks a sample of recently active customers plus every VIP,
on their latest channel (web chat, SMS), answered by button, number or words, then once for the reason; a VIP
detractor alerts their account manager. A round runs once per period however often it is queued.

ManualClock starts Monday 2026-01-05 09:00 WIB; tests move it a day so the round opens fresh conversations.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Sapa, build
from bot.config import WhatsAppTemplate
from handlers import nps
from store.models import Agent, Customer, Survey, Task
from store.privacy import erase_customer
from tests.support.providers import ProviderCustomer
from tests.support.slack import Slack, desk_settings, handed_off
from tests.support.webchat import WebchatUser

QUESTION = ("Halo {name}, seberapa besar kemungkinan Anda merekomendasikan PT Contoh Sejahtera kepada teman atau "
            "keluarga? Balas dengan angka 0 (sangat tidak mungkin) sampai 10 (sangat mungkin).")
REASON = "Terima kasih, {name}! Apa alasan utama nilai Anda?"
THANKS = "Terima kasih atas masukan Anda, {name}. Kami akan menggunakannya untuk melayani Anda lebih baik."
SCORES = [str(score) for score in range(11)]


@pytest.fixture
def sample_percent() -> float:
    return 100  # everyone eligible; a test parametrizes this to sample


@pytest.fixture
def whatsapp_templates() -> dict[str, Any]:
    return {}  # config's; a test parametrizes this to add approved templates


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database, sample_percent, whatsapp_templates) -> Iterator[Sapa]:
    settings = desk_settings(db_url, fakes)
    if whatsapp_templates:
        whatsapp = settings.channels.whatsapp
        channels = settings.channels.model_copy(update={"whatsapp": whatsapp.model_copy(
            update={"templates": {**whatsapp.templates, **whatsapp_templates}})})
        settings = settings.model_copy(update={"channels": channels})
    surveys = settings.surveys
    settings = settings.model_copy(update={"surveys": surveys.model_copy(
        update={"nps": surveys.nps.model_copy(update={"sample_percent": sample_percent})})})
    sapa = build(settings, clock=clock, interpreter=interpreter, database=database, model_cache=None)
    yield sapa
    sapa.stop_background()


def webchat_customer(client, sapa: Sapa, name: str) -> WebchatUser:
    user = WebchatUser(client, sapa)
    user.say("halo")
    user.say(name)
    return user


def customer_id(sapa: Sapa, name: str) -> int:
    with sapa.database.unit_of_work(read_only=True) as session:
        return int(session.execute(select(Customer.id).where(Customer.name == name)).scalar_one())


def run_round(sapa: Sapa, slack: Slack) -> None:
    sapa.scheduler.schedule_periodic(nps.ROUND)
    slack.settle()


def nps_surveys(sapa: Sapa) -> list[Survey]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return list(session.execute(select(Survey).where(Survey.kind == "nps").order_by(Survey.id)).scalars())


def asked_names(sapa: Sapa) -> list[str]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return sorted(session.get_one(Customer, s.customer_id).name or "" for s in session.execute(
            select(Survey).where(Survey.kind == "nps")).scalars())


def questions(user: WebchatUser) -> list[dict[str, Any]]:
    return [m for m in user.history() if "seberapa besar kemungkinan" in m["text"]]


# --- the round --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sample_percent", [50])
def test_crm_5_2_nps_round_asks_a_sample_and_every_vip(client, slack, sapa, clock):
    users = {name: webchat_customer(client, sapa, name) for name in ("Ani", "Budi", "Citra", "Dodi", "Eka")}
    assert "VIP" in slack.command("U0AMGR", f"vip add #{customer_id(sapa, 'Eka')} key account")["text"]
    clock.advance(timedelta(days=1))  # Tuesday 09:00, business hours
    run_round(sapa, slack)

    asked = asked_names(sapa)
    assert "Eka" in asked  # VIP-5.1: every VIP, always
    assert len(asked) == 3  # and half of the four regular customers
    for name, user in users.items():
        got = questions(user)
        if name in asked:
            assert [m["text"] for m in got] == [QUESTION.format(name=name)]
            assert [b["title"] for b in got[0]["buttons"]] == SCORES  # web chat shows 0..10 as buttons
        else:
            assert got == []
    with sapa.database.unit_of_work(read_only=True) as session:
        eka = session.execute(select(Survey).join(Customer, Customer.id == Survey.customer_id)
                              .where(Customer.name == "Eka")).scalar_one()
        andi = session.execute(select(Agent.id).where(Agent.slack_user_id == "U0AMGR")).scalar_one()
    assert (eka.status, eka.channel, eka.tier, eka.agent_id) == ("asked", "webchat", "vip", andi)

    # The same period drawn again (a rerun, another replica) picks the same people and asks nobody twice.
    with sapa.database.unit_of_work() as session:
        _, payload = nps.round_bucket(sapa.settings)(clock.now()) or ("", {})
        nps.round_task(sapa.settings)(session, Task(kind=nps.ROUND, payload=payload), clock.now())
    slack.settle()
    assert asked_names(sapa) == asked


def test_crm_5_2_queueing_the_round_twice_and_restarting_asks_nobody_twice(client, slack, sapa, clock, settings,
                                                                          interpreter, database):
    budi = webchat_customer(client, sapa, "Budi")
    clock.advance(timedelta(days=1))
    sapa.scheduler.schedule_periodic(nps.ROUND)
    sapa.scheduler.schedule_periodic(nps.ROUND)  # a second replica in the same hour
    slack.settle()
    clock.advance(timedelta(days=3))
    restarted = build(sapa.settings, clock=clock, interpreter=interpreter, database=database, model_cache=None)
    try:
        restarted.scheduler.schedule_periodic(nps.ROUND)  # after a restart, later in the same 90-day period
        restarted.runner.run_due()
        slack.settle()
    finally:
        restarted.stop_background()
    assert [m["text"] for m in questions(budi)] == [QUESTION.format(name="Budi")]
    with sapa.database.unit_of_work(read_only=True) as session:
        rounds = session.execute(select(Task).where(Task.kind == nps.ROUND)).scalars().all()
        asks = session.execute(select(Task).where(Task.kind == nps.ASK)).scalars().all()
    assert len(rounds) == 1 and rounds[0].status == "done"
    assert len(asks) == 1 and asks[0].status == "done"


def test_crm_5_2_opted_out_erased_and_silent_customers_are_never_asked(client, slack, sapa, clock):
    silent = webchat_customer(client, sapa, "Lama")  # wrote long ago
    clock.advance(timedelta(days=sapa.settings.surveys.nps.active_within_days + 7))  # a Monday again
    stopped = webchat_customer(client, sapa, "Sinta")
    assert stopped.say("STOP")[0].startswith("Anda tidak akan lagi menerima pesan promosi")
    refused = webchat_customer(client, sapa, "Rudi")
    refused.say("Tidak setuju", payload="consent:data:no")
    erased = webchat_customer(client, sapa, "Edo")
    edo = customer_id(sapa, "Edo")
    with sapa.database.unit_of_work() as session:
        erase_customer(session, edo, now=clock.now(), actor="test", reason="asked")
    budi = webchat_customer(client, sapa, "Budi")
    clock.advance(timedelta(hours=1))
    run_round(sapa, slack)

    assert asked_names(sapa) == ["Budi"]
    assert len(questions(budi)) == 1
    for user in (stopped, refused, erased, silent):
        assert questions(user) == []


def test_crm_5_2_a_customer_talking_with_an_agent_is_skipped_this_round(client, slack, sapa, clock):
    budi = WebchatUser(client, sapa)
    conversation, desk_ts = handed_off(budi, slack)
    assert slack.press("U0RINA", "claim", conversation.id, desk_ts) == 200
    slack.settle()
    run_round(sapa, slack)
    assert nps_surveys(sapa) == [] and questions(budi) == []


# --- answers --------------------------------------------------------------------------------------------


def test_crm_5_2_nps_answered_on_web_chat_then_the_reason_is_stored(client, slack, sapa, clock):
    budi = webchat_customer(client, sapa, "Budi")
    clock.advance(timedelta(days=1))
    run_round(sapa, slack)
    [question] = questions(budi)
    nine = next(b for b in question["buttons"] if b["title"] == "9")
    assert budi.say("9", payload=nine["payload"]) == [REASON.format(name="Budi")]
    assert budi.say("pelayanannya cepat dan ramah") == [THANKS.format(name="Budi")]
    [survey] = nps_surveys(sapa)
    assert (survey.status, survey.score, survey.comment, survey.channel, survey.tier) == (
        "answered", 9, "pelayanannya cepat dan ramah", "webchat", "regular")
    assert budi.say("terima kasih")[0].startswith("Sama-sama")  # the reason is asked once; then back to normal


def test_crm_5_2_a_typed_number_is_the_score_not_the_option_number(client, slack, sapa, clock):
    budi = webchat_customer(client, sapa, "Budi")
    clock.advance(timedelta(days=1))
    run_round(sapa, slack)
    assert budi.say("10") == [REASON.format(name="Budi")]  # the 10th button would be 9
    assert nps_surveys(sapa)[0].score == 10


def test_crm_5_2_nps_answered_over_sms_in_words(client, fakes, slack, sapa, clock):
    siti = ProviderCustomer(client, fakes, "sms", "+6281298765432", name="Siti")
    siti.write("halo")
    slack.settle()
    siti.write("Siti")
    slack.settle()
    clock.advance(timedelta(days=1))
    run_round(sapa, slack)
    # SMS has no buttons: the question asks for the number itself, with no numbered options under it.
    assert siti.texts()[-1] == QUESTION.format(name="Siti")
    siti.write("nilai 7 deh")
    slack.settle()
    assert siti.texts()[-1] == REASON.format(name="Siti")
    siti.write("harganya oke tapi pengiriman agak lama")
    slack.settle()
    assert siti.texts()[-1] == THANKS.format(name="Siti")
    [survey] = nps_surveys(sapa)
    assert (survey.score, survey.channel, survey.comment) == (7, "sms", "harganya oke tapi pengiriman agak lama")


def test_crm_5_2_a_reply_that_is_clearly_something_else_is_handled_and_no_reason_stored(client, slack, sapa, clock):
    budi = webchat_customer(client, sapa, "Budi")
    clock.advance(timedelta(days=1))
    run_round(sapa, slack)
    assert budi.say("5") == [REASON.format(name="Budi")]
    replies = budi.say("saya mau bicara dengan petugas")
    assert replies[0].startswith("Baik, Budi. Percakapan ini kami teruskan ke petugas kami")
    [survey] = nps_surveys(sapa)
    assert (survey.score, survey.comment) == (5, None)


def test_crm_5_2_a_message_that_is_not_a_score_is_routed_as_usual(client, slack, sapa, clock):
    budi = webchat_customer(client, sapa, "Budi")
    clock.advance(timedelta(days=1))
    run_round(sapa, slack)
    assert budi.say("jam buka toko jam berapa")[0].startswith("Baik, Budi. Toko PT Contoh Sejahtera buka")
    [survey] = nps_surveys(sapa)
    assert (survey.status, survey.score) == ("asked", None)


def test_vip_5_1_vip_nps_detractor_alerts_account_manager(client, slack, sapa, clock):
    budi = webchat_customer(client, sapa, "Budi")
    assert "VIP" in slack.command("U0AMGR", f"vip add #{customer_id(sapa, 'Budi')} key account")["text"]
    clock.advance(timedelta(days=1))
    run_round(sapa, slack)
    assert budi.say("tiga") == [REASON.format(name="Budi")]
    slack.settle()
    alerts = [p for p in slack.posts("C0VIP") if p.get("text", "").startswith("📉")]
    assert [p["text"] for p in alerts] == ["📉 VIP detractor: Budi (strategic) gave NPS 3/10 on webchat. <@U0AMGR>"]
    assert alerts[0]["blocks"]  # the customer's card, so the account manager can take the conversation
    assert budi.say("teknisinya datang terlambat <!channel>") == [THANKS.format(name="Budi")]
    slack.settle()
    reasons = [p["text"] for p in slack.posts("C0VIP") if p.get("text", "").startswith("💬")]
    assert reasons == ["💬 Budi's reason for NPS 3/10: “teknisinya datang terlambat &lt;!channel&gt;”"]
    [survey] = nps_surveys(sapa)
    assert (survey.tier, survey.score, survey.comment) == ("vip", 3, "teknisinya datang terlambat <!channel>")


def test_vip_5_1_a_vip_promoter_alerts_nobody(client, slack, sapa, clock):
    budi = webchat_customer(client, sapa, "Budi")
    slack.command("U0AMGR", f"vip add #{customer_id(sapa, 'Budi')} key account")
    clock.advance(timedelta(days=1))
    run_round(sapa, slack)
    budi.say("sepuluh")
    budi.say("selalu dibantu dengan cepat")
    slack.settle()
    assert not [p for p in slack.posts("C0VIP") if p.get("text", "").startswith(("📉", "💬"))]


@pytest.mark.parametrize(
    ("text", "score"),
    [("sepuluh", 10), ("10", 10), ("nilai 7 deh", 7), ("0", 0), ("nilai 10", 10), ("ten", 10), ("9/10", 9),
     ("delapan aja", 8), ("nol", 0), ("no one answered my call for two days", None), ("hmm", None), ("", None),
     ("15", None)],
)
def test_nps_answers_in_numbers_and_words(text, score, base_settings):
    assert nps.parse_score(text, base_settings) == score


CSAT_TEMPLATE, NPS_TEMPLATE = "HX" + "c" * 32, "HX" + "d" * 32


@pytest.mark.parametrize("whatsapp_templates", [{
    "survey": {"id": WhatsAppTemplate(content_sid=CSAT_TEMPLATE, variables=("name", "ticket"))},
    "nps_survey": {"id": WhatsAppTemplate(content_sid=NPS_TEMPLATE, variables=("name",))},
}])
def test_crm_5_2_nps_outside_the_whatsapp_window_goes_as_the_nps_template_not_the_csat_one(
        client, fakes, slack, sapa, clock):
    """Outside the 24-hour window only approved templates go out; the NPS question has its own purpose."""
    rudi = ProviderCustomer(client, fakes, "whatsapp", "+6281311112222", name="Rudi")
    rudi.write("halo")
    slack.settle()
    rudi.write("Rudi")
    slack.settle()
    clock.advance(timedelta(days=2))  # the window closed a day ago
    run_round(sapa, slack)
    question = rudi.received()[-1].params
    assert question["ContentSid"] == NPS_TEMPLATE and "Body" not in question
    assert json.loads(question["ContentVariables"]) == {"1": "Rudi"}
    [survey] = nps_surveys(sapa)
    assert (survey.channel, survey.status) == ("whatsapp", "asked")


def test_vip_5_1_a_vip_silent_for_longer_than_the_activity_window_is_still_asked(client, slack, sapa, clock):
    users = {name: webchat_customer(client, sapa, name) for name in ("Fajar", "Gita")}
    assert "VIP" in slack.command("U0AMGR", f"vip add #{customer_id(sapa, 'Gita')} key account")["text"]
    clock.advance(timedelta(days=sapa.settings.surveys.nps.active_within_days + 7))
    while clock.now().astimezone(sapa.settings.tz).weekday() == 6:  # a Sunday: no business hours
        clock.advance(timedelta(days=1))
    run_round(sapa, slack)
    assert asked_names(sapa) == ["Gita"]  # the silent regular customer is not asked; the VIP always is
    assert [m["text"] for m in questions(users["Gita"])] == [QUESTION.format(name="Gita")]
    assert questions(users["Fajar"]) == []
