"""The knowledge base pages (issue 17), on SQLite and PostgreSQL: who may read and who may edit, CSRF, validation that
keeps what the editor typed, history with before/after and rollback, "try a question", and the bot answering with the
edited text at once, here and in a second Sapa on the same database (a replica)."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.app import Sapa, build, create_app
from bot.config import Settings
from store import create_database
from store.models import AuditEntry, KnowledgeRevision
from tests.console.conftest import add_staff, another_browser, csrf, notice, signed_in_client
from tests.support.webchat import WebchatUser

QUESTION = "kak jam buka tokonya jam brp ya?"  # answered by opening_hours
NEW_ANSWER = "Mulai Desember toko {{ company }} buka pukul 09.00–22.00 WIB setiap hari."
NEW_ANSWER_SHOWN = "Mulai Desember toko PT Contoh Sejahtera buka pukul 09.00–22.00 WIB setiap hari."


def editor(client: TestClient, sapa: Sapa, role: str = "supervisor", name: str = "Dewi") -> TestClient:
    email = f"{name.lower()}@contoh.id"
    add_staff(sapa, name, email, role)
    return signed_in_client(another_browser(client), email)


def entry_form(page_text: str) -> dict[str, str]:
    """The edit form's fields as the page fills them (inputs and textareas), with its CSRF token."""
    fields = {name: html.unescape(value) for name, value in re.findall(r'<input id="f-[^"]+" type="text" '
                                                                        r'name="([^"]+)" value="([^"]*)"', page_text)}
    fields |= {name: html.unescape(value) for name, value in
               re.findall(r'<textarea id="f-[^"]+" name="([^"]+)"[^>]*>(.*?)</textarea>', page_text, re.S)}
    return {**fields, "csrf_token": csrf(page_text)}


def edit_answer(agent: TestClient, key: str, language: str, text: str) -> tuple[int, str]:
    form = entry_form(agent.get(f"/console/knowledge/faq/{key}").text)
    answer = agent.post(f"/console/knowledge/faq/{key}", data={**form, f"answer_{language}": text})
    return answer.status_code, answer.text


def test_an_editor_changes_a_faq_answer_and_the_bot_answers_with_it_at_once(client: TestClient, sapa: Sapa) -> None:
    customer = WebchatUser(another_browser(client), sapa)
    customer.say("halo")
    customer.say("Rina")
    assert customer.say(QUESTION)[0].startswith("Baik, Rina. Toko PT Contoh Sejahtera buka setiap hari pukul 10.00")
    dewi = editor(client, sapa)

    status, landed = edit_answer(dewi, "opening_hours", "id", NEW_ANSWER)
    assert status == 200
    assert notice(landed) == "Tersimpan. Bot memakai teks baru mulai sekarang."
    assert NEW_ANSWER in html.unescape(landed)  # the form shows the saved text

    assert customer.say(QUESTION) == [f"Baik, Rina. {NEW_ANSWER_SHOWN}"]  # no wait, no restart
    listing = dewi.get("/console/knowledge", params={"show": "edited"}).text
    assert "Jam berapa toko buka?" in listing and ">diubah<" in listing
    assert "Di mana saja lokasi toko Anda?" not in listing  # untouched entries are "from config"
    with sapa.database.unit_of_work(read_only=True) as session:
        audit = session.execute(select(AuditEntry).where(AuditEntry.action == "knowledge.faq_updated")).scalar_one()
    assert audit.actor.startswith("agent:") and audit.detail["key"] == "opening_hours"


def test_an_edited_reply_template_is_what_customers_get(client: TestClient, sapa: Sapa) -> None:
    dewi = editor(client, sapa)
    form = dewi.get("/console/knowledge/templates/faq_answer").text
    landed = dewi.post("/console/knowledge/templates/faq_answer", data={
        "csrf_token": csrf(form), "text_id": "Jawaban kami{% if name %} untuk {{ name }}{% endif %}: {{ answer }}",
        "text_en": "Our answer{% if name %} for {{ name }}{% endif %}: {{ answer }}"})
    assert notice(landed.text) == "Tersimpan. Bot memakai teks baru mulai sekarang."
    customer = WebchatUser(another_browser(client), sapa)
    customer.say("halo")
    customer.say("Rina")
    assert customer.say(QUESTION)[0].startswith("Jawaban kami untuk Rina: Toko PT Contoh Sejahtera buka")


