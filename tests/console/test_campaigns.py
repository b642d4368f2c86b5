"""Marketing's pages in the console (issue 17), on SQLite and PostgreSQL: segments, the broadcast composer and its
preview, a test to oneself, the schedule, progress to the end, pause/resume/cancel, the recipients and their export;
who may open them, CSRF, refused forms that change nothing, and the audit trail. The story in a real browser is in
tests/web/test_console_campaigns.py.

Channels are on the fake providers (tests/support/population.broadcast_settings: the approved WhatsApp `broadcast`
template in id and en). ManualClock starts Monday 2026-01-05 09:00 WIB, outside quiet hours.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bot.app import Sapa, build
from bot.console import campaign_recipients
from store import loyalty
from store.consents import record as consent
from store.customers import get_or_create_identity
from store.models import AuditEntry, Broadcast, BroadcastRecipient, Customer, Segment
from tests.console.conftest import add_staff, another_browser, csrf, notice, signed_in_client
from tests.support.population import BROADCAST_TEMPLATE, broadcast_settings
from tests.support.providers import drain

MESSAGES = {"message_id": "Halo {{ first_name }}, poin Anda {{ points }}. Promo akhir tahun di {{ company }}!",
            "message_en": "Hi {{ first_name }}, you have {{ points }} points. Year-end offer at {{ company }}!"}


@pytest.fixture
def sapa(db_url: str, fakes: Any, clock: Any, interpreter: Any, database: Any) -> Iterator[Sapa]:
    sapa = build(broadcast_settings(db_url, fakes), clock=clock, interpreter=interpreter, database=database,
                 model_cache=None)
    yield sapa
    sapa.stop_background()


def customer(sapa: Sapa, channel: str, address: str, name: str, *, consent_given: bool | None = True,
             tier: str | None = None, language: str = "id") -> int:
    """A customer known on `channel` (WhatsApp: their window is closed, they never wrote), with a marketing answer."""
    now = sapa.clock.now()
    with sapa.database.unit_of_work() as session:
        phone = address if channel in ("whatsapp", "sms") else None
        identity, _ = get_or_create_identity(session, channel, address, now=now, phone=phone)
        row = session.get_one(Customer, identity.customer_id)
        row.name, row.language = name, language
        if consent_given is not None:
            consent(session, row.id, "marketing", consent_given, channel=channel, evidence="ya", now=now)
        if tier is not None:
            account = loyalty.get_account(session, sapa.settings, row.id, now)
            account.tier = tier
        return row.id


def browser_of(client: TestClient) -> TestClient:
    """Another browser on the app, on the public HTTPS address the settings give (the cookies are Secure there)."""
    return another_browser(client, base_url="https://sapa.example.test")


def marketer(client: TestClient, sapa: Sapa, role: str = "marketing") -> TestClient:
    add_staff(sapa, "Maya", f"maya.{role}@example.co.id", role)
    return signed_in_client(browser_of(client), f"maya.{role}@example.co.id")


def token(browser: TestClient) -> str:
    return csrf(browser.get("/console/campaigns/segments").text)


def post(browser: TestClient, path: str, data: Any) -> Any:
    """Submit a form with the page's CSRF token; the answer is not followed."""
    fields: dict[str, list[str]] = {"csrf_token": [token(browser)]}
    for key, value in (data.items() if isinstance(data, dict) else data):
        fields.setdefault(key, []).append(value)
    return browser.post(path, data=fields, follow_redirects=False)


def audit(sapa: Sapa, action: str) -> list[AuditEntry]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return list(session.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars())


def compose(browser: TestClient, **overrides: Any) -> Any:
    fields: dict[str, Any] = {"name": "Promo akhir tahun", **MESSAGES, "channel_1": "whatsapp", "channel_2": "sms",
                              "channel_3": "telegram", "segment": ""}
    fields.update(overrides)
    return post(browser, "/console/campaigns/broadcasts", fields)


def created_id(answer: Any) -> int:
    assert answer.status_code == 303, answer.text
    found = re.search(r"/broadcasts/(\d+)\?done=created", answer.headers["location"])
    assert found, answer.headers["location"]
    return int(found.group(1))


