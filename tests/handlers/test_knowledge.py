"""The knowledge base service (issue 17), on SQLite and PostgreSQL: edits follow config.yml's rules, every change is
a revision with its history and rollback, the live texts follow the latest revision (in this process at once, in
another within a second), and "try a question" answers with the current entries. The console's pages are in
tests/console/test_knowledge.py, the whole story in a browser in tests/web/test_console_knowledge.py."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from bot.app import Sapa
from handlers import knowledge
from handlers.knowledge import FaqForm, Invalid
from handlers.knowledge_live import Knowledge
from store import create_database
from store.models import AuditEntry, KnowledgeRevision

ACTOR = "agent:1"


def form_of(sapa: Sapa, key: str, **changes: object) -> FaqForm:
    entry = next(e for e in sapa.knowledge.settings().faq.entries if e.id == key)
    base = FaqForm.of(entry)
    return FaqForm(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def save_faq(sapa: Sapa, form: FaqForm, original: str | None) -> knowledge.Saved:
    with sapa.database.unit_of_work() as session:
        saved = knowledge.save_faq(session, sapa.knowledge, form, original=original, actor=ACTOR,
                                   now=sapa.clock.now())
    sapa.knowledge.invalidate()
    return saved


def problems_of(error: pytest.ExceptionInfo[Invalid]) -> dict[str, str]:
    return {problem.field: problem.message for problem in error.value.problems}


def answer_of(sapa: Sapa, key: str, language: str = "id") -> str:
    return next(e for e in sapa.knowledge.settings().faq.entries if e.id == key).answer[language]  # type: ignore[index]


def test_without_edits_the_texts_are_config_yml(sapa: Sapa) -> None:
    assert sapa.knowledge.settings() is sapa.settings
    assert sapa.knowledge.revision == 0


def test_an_edited_answer_is_the_current_one_at_once_and_the_rest_stays_as_configured(sapa: Sapa) -> None:
    before = sapa.knowledge.settings()
    save_faq(sapa, form_of(sapa, "opening_hours", answer={"id": "Buka 24 jam.", "en": "Open round the clock."}),
             "opening_hours")
    after = sapa.knowledge.settings()
    assert answer_of(sapa, "opening_hours") == "Buka 24 jam."
    assert [e.id for e in after.faq.entries] == [e.id for e in before.faq.entries]  # same place in the list
    assert after.templates == before.templates and after.company == before.company
    assert sapa.settings.faq.entries[0].answer != after.faq.entries[0].answer  # the seed itself is untouched


def test_saving_the_same_text_again_writes_no_revision(sapa: Sapa) -> None:
    form = form_of(sapa, "shipping", answer={"id": "Ongkir gratis.", "en": "Free shipping."})
    assert save_faq(sapa, form, "shipping").changed
    assert not save_faq(sapa, form, "shipping").changed
    with sapa.database.unit_of_work(read_only=True) as session:
        assert len(session.execute(select(KnowledgeRevision)).scalars().all()) == 1


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"answer": {"id": "Buka 24 jam.", "en": ""}}, "answer.en", "missing"),
    ({"answer": {"id": "Buka {% if %}", "en": "Open."}}, "answer.id", "does not parse"),
    ({"answer": {"id": "Halo {{ tanggal }}", "en": "Open."}}, "answer.id", "name }} and {{ company"),
    ({"examples": "  \n "}, "examples", "at least one"),
    ({"question": {"id": "", "en": ""}}, "question.id", "at least one language"),
])
def test_an_edit_follows_the_rules_of_config_yml(sapa: Sapa, changes: dict[str, object], field: str,
                                                 words: str) -> None:
    with pytest.raises(Invalid) as error:
        save_faq(sapa, form_of(sapa, "opening_hours", **changes), "opening_hours")
    assert words in problems_of(error)[field]
    assert sapa.knowledge.revision == 0  # nothing saved


def test_a_new_entry_needs_its_own_valid_id(sapa: Sapa) -> None:
    new = FaqForm(id="opening_hours", question={"id": "Ada parkir?"}, answer={"id": "Ada.", "en": "Yes."},
                  examples="ada parkir ga")
    with pytest.raises(Invalid) as error:
        save_faq(sapa, new, None)
    assert "already the id" in problems_of(error)["id"]
    with pytest.raises(Invalid) as error:
        save_faq(sapa, FaqForm(**{**new.__dict__, "id": "Parkir Mobil"}), None)
    assert "a-z, 0-9 and _" in problems_of(error)["id"]


def test_templates_keep_every_language_parse_and_use_only_the_variables_they_are_given(sapa: Sapa) -> None:
    def save(texts: dict[str, str]) -> None:
        with sapa.database.unit_of_work() as session:
            knowledge.save_template(session, sapa.knowledge, "faq_answer", texts, actor=ACTOR, now=sapa.clock.now())

    with pytest.raises(Invalid) as error:
        save({"id": "{{ answer }}", "en": ""})
    assert "missing" in problems_of(error)["text.en"]
    with pytest.raises(Invalid) as error:
        save({"id": "{{ answer }", "en": "{{ answer }}"})
    assert "does not parse" in problems_of(error)["text.id"]
    with pytest.raises(Invalid) as error:
        save({"id": "{{ answer }} {{ saldo }}", "en": "{{ answer }}"})
    assert "{{ saldo }}" in problems_of(error)["text.id"] and "{{ answer }}" in problems_of(error)["text.id"]
    with pytest.raises(Invalid):  # templates are the code's: none is made up here
        with sapa.database.unit_of_work() as session:
            knowledge.save_template(session, sapa.knowledge, "no_such_text", {"id": "a", "en": "b"}, actor=ACTOR,
                                    now=sapa.clock.now())
    save({"id": "Jawabannya: {{ answer }}", "en": "The answer: {{ answer }}"})
    sapa.knowledge.invalidate()
    assert sapa.knowledge.settings().templates["faq_answer"] == {"id": "Jawabannya: {{ answer }}",
                                                                  "en": "The answer: {{ answer }}"}


def test_history_says_who_changed_what_per_language_and_a_rollback_is_a_new_revision(sapa: Sapa) -> None:
    configured = answer_of(sapa, "warranty", "en")
    first = save_faq(sapa, form_of(sapa, "warranty", answer={"id": "Garansi 2 tahun.", "en": configured}),
                     "warranty").revision
    sapa.clock.advance(timedelta(minutes=5))
    save_faq(sapa, form_of(sapa, "warranty", answer={"id": "Garansi 3 tahun.", "en": "Three years."}), "warranty")
    with sapa.database.unit_of_work(read_only=True) as session:
        seeded, items = knowledge.history(session, sapa.settings, "faq", "warranty")
    assert seeded is not None and seeded["answer"]["en"] == configured
    newest, oldest = items
    assert [(c.field, c.before, c.after) for c in newest.changes] == [
        ("answer.id", "Garansi 2 tahun.", "Garansi 3 tahun."), ("answer.en", configured, "Three years.")]
    assert [c.field for c in oldest.changes] == ["answer.id"]  # only the Indonesian text changed first
    assert newest.revision.actor == ACTOR

    with sapa.database.unit_of_work() as session:
        restored = knowledge.rollback(session, sapa.knowledge, "faq", "warranty", first.id, actor="agent:2",
                                      now=sapa.clock.now())
    sapa.knowledge.invalidate()
    assert restored.restored_from_id == first.id and restored.id > first.id
    assert answer_of(sapa, "warranty") == "Garansi 2 tahun." and answer_of(sapa, "warranty", "en") == configured
    with sapa.database.unit_of_work() as session:
        knowledge.rollback(session, sapa.knowledge, "faq", "warranty", None, actor="agent:2", now=sapa.clock.now())
        assert len(knowledge.history(session, sapa.settings, "faq", "warranty")[1]) == 4  # never rewritten
        actions = session.execute(select(AuditEntry.action).where(AuditEntry.subject_type == "knowledge")
                                  .order_by(AuditEntry.id)).scalars().all()
    sapa.knowledge.invalidate()
    assert answer_of(sapa, "warranty") == next(e for e in sapa.settings.faq.entries if e.id == "warranty").answer["id"]
    assert actions == ["knowledge.faq_updated", "knowledge.faq_updated", "knowledge.rolled_back",
                       "knowledge.rolled_back"]


def test_a_deleted_entry_stops_answering_and_can_be_restored(sapa: Sapa) -> None:
    assert knowledge.try_question(sapa.knowledge.settings(), "garansi tv brp taun kak", "id").answer is not None
    with sapa.database.unit_of_work() as session:
        gone = knowledge.delete_faq(session, sapa.knowledge, "warranty", actor=ACTOR, now=sapa.clock.now())
    sapa.knowledge.invalidate()
    assert "warranty" not in [e.id for e in sapa.knowledge.settings().faq.entries]
    trial = knowledge.try_question(sapa.knowledge.settings(), "garansi tv brp taun kak", "id")
    assert trial.answer is None or trial.answer.entry.id != "warranty"
    with sapa.database.unit_of_work(read_only=True) as session:
        assert [item.state for item in knowledge.catalogue(session, sapa.settings).faq
                if item.id == "warranty"] == ["deleted"]
        earlier = session.execute(select(KnowledgeRevision).where(KnowledgeRevision.id < gone.id)).first()
    assert earlier is None  # deleting a configured entry needs no copy of it: the seed is the older version
    with sapa.database.unit_of_work() as session:
        knowledge.rollback(session, sapa.knowledge, "faq", "warranty", None, actor=ACTOR, now=sapa.clock.now())
    sapa.knowledge.invalidate()
    assert knowledge.try_question(sapa.knowledge.settings(), "garansi tv brp taun kak", "id").answer.entry.id == \
        "warranty"  # type: ignore[union-attr]


def test_try_a_question_uses_the_current_entries_says_how_similar_and_what_the_customer_reads(sapa: Sapa) -> None:
    settings = sapa.knowledge.settings()
    trial = knowledge.try_question(settings, "kak jam buka tokonya jam brp ya?", "id")
    assert trial.answer is not None and trial.answer.entry.id == "opening_hours"
    assert settings.faq.min_similarity <= trial.answer.similarity <= 1
    assert trial.reply.startswith("Baik. Toko PT Contoh Sejahtera buka setiap hari")

    nothing = knowledge.try_question(settings, "ada lowongan kerja untuk kurir?", "en")
    assert nothing.answer is None
    assert nothing.reply.startswith("Sorry, we do not have the answer")
    assert nothing.nearest and all(m.uncovered for m in nothing.nearest)  # why each nearest one does not answer

    save_faq(sapa, FaqForm(id="careers", question={"id": "Ada lowongan kerja?", "en": "Are you hiring?"},
                           answer={"id": "Lihat karier.contoh.co.id.", "en": "See karier.contoh.co.id."},
                           examples="ada lowongan kerja\nlagi buka lowongan ga\nare you hiring",
                           terms="lowongan, kerja, karier, kurir, hiring, job"), None)
    hired = knowledge.try_question(sapa.knowledge.settings(), "ada lowongan kerja untuk kurir?", "en")
    assert hired.answer is not None and hired.answer.entry.id == "careers"
    assert hired.reply == "Certainly. See karier.contoh.co.id."


def test_another_process_on_the_same_database_sees_an_edit_within_a_second(sapa: Sapa, db_url: str) -> None:
    other_database = create_database(db_url)
    try:
        replica = Knowledge(sapa.settings, other_database)
        assert answer_of(sapa, "promos") == replica.settings().faq.entries[
            [e.id for e in replica.settings().faq.entries].index("promos")].answer["id"]
        save_faq(sapa, form_of(sapa, "promos", answer={"id": "Promo baru tiap Jumat.", "en": "New deals Fridays."}),
                 "promos")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            current = {e.id: e for e in replica.settings().faq.entries}["promos"]
            if current.answer["id"] == "Promo baru tiap Jumat.":
                break
            time.sleep(0.05)
        else:
            pytest.fail("the other process kept the old answer for more than 3 seconds")
    finally:
        other_database.dispose()


def test_the_live_texts_cost_one_query_a_second_not_one_per_message(sapa: Sapa) -> None:
    statements: list[str] = []

    def seen(*args: object) -> None:
        if str(args[2]).lstrip().upper().startswith("SELECT"):  # not SQLite's BEGIN
            statements.append(str(args[2]))

    now = [100.0]
    live = Knowledge(sapa.settings, sapa.database, monotonic=lambda: now[0])
    event.listen(sapa.database.engine, "before_cursor_execute", seen)
    try:
        for _ in range(50):
            live.settings()
        assert len(statements) == 1 and "max" in statements[0].lower()
        now[0] += 1.01
        live.settings()
        assert len(statements) == 2
        live.invalidate()
        live.settings()
        assert len(statements) == 3  # a save in this process is seen at once
    finally:
        event.remove(sapa.database.engine, "before_cursor_execute", seen)


def test_a_revision_that_no_longer_validates_leaves_the_configured_entry(sapa: Sapa) -> None:
    with sapa.database.unit_of_work() as session:
        session.add(KnowledgeRevision(kind="faq", key="opening_hours", content={"id": "opening_hours"}, actor=ACTOR,
                                      created_at=sapa.clock.now()))
    sapa.knowledge.invalidate()
    assert answer_of(sapa, "opening_hours") == sapa.settings.faq.entries[0].answer["id"]