def test_a_mistake_is_refused_next_to_its_field_and_what_was_typed_is_kept(client: TestClient, sapa: Sapa) -> None:
    dewi = editor(client, sapa)
    typed = "Toko buka {% if name %}setiap hari"  # an unclosed {% if %}
    form = entry_form(dewi.get("/console/knowledge/faq/opening_hours").text)
    answer = dewi.post("/console/knowledge/faq/opening_hours", data={**form, "answer_id": typed, "answer_en": ""})
    assert answer.status_code == 422
    assert notice(answer.text) == "Belum disimpan: perbaiki yang ditandai di bawah."
    page = html.unescape(answer.text)
    assert f'name="answer_id" rows="6" aria-invalid="true" aria-describedby="e-answer_id">{typed}</textarea>' in page
    assert re.search(r'id="e-answer_id">[^<]*does not parse', page)
    assert re.search(r'id="e-answer_en">the answer in en is missing', page)
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(KnowledgeRevision)).first() is None

    template = dewi.post("/console/knowledge/templates/csat_thanks", data={
        "csrf_token": form["csrf_token"], "text_id": "Terima kasih, {{ nama_lengkap }}!", "text_en": "Thank you!"})
    assert template.status_code == 422
    assert "uses {{ nama_lengkap }}, which this text is not given" in html.unescape(template.text)
    assert "Terima kasih, {{ nama_lengkap }}!" in html.unescape(template.text)


def test_a_new_entry_answers_new_questions_and_ids_stay_unique(client: TestClient, sapa: Sapa) -> None:
    dewi = editor(client, sapa)
    token = csrf(dewi.get("/console/knowledge/faq/new").text)
    entry = {"csrf_token": token, "id": "parking", "question_id": "Apakah ada parkir?",
             "question_en": "Is there parking?", "answer_id": "Ada parkir gratis untuk mobil dan motor.",
             "answer_en": "There is free parking for cars and motorbikes.",
             "examples": "ada parkir ga kak\ntempat parkir mobil dimana\nis there parking",
             "terms": "parkir, parkiran, parking, tempat, toko"}
    landed = dewi.post("/console/knowledge/faq/new", data=entry)
    assert notice(landed.text) == "Entri dibuat. Bot memakainya mulai sekarang."
    assert landed.url.path == "/console/knowledge/faq/parking"
    again = dewi.post("/console/knowledge/faq/new", data=entry)
    assert again.status_code == 422 and "is already the id of an entry" in html.unescape(again.text)

    customer = WebchatUser(another_browser(client), sapa)
    customer.say("halo")
    customer.say("Rina")
    assert customer.say("apakah toko ada tempat parkir?") == ["Baik, Rina. Ada parkir gratis untuk mobil dan motor."]


def test_a_new_topic_the_classifier_never_learned_is_answered_by_its_new_entry(client: TestClient, sapa: Sapa) -> None:
    """Job questions read as out of scope: before the entry the customer is not understood, after it the entry's
    own words answer (handlers/inquiries.LAST_CHANCE_ROUTES), and a complaint is still a complaint."""
    customer = WebchatUser(another_browser(client), sapa)
    customer.say("halo")
    customer.say("Rina")
    before = customer.say("ada lowongan kerja untuk kurir?")
    assert before and "lowongan" not in before[0] and "karier.contoh.co.id" not in before[0]
    dewi = editor(client, sapa)
    landed = dewi.post("/console/knowledge/faq/new", data={
        "csrf_token": csrf(dewi.get("/console/knowledge/faq/new").text), "id": "careers",
        "question_id": "Ada lowongan kerja?", "question_en": "Are you hiring?",
        "answer_id": "Lowongan kami ada di karier.contoh.co.id.",
        "answer_en": "Our openings are at karier.contoh.co.id.",
        "examples": "ada lowongan kerja\nlagi buka lowongan ga\nare you hiring", "terms": "lowongan, kerja, kurir"})
    assert notice(landed.text) == "Entri dibuat. Bot memakainya mulai sekarang."
    assert customer.say("ada lowongan kerja untuk kurir?") == ["Baik, Rina. Lowongan kami ada di karier.contoh.co.id."]
    assert "karier" not in " ".join(customer.say("barang saya rusak, saya kecewa"))


def test_deleting_an_entry_stops_it_answering_and_history_restores_it(client: TestClient, sapa: Sapa) -> None:
    dewi = editor(client, sapa)
    token = csrf(dewi.get("/console/knowledge/faq/warranty").text)
    landed = dewi.post("/console/knowledge/faq/warranty/delete", data={"csrf_token": token})
    assert notice(landed.text) == "Entri dihapus."
    customer = WebchatUser(another_browser(client), sapa)
    customer.say("halo")
    customer.say("Rina")
    assert "garansi" not in customer.say("garansi tv brp taun kak")[0].lower()
    assert ">dihapus<" in dewi.get("/console/knowledge").text
    landed = dewi.post("/console/knowledge/faq/warranty/rollback", data={"csrf_token": token, "revision": "config"})
    assert notice(landed.text) == "Versi itu dipulihkan sebagai revisi baru."
    assert "garansi" in customer.say("garansi tv brp taun kak")[0].lower()