def run_to_the_end(sapa: Sapa, clock: Any, broadcast_id: int) -> str:
    for _ in range(40):
        sapa.runner.run_due()
        drain(sapa, clock, rounds=200)
        with sapa.database.unit_of_work(read_only=True) as session:
            status = session.get_one(Broadcast, broadcast_id).status
        if status in ("done", "cancelled"):
            return status
        clock.advance(timedelta(seconds=3))
    return status


def text_of(page: str) -> str:
    """What a person reads: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


# --- segments ------------------------------------------------------------------------------------------------------


def test_a_marketer_builds_a_segment_sees_the_count_and_a_sample_and_saves_it(client: TestClient, sapa: Sapa) -> None:
    gold = [customer(sapa, "telegram", str(7000 + i), f"Emas {i}", tier="gold") for i in range(3)]
    customer(sapa, "telegram", "7100", "Perak", tier="silver")
    customer(sapa, "sms", "+6281300000001", "Emas Tanpa Izin", consent_given=None, tier="gold")
    browser = marketer(client, sapa)

    shown = browser.get("/console/campaigns/segments", params=[("loyalty_tier", "gold")])
    assert shown.status_code == 200
    page = text_of(shown.text)
    assert "4 pelanggan cocok · 3 boleh menerima pemasaran" in page
    assert "Terjangkau lewat Telegram 3" in page and "Belum pernah memberi izin pemasaran 1" in page
    assert all(f"#{cid} Emas" in page for cid in gold) and "Perak" not in page
    assert "+6281300000001" not in shown.text  # no address in a sample
    previewed = audit(sapa, "segment.previewed")
    assert previewed and sorted(previewed[-1].detail["customers_shown"]) == sorted(gold)

    live = browser.get("/console/campaigns/segments/count", params=[("loyalty_tier", "gold"), ("channel", "sms")])
    assert "1 pelanggan cocok · 0 boleh menerima pemasaran" in text_of(live.text)

    saved = post(browser, "/console/campaigns/segments", [("name", "emas_telegram"), ("loyalty_tier", "gold"),
                                                          ("channel", "telegram")])
    assert saved.status_code == 303
    landed = browser.get(saved.headers["location"])
    assert notice(landed.text) == "Segmen disimpan."
    assert "emas_telegram" in landed.text and "loyalty_tier=gold channel=telegram" in landed.text
    with sapa.database.unit_of_work(read_only=True) as session:
        row = session.execute(select(Segment)).scalar_one()
        assert row.filters == {"loyalty_tier": ["gold"], "channel": ["telegram"]}
        assert row.created_by.startswith("agent:")
    assert audit(sapa, "segment.saved")[0].detail["name"] == "emas_telegram"

    deleted = post(browser, "/console/campaigns/segments/delete", {"name": "emas_telegram"})
    assert notice(browser.get(deleted.headers["location"]).text).startswith("Segmen dihapus.")
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(Segment)).scalar_one() == 0


def test_filters_that_cannot_be_used_are_explained_and_nothing_is_saved(client: TestClient, sapa: Sapa) -> None:
    browser = marketer(client, sapa)
    answer = post(browser, "/console/campaigns/segments", [("name", "rusak"), ("min_points", "500"),
                                                           ("max_points", "100")])
    assert answer.status_code == 422
    assert "filter 'min_points' is above 'max_points': nobody could match" in text_of(answer.text)
    assert 'value="500"' in answer.text and 'value="rusak"' in answer.text  # the form keeps what was typed
    answer = post(browser, "/console/campaigns/segments", [("name", "dua kata"), ("vip", "true")])
    assert answer.status_code == 422 and "use 1-80 characters without spaces" in text_of(answer.text)
    shown = browser.get("/console/campaigns/segments", params={"min_points": "-3"})
    assert shown.status_code == 422 and "filter 'min_points': must be 0 or more" in text_of(shown.text)
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(Segment)).scalar_one() == 0


# --- the composer and the preview ------------------------------------------------------------------------------------


def test_the_composer_makes_a_draft_whose_page_shows_who_gets_it_how_it_reads_and_the_rules(
        client: TestClient, sapa: Sapa) -> None:
    customer(sapa, "whatsapp", "+6281400000001", "Wati Lestari")
    customer(sapa, "sms", "+6281300000002", "Esem Saja")
    customer(sapa, "telegram", "5001", "Tele Gram", language="en")
    customer(sapa, "telegram", "5002", "Stop Saja", consent_given=False)
    browser = marketer(client, sapa)

    form = browser.get("/console/campaigns/broadcasts/new")
    assert form.status_code == 200
    assert "Jam tenang 21:00–08:00" in form.text and "maks. 2 siaran per pelanggan dalam 7 hari" in form.text

    broadcast_id = created_id(compose(browser))
    page = browser.get(f"/console/campaigns/broadcasts/{broadcast_id}?done=created")
    assert notice(page.text).startswith("Draf siaran dibuat.")
    words = text_of(page.text)
    assert "3 akan menerima bila dipilih sekarang · dari 4 yang cocok" in words
    assert "WhatsApp 1" in words and "SMS 1" in words and "Telegram 1" in words
    assert "berhenti berlangganan (STOP) 1" in words
    # How it reads: the text with the opt-out line, and WhatsApp's approved template filled in.
    assert "Balas STOP untuk berhenti menerima info promo dari PT Contoh Sejahtera." in page.text
    assert f"Templat WhatsApp {BROADCAST_TEMPLATE}, diisi:" in words
    assert "{{1}} name" in words and "{{2}} text" in words
    assert "1 bagian SMS" in words or "2 bagian SMS" in words
    assert "Bahasa EN" in words and "Year-end offer at PT Contoh Sejahtera!" in page.text
    assert [e.subject_id for e in audit(sapa, "broadcast.previewed")] == [str(broadcast_id)]
    with sapa.database.unit_of_work(read_only=True) as session:
        made = session.get_one(Broadcast, broadcast_id)
        assert made.status == "draft" and made.channels == ["whatsapp", "sms", "telegram"]
        assert made.created_by.startswith("agent:")


def test_a_broadcast_without_the_default_language_or_a_channel_is_refused_clearly_and_not_made(
        client: TestClient, sapa: Sapa) -> None:
    browser = marketer(client, sapa)
    answer = compose(browser, message_id="")
    assert answer.status_code == 422
    assert "messages.id: the default language's text is required" in text_of(answer.text)
    assert "Hi {{ first_name }}" in answer.text  # what was typed is still there
    answer = compose(browser, channel_1="", channel_2="", channel_3="")
    assert answer.status_code == 422 and "channels: give channels in preference order" in answer.text
    answer = compose(browser, message_id="Halo {{ alamat }}")
    assert answer.status_code == 422 and "unknown variable alamat" in answer.text
    answer = compose(browser, segment="tidak_ada")
    assert answer.status_code == 422 and "no saved segment named" in answer.text
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(Broadcast)).scalar_one() == 0


def test_a_test_send_reaches_only_the_marketer(client: TestClient, sapa: Sapa, fakes: Any, clock: Any) -> None:
    customer(sapa, "telegram", "5001", "Tele Gram")
    browser = marketer(client, sapa)
    broadcast_id = created_id(compose(browser))
    answer = post(browser, f"/console/campaigns/broadcasts/{broadcast_id}/test",
                  {"channel": "telegram", "to": "424242", "language": "id"})
    assert notice(browser.get(answer.headers["location"]).text).startswith("Pesan uji diantrekan")
    drain(sapa, clock)
    sent = [r for r in fakes.sent("telegram") if str(r.params.get("chat_id")) == "424242"]
    assert len(sent) == 1 and "poin Anda 0. Promo akhir tahun di PT Contoh Sejahtera!" in sent[0].params["text"]
    assert not [r for r in fakes.sent("telegram") if str(r.params.get("chat_id")) == "5001"]
    refused = post(browser, f"/console/campaigns/broadcasts/{broadcast_id}/test",
                   {"channel": "sms", "to": "bukan nomor", "language": "id"})
    assert notice(browser.get(refused.headers["location"]).text) == \
        "Pesan uji tidak dikirim: to: 'bukan nomor' is not a phone number"
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(BroadcastRecipient)).scalar_one() == 0
    assert len(audit(sapa, "broadcast.tested")) == 1


# --- scheduling, progress, recipients, export ------------------------------------------------------------------------


def test_scheduled_now_it_runs_to_100_percent_and_the_recipients_export(client: TestClient, sapa: Sapa,
                                                                       clock: Any) -> None:
    ids = {customer(sapa, "telegram", str(6000 + i), f"Tele {i}") for i in range(3)}
    ids.add(customer(sapa, "whatsapp", "+6281400000009", "Wati Lestari"))
    skipped = customer(sapa, "sms", "+6281300000003", "Tanpa Izin", consent_given=None)
    browser = marketer(client, sapa)
    broadcast_id = created_id(compose(browser))
    base = f"/console/campaigns/broadcasts/{broadcast_id}"

    early = browser.get(f"{base}/export", params={"format": "csv"}, follow_redirects=False)
    assert early.status_code == 303 and "export_not_yet" in early.headers["location"]

    answer = post(browser, f"{base}/schedule", {"when": "now", "at": ""})
    assert notice(browser.get(answer.headers["location"]).text) == "Siaran dijadwalkan."
    assert run_to_the_end(sapa, clock, broadcast_id) == "done"

    page = browser.get(base)
    words = text_of(page.text)
    assert "selesai" in words and "100%" in words and "0 belum selesai" in words
    block = browser.get(f"{base}/progress")
    assert "data-final" in block.text
    tiles = dict(re.findall(r'data-testid="([a-z-]+)">(\d+)<', block.text))
    assert tiles["recipients"] == "5" and tiles["sent"] == "4" and tiles["skipped"] == "1" and tiles["failed"] == "0"

    recipients = browser.get(f"{base}/recipients")
    assert recipients.status_code == 200
    assert "Wati Lestari" in recipients.text and "tanpa izin pemasaran" in recipients.text
    assert "+6281400000009" not in recipients.text and "6000" not in text_of(recipients.text).replace("#", " ")
    only_skipped = browser.get(f"{base}/recipients", params={"outcome": "skipped"})
    assert "Tanpa Izin" in only_skipped.text and "Wati Lestari" not in only_skipped.text
    assert browser.get(f"{base}/recipients", params={"outcome": "nonsense"}).status_code == 400

    exported = browser.get(f"{base}/export", params={"format": "csv"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert {int(r["customer_id"]) for r in rows} == ids | {skipped}
    assert {r["outcome"] for r in rows if int(r["customer_id"]) in ids} <= {"sent", "delivered", "read"}
    assert [r["reason"] for r in rows if int(r["customer_id"]) == skipped] == ["no_consent"]
    assert "address" not in rows[0]
    workbook = browser.get(f"{base}/export", params={"format": "xlsx"})
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(workbook.content), read_only=True).active
    assert sheet is not None and len(list(sheet.iter_rows())) == 6  # the header and five recipients
    assert [e.detail["format"] for e in audit(sapa, "broadcast.recipients_exported")] == ["csv", "xlsx"]
    assert audit(sapa, "broadcast.recipients_viewed")


def test_scheduled_for_later_in_company_time_then_paused_resumed_and_cancelled(client: TestClient, sapa: Sapa,
                                                                              clock: Any) -> None:
    customer(sapa, "telegram", "5001", "Tele Gram")
    browser = marketer(client, sapa)
    broadcast_id = created_id(compose(browser))
    base = f"/console/campaigns/broadcasts/{broadcast_id}"
    refused = post(browser, f"{base}/schedule", {"when": "at", "at": "2026-01-04T10:00"})
    assert "has passed" in notice(browser.get(refused.headers["location"]).text)
    answer = post(browser, f"{base}/schedule", {"when": "at", "at": "2026-01-06T10:00"})
    page = browser.get(answer.headers["location"])
    assert notice(page.text) == "Siaran dijadwalkan." and "06/01/2026 10:00 (Asia/Jakarta)" in page.text
    with sapa.database.unit_of_work(read_only=True) as session:
        made = session.get_one(Broadcast, broadcast_id)
        assert made.status == "scheduled"
        assert made.scheduled_at is not None and made.scheduled_at.astimezone(sapa.settings.tz).hour == 10

    for name, status, words in (("pause", "paused", "Siaran dijeda."), ("resume", "scheduled", "Siaran dilanjutkan."),
                                ("cancel", "cancelled", "Siaran dibatalkan.")):
        answer = post(browser, f"{base}/action", {"name": name})
        assert notice(browser.get(answer.headers["location"]).text).startswith(words)
        with sapa.database.unit_of_work(read_only=True) as session:
            assert session.get_one(Broadcast, broadcast_id).status == status
    again = post(browser, f"{base}/action", {"name": "resume"})
    assert "is cancelled: cannot resume" in notice(browser.get(again.headers["location"]).text)
    assert [e.actor for e in audit(sapa, "broadcast.cancelled")] == [f"agent:{_staff_id(sapa)}"]


def _staff_id(sapa: Sapa) -> int:
    from store.models import Agent

    with sapa.database.unit_of_work(read_only=True) as session:
        return int(session.execute(select(Agent.id).where(Agent.email == "maya.marketing@example.co.id")).scalar_one())


def test_the_progress_block_counts_while_it_runs(client: TestClient, sapa: Sapa, clock: Any) -> None:
    for i in range(4):
        customer(sapa, "telegram", str(6100 + i), f"Tele {i}")
    browser = marketer(client, sapa)
    broadcast_id = created_id(compose(browser, channel_1="telegram", channel_2="", channel_3=""))
    post(browser, f"/console/campaigns/broadcasts/{broadcast_id}/schedule", {"when": "now"})
    sapa.runner.run_due()  # selection
    sapa.runner.run_due()  # the first feed step: everyone queued, nothing sent yet
    block = browser.get(f"/console/campaigns/broadcasts/{broadcast_id}/progress")
    assert "data-final" not in block.text and 'data-testid="percent">0%<' in block.text
    assert "4 belum selesai" in text_of(block.text)
    assert run_to_the_end(sapa, clock, broadcast_id) == "done"
    assert 'data-testid="percent">100%<' in browser.get(f"/console/campaigns/broadcasts/{broadcast_id}/progress").text


# --- who may, CSRF -------------------------------------------------------------------------------------------------

PAGES = ("/console/campaigns", "/console/campaigns/segments", "/console/campaigns/segments/count",
         "/console/campaigns/broadcasts/new", "/console/campaigns/loyalty")


def test_only_marketing_and_admin_open_campaigns(client: TestClient, sapa: Sapa) -> None:
    customer(sapa, "telegram", "5001", "Tele Gram")
    maya = marketer(client, sapa)
    broadcast_id = created_id(compose(maya))
    pages = (*PAGES, f"/console/campaigns/broadcasts/{broadcast_id}",
             f"/console/campaigns/broadcasts/{broadcast_id}/progress",
             f"/console/campaigns/broadcasts/{broadcast_id}/recipients")
    for role in ("customer_service", "account_manager", "supervisor", "management"):
        other = marketer(client, sapa, role)
        for path in pages:
            answer = other.get(path)
            assert answer.status_code == 403, (role, path)
            assert "Peran Anda tidak mengizinkan ini." in answer.text
        refused = post(other, f"/console/campaigns/broadcasts/{broadcast_id}/action", {"name": "cancel"})
        assert refused.status_code == 403
    admin = marketer(client, sapa, "admin")
    assert all(admin.get(path).status_code == 200 for path in pages)
    anonymous = browser_of(client)
    for path in pages:
        answer = anonymous.get(path)
        assert "Masuk" in answer.text and 'name="password"' in answer.text, path
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.get_one(Broadcast, broadcast_id).status == "draft"


def test_a_marketer_cannot_open_a_transcript_or_a_customer(client: TestClient, sapa: Sapa) -> None:
    from tests.support.webchat import WebchatUser

    chat = WebchatUser(another_browser(client), sapa)
    chat.say("halo")
    with sapa.database.unit_of_work(read_only=True) as session:
        from store.models import Conversation

        conversation = session.execute(select(Conversation).order_by(Conversation.id.desc())).scalars().first()
        assert conversation is not None
    maya = marketer(client, sapa)
    for path in (f"/console/conversations/{conversation.id}", f"/console/customers/{conversation.customer_id}",
                 f"/console/conversations/{conversation.id}/messages", "/console/inbox"):
        answer = maya.get(path)
        assert answer.status_code == 403, path
        assert "halo" not in answer.text.lower()  # not a word of the customer's


def test_a_form_without_the_csrf_token_changes_nothing(client: TestClient, sapa: Sapa) -> None:
    customer(sapa, "telegram", "5001", "Tele Gram")
    maya = marketer(client, sapa)
    broadcast_id = created_id(compose(maya))
    forged = [("/console/campaigns/segments", {"name": "palsu", "vip": "true"}),
              ("/console/campaigns/broadcasts", {"name": "Palsu", **MESSAGES, "channel_1": "telegram"}),
              (f"/console/campaigns/broadcasts/{broadcast_id}/schedule", {"when": "now"}),
              (f"/console/campaigns/broadcasts/{broadcast_id}/action", {"name": "cancel"}),
              (f"/console/campaigns/broadcasts/{broadcast_id}/test", {"channel": "telegram", "to": "1"}),
              ("/console/campaigns/loyalty/rewards", {"code": "VCR50", "stock": "1", "change": "stock"})]
    for path, data in forged:
        answer = maya.post(path, data={**data, "csrf_token": "not-the-token"}, follow_redirects=False)
        assert answer.status_code == 403, path
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(Segment)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(Broadcast)).scalar_one() == 1
        assert session.get_one(Broadcast, broadcast_id).status == "draft"


def test_guessed_ids_are_404_and_the_recipients_page_is_paged(client: TestClient, sapa: Sapa, clock: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(5):
        customer(sapa, "telegram", str(6200 + i), f"Tele {i}")
    maya = marketer(client, sapa)
    for path in ("/console/campaigns/broadcasts/999999", "/console/campaigns/broadcasts/²",
                 "/console/campaigns/broadcasts/99999999999999999999999/recipients"):
        assert maya.get(path).status_code == 404, path
    broadcast_id = created_id(compose(maya))
    post(maya, f"/console/campaigns/broadcasts/{broadcast_id}/schedule", {"when": "now"})
    assert run_to_the_end(sapa, clock, broadcast_id) == "done"
    monkeypatch.setattr(campaign_recipients, "PAGE_SIZE", 2)
    first = maya.get(f"/console/campaigns/broadcasts/{broadcast_id}/recipients")
    found = re.search(r'href="\?after=(\d+)"', first.text)
    assert found and first.text.count("<tr><th scope=\"row\">") == 2
    second = maya.get(f"/console/campaigns/broadcasts/{broadcast_id}/recipients", params={"after": found.group(1)})
    assert second.text.count("<tr><th scope=\"row\">") == 2
    assert set(re.findall(r"Tele \d", first.text)).isdisjoint(re.findall(r"Tele \d", second.text))


def test_values_no_database_could_store_are_refused_before_any_query(client: TestClient, sapa: Sapa) -> None:
    customer(sapa, "telegram", "5001", "Tele Gram")
    maya = marketer(client, sapa)
    broadcast_id = created_id(compose(maya))
    answer = post(maya, "/console/campaigns/segments", {"name": "nul\x00segmen", "vip": "true"})
    assert answer.status_code == 422 and "name contains a NUL character" in answer.text
    answer = maya.get("/console/campaigns/segments", params={"vip_tier": "gold\x00"})
    assert answer.status_code == 422
    answer = maya.get("/console/campaigns/segments", params={"min_points": "9" * 30})
    assert answer.status_code == 422 and "filter 'min_points': at most" in text_of(answer.text)
    answer = maya.get("/console/campaigns/segments", params={"last_purchase_within_days": "99999999"})
    assert answer.status_code == 422 and "at most 36,500" in text_of(answer.text)
    answer = compose(maya, name="Nama\x00")
    assert answer.status_code == 422
    far = post(maya, f"/console/campaigns/broadcasts/{broadcast_id}/schedule", {"when": "at", "at": "9999-12-31T23:59"})
    assert notice(maya.get(far.headers["location"]).text) == "Tidak dijadwalkan: at: at most 366 days ahead"
    odd = post(maya, f"/console/campaigns/broadcasts/{broadcast_id}/schedule", {"when": "at", "at": "besok pagi"})
    assert "is not an ISO date-time" in notice(maya.get(odd.headers["location"]).text)
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(Segment)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(Broadcast)).scalar_one() == 1
        assert session.get_one(Broadcast, broadcast_id).status == "draft"
    page = maya.get("/console/campaigns/loyalty", params={"from": "0001-01-01", "to": "0001-12-31"})
    assert page.status_code == 200 and "between 2000-01-01 and a year from today" in text_of(page.text)
