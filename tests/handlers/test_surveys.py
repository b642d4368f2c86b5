"""CSAT after resolution (CRM-5.1, CRM-5.2, CRM-5.3, VIP-5.1): asked on the customer's channel, answered by
number, words or button, stored per agent/channel/tier; low scores reach the supervisors. One test kills
a real `sapa serve` between the resolution and the survey time and checks the survey still goes out once.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select

from bot.app import Sapa, build
from bot.devtools.fake_providers import FakeProviders
from handlers.surveys import parse_score
from store.models import Conversation, Customer, Survey, Task, Ticket
from tests.support.providers import TWILIO_TOKEN
from tests.support.server import running_sapa, wait_for
from tests.support.slack import AGENTS, SECRETS, Slack, complained, desk_settings
from tests.support.webchat import WebchatUser


@pytest.fixture
def csat_delay_minutes() -> float | None:
    return None  # config.yml's; a test parametrizes this to change it


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database, csat_delay_minutes) -> Iterator[Sapa]:
    settings = desk_settings(db_url, fakes)
    if csat_delay_minutes is not None:
        settings = settings.model_copy(update={"surveys": settings.surveys.model_copy(
            update={"csat_delay_minutes": csat_delay_minutes})})
    sapa = build(settings, clock=clock, interpreter=interpreter, database=database, model_cache=None)
    yield sapa
    sapa.stop_background()


def resolved_then_surveyed(customer: WebchatUser, slack: Slack, sapa: Sapa, clock) -> dict:
    conversation = complained(customer, slack, "mesin cuci saya bocor terus, saya kecewa")
    assert slack.reply("U0RINA", conversation.desk_ts, "Sudah kami ganti selangnya, Pak Budi.") == 200
    assert slack.press("U0RINA", "resolve", conversation.id, conversation.desk_ts) == 200
    slack.settle()
    clock.advance(timedelta(minutes=sapa.settings.surveys.csat_delay_minutes + 1))
    slack.settle()
    question = customer.history()[-1]
    assert question["text"] == (
        "Terima kasih telah menghubungi PT Contoh Sejahtera, Budi. Seberapa puas Anda dengan penanganan tiket "
        "TKT-000001? Balas dengan angka 1 (sangat tidak puas) sampai 5 (sangat puas).")
    return question


def survey_row(sapa: Sapa) -> Survey:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Survey)).scalar_one()


def test_crm_5_2_csat_after_resolution_answered_with_a_number(customer, slack, sapa, clock):
    question = resolved_then_surveyed(customer, slack, sapa, clock)
    assert [b["title"] for b in question["buttons"]] == ["1", "2", "3", "4", "5"]
    assert customer.say("4") == [
        "Terima kasih atas penilaian Anda, Budi! Masukan Anda membantu kami melayani lebih baik."]
    survey = survey_row(sapa)
    # CRM-5.1 / CRM-5.3: stored per agent, channel, category and tier, for the reports.
    assert (survey.kind, survey.status, survey.score, survey.channel, survey.tier) == (
        "csat", "answered", 4, "webchat", "regular")
    assert survey.agent_id is not None and survey.ticket_id is not None


def test_crm_5_3_a_low_score_in_words_alerts_supervisors_and_opens_service_recovery(customer, slack, sapa, clock):
    resolved_then_surveyed(customer, slack, sapa, clock)
    replies = customer.say("kurang puas sih, nunggunya lama")
    assert replies == ["Terima kasih atas penilaian jujur Anda, Budi. Mohon maaf kami belum memenuhi harapan Anda; "
                       "supervisor kami akan menghubungi Anda untuk memperbaikinya."]
    slack.settle()
    assert survey_row(sapa).score == 2
    with sapa.database.unit_of_work(read_only=True) as session:
        recovery = session.execute(select(Ticket).where(Ticket.kind == "recovery")).scalar_one()
    assert recovery.status == "open" and recovery.subject == "CSAT 2/5 for TKT-000001"
    alert = [p["text"] for p in slack.posts("C0ESC") if p.get("text", "").startswith("📉 Low CSAT 2/5")]
    assert len(alert) == 1 and "<@U0SUPER>" in alert[0] and "kurang puas sih" in alert[0]


def vip_resolved_then_surveyed(customer: WebchatUser, slack: Slack, sapa: Sapa, clock, complaint: str) -> None:
    """Budi is made VIP, complains, an agent resolves it, and the CSAT question reaches him."""
    customer.say("halo")
    customer.say("Budi")
    with sapa.database.unit_of_work(read_only=True) as session:
        customer_id = session.execute(select(Customer.id)).scalar_one()
    assert "VIP" in slack.command("U0AMGR", f"vip add #{customer_id} top buyer")["text"]
    conversation = complained(customer, slack, complaint)
    assert slack.press("U0RINA", "resolve", conversation.id, conversation.desk_ts) == 200
    slack.settle()
    clock.advance(timedelta(minutes=sapa.settings.surveys.csat_delay_minutes + 1))
    slack.settle()


def test_vip_5_1_vip_survey_is_recorded_with_the_vip_tier(customer, slack, sapa, clock):
    vip_resolved_then_surveyed(customer, slack, sapa, clock, "AC yang dipasang kemarin bocor, saya kecewa")
    assert customer.say("puas banget, cepat ditangani") == [
        "Terima kasih atas penilaian Anda, Budi! Masukan Anda membantu kami melayani lebih baik."]
    survey = survey_row(sapa)
    assert (survey.tier, survey.score) == ("vip", 5)


def test_vip_5_1_an_angry_vip_survey_answer_takes_the_low_score_path_not_a_second_handoff(
        customer, slack, sapa, clock):
    vip_resolved_then_surveyed(customer, slack, sapa, clock, "AC yang dipasang kemarin bocor")
    cards_before = len([p for p in slack.posts("C0VIP") if p.get("blocks") and not p.get("thread_ts")])
    replies = customer.say("SANGAT KECEWA!!! 😡")
    slack.settle()
    assert not any("kami teruskan kepada petugas" in reply for reply in replies), replies
    assert survey_row(sapa).score == 1
    with sapa.database.unit_of_work(read_only=True) as session:
        tickets = session.execute(select(Ticket).order_by(Ticket.id)).scalars().all()
        conversations = session.execute(select(Conversation).order_by(Conversation.id)).scalars().all()
    assert [(t.kind, t.status) for t in tickets] == [("complaint", "resolved"), ("recovery", "open")]
    assert [(c.status, (c.pending_data or {}).get("handoff_reason")) for c in conversations][-1] == ("bot", None)
    cards_after = len([p for p in slack.posts("C0VIP") if p.get("blocks") and not p.get("thread_ts")])
    assert cards_after == cards_before  # no "VIP upset" handoff card on top of the low-score path


@pytest.mark.parametrize(
    ("text", "score"),
    [("5", 5), ("nilai 3 ya kak", 3), ("puas banget", 5), ("kurang puas", 2), ("kecewa", 1), ("very satisfied", 5),
     ("PUAS", 4), ("10/10", None), ("hmm", None), ("", None)],
)
def test_csat_answers_in_numbers_and_words(text, score, base_settings):
    assert parse_score(text, base_settings.surveys.words) == score


@pytest.mark.parametrize("csat_delay_minutes", [3000])  # after the "is it solved?" check (1440)
def test_a_survey_is_not_sent_for_a_ticket_reopened_before_survey_time(customer, slack, sapa, clock):
    conversation = complained(customer, slack, "kulkas tidak dingin, saya kecewa")
    assert slack.press("U0RINA", "resolve", conversation.id, conversation.desk_ts) == 200
    slack.settle()
    clock.advance(timedelta(minutes=sapa.settings.sla.confirm_resolution_after_minutes + 1))
    slack.settle()
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
    customer.say("Belum selesai", payload=f"resolution:no:{ticket.id}")
    clock.advance(timedelta(minutes=sapa.settings.surveys.csat_delay_minutes))
    slack.settle()
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(Survey)).scalars().all() == []
        csat = session.execute(select(Task).where(Task.kind == "survey.csat")).scalar_one()
    assert csat.status == "done"  # it ran, saw the ticket reopened, and sent nothing


def test_crm_5_2_killing_sapa_between_resolution_and_survey_still_sends_the_survey_once(tmp_path: Path):
    """Real `sapa serve` processes on one SQLite file: resolve, kill -9 before survey time, restart."""
    with FakeProviders(twilio_auth_token=TWILIO_TOKEN) as fakes:
        raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "config.yml").read_text())
        overlay = {
            "extends": "config.yml",
            "slack": {"enabled": True, "api_base_url": fakes.slack_base_url, "queue_channel": "C0QUEUE",
                      "escalation_channel": "C0ESC", "agents": AGENTS},
            "surveys": {"csat_delay_minutes": 0.1},  # six seconds
            "scheduler": {**raw["scheduler"], "poll_interval_s": 0.2},
            "outbox": {**raw["outbox"], "poll_interval_s": 0.2},
        }
        (tmp_path / "survey.yml").write_text(yaml.safe_dump(overlay))
        env = {name: value for name, value in SECRETS.items() if name.startswith("SLACK")}
        with running_sapa(tmp_path, config="survey.yml", env=env) as first:
            http = httpx.Client(base_url=first.base_url, trust_env=False, timeout=10)
            customer = WebchatUser(http, None)
            customer.say("halo")
            customer.say("Budi")
            customer.say("mesin cuci saya bocor terus, saya kecewa")
            db = tmp_path / "sapa.db"
            conversation_id, desk_ts = wait_for(lambda: _row(db, "SELECT id, desk_ts FROM conversations "
                                                                 "WHERE desk_ts IS NOT NULL"))
            agent = Slack(http, fakes, None, None)
            assert agent.press("U0RINA", "resolve", conversation_id, desk_ts) == 200
            wait_for(lambda: _row(db, "SELECT id FROM tickets WHERE status = 'resolved'"), "the resolution")
            assert _row(db, "SELECT status FROM tasks WHERE kind = 'survey.csat'") == ("pending",)
            os.kill(first.process.pid, signal.SIGKILL)  # no clean shutdown: the survey is only in the database
            first.process.wait(timeout=10)
        with running_sapa(tmp_path, config="survey.yml", env=env) as second:
            http = httpx.Client(base_url=second.base_url, trust_env=False, timeout=10)
            session_id = customer.session_id
            customer = WebchatUser.__new__(WebchatUser)
            customer.client, customer.sapa, customer.session_id, customer.last = http, None, session_id, {}

            def surveys_sent() -> list[str]:
                return [m["text"] for m in customer.history() if "Seberapa puas Anda" in m["text"]]

            wait_for(surveys_sent, "the survey", timeout_s=60)
            time.sleep(2)  # several more scheduler polls: nothing may send it again
            assert len(surveys_sent()) == 1, second.log()
            assert _row(tmp_path / "sapa.db", "SELECT COUNT(*) FROM surveys") == (1,)
            assert json.dumps(_row(tmp_path / "sapa.db", "SELECT status FROM tasks WHERE kind = 'survey.csat'")) == \
                '["done"]'


def _row(db: Path, query: str) -> tuple | None:
    with sqlite3.connect(db) as connection:
        return connection.execute(query).fetchone()



def test_a_customers_words_in_the_low_score_alert_ping_nobody(customer, slack, sapa, clock):
    resolved_then_surveyed(customer, slack, sapa, clock)
    customer.say("kecewa <!channel> <@U0BOSS>")
    slack.settle()
    [alert] = [p["text"] for p in slack.posts("C0ESC") if p.get("text", "").startswith("📉 Low CSAT 1/5")]
    assert "<!channel>" not in alert and "&lt;!channel&gt;" in alert and "&lt;@U0BOSS&gt;" in alert


def test_a_survey_question_edited_in_the_knowledge_base_is_the_one_sent_without_a_restart(customer, slack, sapa, clock):
    """The survey goes from a scheduled task, whose functions were made at start-up: they follow the current texts
    (scheduler/jobs.CurrentTaskKinds), so an editor's change reaches the next survey, not only the next reply."""
    from handlers import knowledge

    seed = sapa.settings.templates["csat_question"]
    edited = {"id": seed["id"].replace("Seberapa puas", "Bagaimana penilaian"), "en": seed["en"]}
    with sapa.database.unit_of_work() as session:
        knowledge.save_template(session, sapa.knowledge, "csat_question", edited, actor="agent:1",
                                now=sapa.clock.now())
    sapa.knowledge.invalidate()
    conversation = complained(customer, slack, "mesin cuci saya bocor terus, saya kecewa")
    assert slack.press("U0RINA", "resolve", conversation.id, conversation.desk_ts) == 200
    slack.settle()
    clock.advance(timedelta(minutes=sapa.settings.surveys.csat_delay_minutes + 1))
    slack.settle()
    assert customer.history()[-1]["text"].startswith(
        "Terima kasih telah menghubungi PT Contoh Sejahtera, Budi. Bagaimana penilaian Anda dengan penanganan tiket")