def test_history_shows_who_changed_what_before_and_after_and_rolls_back(client: TestClient, sapa: Sapa) -> None:
    dewi = editor(client, sapa)
    configured = next(e for e in sapa.settings.faq.entries if e.id == "opening_hours").answer["id"]
    edit_answer(dewi, "opening_hours", "id", "Versi satu.")
    edit_answer(dewi, "opening_hours", "id", "Versi dua.")
    page = dewi.get("/console/knowledge/faq/opening_hours/history")
    text = html.unescape(page.text)
    assert text.count("oleh Dewi") == 2
    assert re.search(r'<th scope="row">Jawaban \(ID\)</th>\s*<td class="before"[^>]*>Versi satu\.</td>\s*'
                     r'<td class="after"[^>]*>Versi dua\.</td>', text)
    assert re.search(r'<td class="before"[^>]*>' + re.escape(configured) +
                     r'</td>\s*<td class="after"[^>]*>Versi satu\.</td>', text)
    with sapa.database.unit_of_work(read_only=True) as session:
        first = session.execute(select(KnowledgeRevision.id).order_by(KnowledgeRevision.id)).scalars().first()
    landed = dewi.post("/console/knowledge/faq/opening_hours/rollback",
                       data={"csrf_token": csrf(page.text), "revision": str(first)})
    assert notice(landed.text) == "Versi itu dipulihkan sebagai revisi baru."
    assert f"memulihkan #{first}" in landed.text and landed.text.count("Revisi #") == 3  # history kept whole
    customer = WebchatUser(another_browser(client), sapa)
    customer.say("halo")
    customer.say("Rina")
    assert customer.say(QUESTION) == ["Baik, Rina. Versi satu."]


def test_try_a_question_shows_the_answering_entry_its_similarity_or_that_none_answers(client: TestClient,
                                                                                     sapa: Sapa) -> None:
    agent = editor(client, sapa, "customer_service", "Sari")  # any signed-in member of staff may try
    page = html.unescape(agent.get("/console/knowledge/try", params={"q": QUESTION}).text)
    assert "Dijawab oleh entri opening_hours" in page
    score = re.search(r'class="kb-score">Kemiripan (\d\.\d\d) \(ambang 0\.10\)', page)
    assert score and 0.1 <= float(score.group(1)) <= 1
    assert "Baik. Toko PT Contoh Sejahtera buka setiap hari" in page  # what the customer would read
    assert "Bot membacanya sebagai: ask_info" in page and "Bot tidak akan mencari di FAQ" not in page

    page = html.unescape(agent.get("/console/knowledge/try", params={"q": "ada lowongan kerja untuk kurir?"}).text)
    assert "Tidak ada entri yang menjawab: pelanggan ditawari petugas." in page
    assert "Entri terdekat lainnya" in page and "Kata yang tidak dikenal entri ini:" in page
    # Read as out of scope, not as a question: no other route takes it, so the FAQ is still consulted.
    assert "Bot tidak akan mencari di FAQ" not in page

    page = html.unescape(agent.get("/console/knowledge/try", params={"q": "barang saya rusak, saya kecewa"}).text)
    assert "Bot tidak akan mencari di FAQ untuk pesan ini: pesan ini terbaca sebagai complaint" in page

    dewi = editor(client, sapa)
    edit_answer(dewi, "opening_hours", "id", "Buka 24 jam.")
    page = html.unescape(agent.get("/console/knowledge/try", params={"q": QUESTION}).text)
    assert "Baik. Buka 24 jam." in page  # the current (edited) text


def test_search_finds_entries_and_templates_by_their_words(client: TestClient, sapa: Sapa) -> None:
    agent = editor(client, sapa, "customer_service", "Sari")
    page = agent.get("/console/knowledge", params={"q": "faktur"}).text
    assert "/console/knowledge/faq/tax_invoice" in page and "/console/knowledge/faq/opening_hours" not in page
    page = agent.get("/console/knowledge", params={"q": "csat_thanks"}).text
    assert "/console/knowledge/templates/csat_thanks" in page and "/console/knowledge/faq/" not in page
    page = agent.get("/console/knowledge").text  # without a search, one section at a time: the FAQ first
    assert "/console/knowledge/faq/tax_invoice" in page and "/console/knowledge/templates/" not in page
    page = agent.get("/console/knowledge", params={"section": "templates"}).text
    assert "/console/knowledge/templates/csat_thanks" in page and "/console/knowledge/faq/" not in page


@pytest.mark.parametrize("role", ["customer_service", "marketing"])
def test_other_roles_read_but_get_403_on_every_change(client: TestClient, sapa: Sapa, role: str) -> None:
    agent = editor(client, sapa, role, "Sari")
    for path in ("/console/knowledge", "/console/knowledge/faq/opening_hours",
                 "/console/knowledge/faq/opening_hours/history", "/console/knowledge/templates/greeting",
                 "/console/knowledge/templates/greeting/history", f"/console/knowledge/try?q={QUESTION}"):
        answer = agent.get(path)
        assert answer.status_code == 200, path
        assert 'action="/console/knowledge/faq/opening_hours/delete"' not in answer.text
    page = agent.get("/console/knowledge/faq/opening_hours").text
    assert "mengubah perlu peran supervisor, manajemen, atau admin" in page
    assert "<button>Simpan</button>" not in page and " readonly>" in page
    assert agent.get("/console/knowledge/faq/new").status_code == 403
    form = entry_form(page)
    for path, data in (("/console/knowledge/faq/opening_hours", {**form, "answer_id": "Diubah."}),
                       ("/console/knowledge/faq/new", {**form, "id": "baru"}),
                       ("/console/knowledge/faq/opening_hours/delete", {"csrf_token": form["csrf_token"]}),
                       ("/console/knowledge/faq/opening_hours/rollback", {"csrf_token": form["csrf_token"],
                                                                          "revision": "config"}),
                       ("/console/knowledge/templates/greeting", {"csrf_token": form["csrf_token"], "text_id": "x",
                                                                  "text_en": "y"}),
                       ("/console/knowledge/templates/greeting/rollback", {"csrf_token": form["csrf_token"],
                                                                           "revision": "config"})):
        assert agent.post(path, data=data).status_code == 403, path
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(KnowledgeRevision)).first() is None


@pytest.mark.parametrize("path", ["/console/knowledge", "/console/knowledge/try?q=jam",
                                  "/console/knowledge/faq/opening_hours", "/console/knowledge/faq/new",
                                  "/console/knowledge/templates/greeting/history"])
def test_anonymous_visitors_get_the_sign_in_page(client: TestClient, path: str) -> None:
    answer = client.get(path, follow_redirects=False)
    assert answer.status_code == 401 and "<h1>Masuk</h1>" in answer.text


def test_anonymous_and_cross_site_posts_change_nothing(client: TestClient, sapa: Sapa) -> None:
    anonymous = client.post("/console/knowledge/faq/opening_hours", data={"answer_id": "x"}, follow_redirects=False)
    assert anonymous.status_code == 401
    dewi = editor(client, sapa)
    form = entry_form(dewi.get("/console/knowledge/faq/opening_hours").text)
    forged = dewi.post("/console/knowledge/faq/opening_hours", data={**form, "csrf_token": "forged",
                                                                      "answer_id": "Diretas."})
    assert forged.status_code == 403
    missing = {key: value for key, value in form.items() if key != "csrf_token"}
    assert dewi.post("/console/knowledge/faq/opening_hours/delete", data=missing).status_code == 403
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(KnowledgeRevision)).first() is None


def test_unknown_entries_and_odd_ids_are_not_found(client: TestClient, sapa: Sapa) -> None:
    dewi = editor(client, sapa)
    for path in ("/console/knowledge/faq/no_such_entry", "/console/knowledge/templates/no_such_text",
                 "/console/knowledge/faq/..%2Fetc", "/console/knowledge/faq/BESAR/history"):
        assert dewi.get(path).status_code == 404, path


@pytest.fixture
def replica(sapa: Sapa, settings: Settings, db_url: str) -> Iterator[TestClient]:
    """A second Sapa process's app on the same database (its own engine, its own live texts)."""
    other = build(settings, clock=sapa.clock, interpreter=sapa.interpreter, database=create_database(db_url),
                  model_cache=None)
    try:
        with TestClient(create_app(other, background=False)) as client:
            yield client
    finally:
        other.stop_background()
        other.database.dispose()


def test_a_second_sapa_on_the_same_database_answers_with_the_edit_within_a_second(
        client: TestClient, sapa: Sapa, replica: TestClient) -> None:
    customer = WebchatUser(replica, sapa)
    customer.say("halo")
    customer.say("Rina")
    assert "10.00–21.00" in customer.say(QUESTION)[0]  # the replica has read (and cached) the configured text
    edit_answer(editor(client, sapa), "opening_hours", "id", NEW_ANSWER)
    deadline = time.monotonic() + 3
    while (replies := customer.say(QUESTION)) != [f"Baik, Rina. {NEW_ANSWER_SHOWN}"]:
        assert time.monotonic() < deadline, f"the replica still answers {replies}"
        time.sleep(0.2)
