"""The knowledge base in the console (issue 17): FAQ entries and reply templates, per language, with search, edits,
history with rollback, and "try a question".

Everyone signed in reads (agents look answers up); `knowledge.edit` (supervisor, management, admin) changes what
customers are told. The rules, the revisions and the live texts are handlers/knowledge.py's; these routes only
translate forms and pages. After a save the process's live texts are refreshed at once (`Knowledge.invalidate`),
so the next customer message is answered with the new words; other replicas follow within a second.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from bot.console import auth
from bot.console.auth import StaffUser, sapa_of
from bot.console.views import local_time
from bot.console.web import back, outcome_notice, page, texts
from bot.limits import parse_id
from handlers import knowledge
from handlers.knowledge import FaqForm, Invalid, Problem
from store.models import Agent

Reader = Annotated[StaffUser, Depends(auth.signed_in)]
Editor = Annotated[StaffUser, Depends(auth.require("knowledge.edit"))]
_KEY = re.compile(r"^[a-z0-9_]{1,120}$")
MAX_QUERY = 300
OUTCOMES = {"saved": "ok", "created": "ok", "deleted": "ok", "restored": "ok", "unchanged": "ok",
            "refused": "error"}


def mount(app: FastAPI) -> None:
    routes = APIRouter(prefix="/console/knowledge", include_in_schema=False)  # pages, not the API
    get, post = ["GET"], ["POST"]
    routes.add_api_route("", list_page, methods=get, response_class=HTMLResponse)
    routes.add_api_route("/try", try_page, methods=get, response_class=HTMLResponse)
    routes.add_api_route("/faq/new", new_faq_page, methods=get, response_class=HTMLResponse)
    routes.add_api_route("/faq/new", create_faq, methods=post)
    routes.add_api_route("/faq/{key}", faq_page, methods=get, response_class=HTMLResponse)
    routes.add_api_route("/faq/{key}", save_faq, methods=post)
    routes.add_api_route("/faq/{key}/delete", delete_faq, methods=post)
    routes.add_api_route("/faq/{key}/history", faq_history, methods=get, response_class=HTMLResponse)
    routes.add_api_route("/faq/{key}/rollback", faq_rollback, methods=post)
    routes.add_api_route("/templates/{key}", template_page, methods=get, response_class=HTMLResponse)
    routes.add_api_route("/templates/{key}", save_template, methods=post)
    routes.add_api_route("/templates/{key}/history", template_history, methods=get, response_class=HTMLResponse)
    routes.add_api_route("/templates/{key}/rollback", template_rollback, methods=post)
    app.include_router(routes)


def _key(raw: str) -> str:
    if not _KEY.match(raw):
        raise HTTPException(404, "no such entry")
    return raw


def _common(request: Request, staff: StaffUser) -> dict[str, Any]:
    sapa = sapa_of(request)
    return {"staff": staff, "csrf_token": staff.csrf_token, "active": "knowledge",
            "can_edit": staff.can("knowledge.edit"), "languages": sapa.settings.languages,
            "notice": outcome_notice(request, OUTCOMES, "kb.outcome.")}


def _contains(query: str, *texts: Any) -> bool:
    return any(query in str(text).casefold() for text in texts if text)


# --- the list and "try a question" -------------------------------------------------------------------------------

def list_page(request: Request, staff: Reader, q: str = "", show: str = "", section: str = "") -> HTMLResponse:
    """One section at a time (FAQ entries, or the hundred-odd reply texts); a search looks through both."""
    sapa = sapa_of(request)
    query = q.strip()[:MAX_QUERY].casefold()
    with sapa.database.unit_of_work(read_only=True) as session:
        found = knowledge.catalogue(session, sapa.settings)
    faq, templates = found.faq, found.templates
    if query:
        faq = [item for item in faq if _contains(query, item.id, *_faq_texts(item))]
        templates = [item for item in templates if _contains(query, item.name, *item.texts.values())]
    if show == "edited":
        faq = [item for item in faq if item.state != "seed"]
        templates = [item for item in templates if item.state != "seed"]
    section = section if section in ("faq", "templates") else "faq"
    return page(request, "knowledge.html", q=q.strip()[:MAX_QUERY], show=show, faq=faq, templates=templates,
                section=section, both=bool(query), total_faq=len(found.faq), total_templates=len(found.templates),
                **_common(request, staff))


def _faq_texts(item: knowledge.FaqItem) -> list[str]:
    entry = item.entry or item.seed
    if entry is None:
        return []
    return [*entry.question.values(), *entry.answer.values(), *entry.examples, *entry.terms]


def try_page(request: Request, staff: Reader, q: str = "", reply_language: str = "") -> HTMLResponse:
    sapa = sapa_of(request)
    question = q.strip()[:MAX_QUERY]
    languages = sapa.settings.languages
    chosen = reply_language if reply_language in languages else sapa.settings.default_language
    trial = None
    if question:
        understood = sapa.interpreter.interpret(question, chosen, sapa.clock.now())
        trial = knowledge.try_question(sapa.knowledge.settings(), question, chosen, interpretation=understood)
    return page(request, "knowledge_try.html", q=question, reply_language=chosen, trial=trial,
                min_similarity=sapa.settings.faq.min_similarity, **_common(request, staff))


# --- FAQ entries -------------------------------------------------------------------------------------------------

def new_faq_page(request: Request, staff: Editor) -> HTMLResponse:
    return _faq_form(request, staff, None, FaqForm(id=""), [])


def faq_page(key: str, request: Request, staff: Reader) -> HTMLResponse:
    key = _key(key)
    sapa = sapa_of(request)
    with sapa.database.unit_of_work(read_only=True) as session:
        item = knowledge.faq_item(session, sapa.settings, key)
    if item is None:
        raise HTTPException(404, "no such FAQ entry")
    entry = item.entry or item.seed
    form = FaqForm.of(entry) if entry is not None else FaqForm(id=key)
    return _faq_form(request, staff, item, form, [])


def _faq_form(request: Request, staff: StaffUser, item: knowledge.FaqItem | None, form: FaqForm,
              problems: list[Problem], status_code: int = 200) -> HTMLResponse:
    return page(request, "knowledge_faq.html", status_code=status_code, item=item, form=form,
                problems=_by_field(problems), **_common(request, staff))


def _by_field(problems: list[Problem]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for problem in problems:
        grouped.setdefault(problem.field, []).append(problem.message)
    return grouped


def _typed_faq(key: str, question_id: str, question_en: str, answer_id: str, answer_en: str, examples: str,
               terms: str, note: str) -> FaqForm:
    return FaqForm(id=key, question={"id": question_id, "en": question_en}, answer={"id": answer_id, "en": answer_en},
                   examples=examples, terms=terms, note=note)


def create_faq(request: Request, staff: Editor, key: str = Form("", alias="id"), question_id: str = Form(""),
               question_en: str = Form(""), answer_id: str = Form(""), answer_en: str = Form(""),
               examples: str = Form(""), terms: str = Form(""), note: str = Form("")) -> Response:
    form = _typed_faq(key.strip(), question_id, question_en, answer_id, answer_en, examples, terms, note)
    if form.id == "new":
        return _faq_form(request, staff, None, form, [Problem("id", "“new” is reserved; choose another id")], 422)
    return _save_faq(request, staff, form, None)


def save_faq(key: str, request: Request, staff: Editor, question_id: str = Form(""), question_en: str = Form(""),
             answer_id: str = Form(""), answer_en: str = Form(""), examples: str = Form(""), terms: str = Form(""),
             note: str = Form("")) -> Response:
    key = _key(key)
    return _save_faq(request, staff, _typed_faq(key, question_id, question_en, answer_id, answer_en, examples, terms,
                                                note), key)


def _save_faq(request: Request, staff: StaffUser, form: FaqForm, original: str | None) -> Response:
    sapa = sapa_of(request)
    try:
        with sapa.database.unit_of_work() as session:
            saved = knowledge.save_faq(session, sapa.knowledge, form, original=original, actor=staff.actor,
                                       now=sapa.clock.now())
    except Invalid as exc:
        with sapa.database.unit_of_work(read_only=True) as session:
            item = knowledge.faq_item(session, sapa.settings, original) if original else None
        return _faq_form(request, staff, item, form, exc.problems, 422)
    sapa.knowledge.invalidate()
    outcome = "unchanged" if not saved.changed else "created" if original is None else "saved"
    return back(f"/console/knowledge/faq/{saved.revision.key}", outcome)


def delete_faq(key: str, request: Request, staff: Editor, note: str = Form("")) -> Response:
    key = _key(key)
    sapa = sapa_of(request)
    try:
        with sapa.database.unit_of_work() as session:
            knowledge.delete_faq(session, sapa.knowledge, key, actor=staff.actor, now=sapa.clock.now(), note=note)
    except Invalid as exc:
        return back(f"/console/knowledge/faq/{key}", "refused", str(exc))
    sapa.knowledge.invalidate()
    return back(f"/console/knowledge/faq/{key}/history", "deleted")


def faq_history(key: str, request: Request, staff: Reader) -> HTMLResponse:
    return _history(request, staff, "faq", _key(key))


def faq_rollback(key: str, request: Request, staff: Editor, revision: str = Form("")) -> Response:
    return _rollback(request, staff, "faq", _key(key), revision)


# --- reply templates ---------------------------------------------------------------------------------------------

def template_page(key: str, request: Request, staff: Reader) -> HTMLResponse:
    key = _key(key)
    sapa = sapa_of(request)
    with sapa.database.unit_of_work(read_only=True) as session:
        item = knowledge.template_item(session, sapa.settings, key)
    if item is None:
        raise HTTPException(404, "no such template")
    return _template_form(request, staff, item, dict(item.texts), "", [])


def _template_form(request: Request, staff: StaffUser, item: knowledge.TemplateItem, typed: dict[str, str],
                   note: str, problems: list[Problem], status_code: int = 200) -> HTMLResponse:
    names = ", ".join("{{ " + variable + " }}" for variable in item.variables)
    return page(request, "knowledge_template.html", status_code=status_code, item=item, typed=typed, note=note,
                variables_text=names, problems=_by_field(problems), **_common(request, staff))


def save_template(key: str, request: Request, staff: Editor, text_id: str = Form(""), text_en: str = Form(""),
                  note: str = Form("")) -> Response:
    key = _key(key)
    sapa = sapa_of(request)
    typed = {"id": text_id, "en": text_en}
    try:
        with sapa.database.unit_of_work() as session:
            saved = knowledge.save_template(session, sapa.knowledge, key, typed, actor=staff.actor,
                                            now=sapa.clock.now(), note=note)
    except Invalid as exc:
        with sapa.database.unit_of_work(read_only=True) as session:
            item = knowledge.template_item(session, sapa.settings, key)
        if item is None:
            raise HTTPException(404, "no such template") from exc
        return _template_form(request, staff, item, typed, note, exc.problems, 422)
    sapa.knowledge.invalidate()
    return back(f"/console/knowledge/templates/{key}", "saved" if saved.changed else "unchanged")


def template_history(key: str, request: Request, staff: Reader) -> HTMLResponse:
    return _history(request, staff, "template", _key(key))


def template_rollback(key: str, request: Request, staff: Editor, revision: str = Form("")) -> Response:
    return _rollback(request, staff, "template", _key(key), revision)


# --- history and rollback ----------------------------------------------------------------------------------------

def _history(request: Request, staff: StaffUser, kind: str, key: str) -> HTMLResponse:
    sapa = sapa_of(request)
    with sapa.database.unit_of_work(read_only=True) as session:
        seeded, items = knowledge.history(session, sapa.settings, kind, key)
        if seeded is None and not items:
            raise HTTPException(404, "no such entry")
        ids = {int(actor.split(":", 1)[1]) for item in items if (actor := item.revision.actor).startswith("agent:")
               and actor.split(":", 1)[1].isdigit()}
        names = {agent.id: agent.name for agent in session.execute(select(Agent).where(Agent.id.in_(ids))).scalars()}
    base = "faq" if kind == "faq" else "templates"
    rows = [{"item": item, "when": local_time(sapa.settings, item.revision.created_at),
             "who": _who(item.revision.actor, names), "current": index == 0} for index, item in enumerate(items)]
    return page(request, "knowledge_history.html", kind=kind, key=key, base=f"/console/knowledge/{base}/{key}",
                seeded=seeded, rows=rows, **_common(request, staff))


def _who(actor: str, names: dict[int, str]) -> str:
    _, _, number = actor.partition(":")
    return names.get(int(number), actor) if actor.startswith("agent:") and number.isdigit() else actor


def _rollback(request: Request, staff: StaffUser, kind: str, key: str, revision: str) -> Response:
    """`revision`: a revision id of this entry, or "config" for the text config.yml gives."""
    path = f"/console/knowledge/{'faq' if kind == 'faq' else 'templates'}/{key}/history"
    revision_id = None if revision == "config" else parse_id(revision)
    if revision != "config" and revision_id is None:
        return back(path, "refused", "choose a revision")
    sapa = sapa_of(request)
    try:
        with sapa.database.unit_of_work() as session:
            knowledge.rollback(session, sapa.knowledge, kind, key, revision_id, actor=staff.actor,
                               now=sapa.clock.now())
    except Invalid as exc:
        return back(path, "refused", str(exc))
    sapa.knowledge.invalidate()
    return back(path, "restored")


texts({
    "kb.title": {"id": "Basis pengetahuan", "en": "Knowledge base"},
    "kb.intro": {"id": "Jawaban FAQ dan teks balasan yang dikirim bot. Yang belum diubah berasal dari config.yml.",
                 "en": "The FAQ answers and reply texts the bot sends. Those never edited come from config.yml."},
    "kb.search": {"id": "Cari", "en": "Search"},
    "kb.search_placeholder": {"id": "kata dalam pertanyaan, jawaban, atau nama",
                              "en": "a word of a question, answer or name"},
    "kb.only_edited": {"id": "Hanya yang diubah", "en": "Edited only"},
    "kb.apply": {"id": "Terapkan", "en": "Apply"},
    "kb.faq": {"id": "Entri FAQ", "en": "FAQ entries"},
    "kb.templates": {"id": "Teks balasan", "en": "Reply texts"},
    "kb.shown": {"id": "{n} dari {total}", "en": "{n} of {total}"},
    "kb.none_found": {"id": "Tidak ada yang cocok.", "en": "Nothing matches."},
    "kb.new_entry": {"id": "Entri FAQ baru", "en": "New FAQ entry"},
    "kb.state.seed": {"id": "dari config", "en": "from config"},
    "kb.state.edited": {"id": "diubah", "en": "edited"},
    "kb.state.new": {"id": "baru", "en": "new"},
    "kb.state.deleted": {"id": "dihapus", "en": "deleted"},
    "kb.required": {"id": "wajib", "en": "required"},
    "kb.edit": {"id": "Ubah", "en": "Edit"},
    "kb.view": {"id": "Lihat", "en": "View"},
    "kb.history": {"id": "Riwayat", "en": "History"},
    "kb.back": {"id": "Basis pengetahuan", "en": "Knowledge base"},
    "kb.question": {"id": "Pertanyaan ({lang})", "en": "Question ({lang})"},
    "kb.answer": {"id": "Jawaban ({lang})", "en": "Answer ({lang})"},
    "kb.text": {"id": "Teks ({lang})", "en": "Text ({lang})"},
    "kb.id": {"id": "ID (huruf kecil, angka, _)", "en": "ID (lower-case letters, digits, _)"},
    "kb.examples": {"id": "Cara pelanggan bertanya (satu per baris)", "en": "Ways customers ask it (one per line)"},
    "kb.terms": {"id": "Kata lain yang dijawab entri ini (pisahkan dengan koma)",
                 "en": "Other words this entry answers about (separated by commas)"},
    "kb.note": {"id": "Catatan perubahan (opsional)", "en": "Note on the change (optional)"},
    "kb.variables": {"id": "Variabel yang boleh dipakai: {names}", "en": "Variables it may use: {names}"},
    "kb.answer_variables": {"id": "Jawaban boleh memakai {{ name }} dan {{ company }}.",
                            "en": "An answer may use {{ name }} and {{ company }}."},
    "kb.save": {"id": "Simpan", "en": "Save"},
    "kb.create": {"id": "Buat entri", "en": "Create entry"},
    "kb.delete": {"id": "Hapus entri ini", "en": "Delete this entry"},
    "kb.delete_help": {"id": "Bot tidak lagi menjawab dengan entri ini. Bisa dikembalikan dari riwayat.",
                       "en": "The bot stops answering with this entry. It can be restored from its history."},
    "kb.read_only": {"id": "Anda dapat membaca; mengubah perlu peran supervisor, manajemen, atau admin.",
                     "en": "You can read this; changing it needs the supervisor, management or admin role."},
    "kb.errors": {"id": "Belum disimpan: perbaiki yang ditandai di bawah.",
                  "en": "Not saved: fix what is marked below."},
    "kb.deleted_entry": {"id": "Entri ini dihapus. Pulihkan versi lama dari riwayatnya.",
                         "en": "This entry was deleted. Restore an earlier version from its history."},
    "kb.outcome.saved": {"id": "Tersimpan. Bot memakai teks baru mulai sekarang.",
                         "en": "Saved. The bot uses the new text from now on."},
    "kb.outcome.created": {"id": "Entri dibuat. Bot memakainya mulai sekarang.",
                           "en": "Entry created. The bot uses it from now on."},
    "kb.outcome.deleted": {"id": "Entri dihapus.", "en": "Entry deleted."},
    "kb.outcome.restored": {"id": "Versi itu dipulihkan sebagai revisi baru.",
                            "en": "That version was restored as a new revision."},
    "kb.outcome.unchanged": {"id": "Tidak ada perubahan.", "en": "Nothing changed."},
    "kb.outcome.refused": {"id": "Tidak dapat dilakukan:", "en": "Could not be done:"},
    "kb.history_of": {"id": "Riwayat: {name}", "en": "History: {name}"},
    "kb.no_history": {"id": "Belum pernah diubah: teksnya dari config.yml.",
                      "en": "Never edited: its text comes from config.yml."},
    "kb.revision": {"id": "Revisi #{n}", "en": "Revision #{n}"},
    "kb.current": {"id": "berlaku", "en": "current"},
    "kb.by": {"id": "oleh {who}", "en": "by {who}"},
    "kb.restored_from": {"id": "memulihkan #{n}", "en": "restores #{n}"},
    "kb.restored_config": {"id": "memulihkan teks config.yml", "en": "restores config.yml's text"},
    "kb.field": {"id": "Bagian", "en": "Field"},
    "kb.before": {"id": "Sebelum", "en": "Before"},
    "kb.after": {"id": "Sesudah", "en": "After"},
    "kb.entry_deleted": {"id": "(entri dihapus)", "en": "(entry deleted)"},
    "kb.empty": {"id": "(kosong)", "en": "(empty)"},
    "kb.no_change": {"id": "Teks sama dengan sebelumnya.", "en": "Same text as before."},
    "kb.restore": {"id": "Pulihkan versi ini", "en": "Restore this version"},
    "kb.seed_version": {"id": "Versi config.yml", "en": "The config.yml version"},
    "kb.restore_seed": {"id": "Pulihkan teks config.yml", "en": "Restore config.yml's text"},
    "kb.try": {"id": "Coba pertanyaan", "en": "Try a question"},
    "kb.try_help": {"id": "Tulis pertanyaan seperti pelanggan: lihat entri mana yang menjawab, dengan teks saat ini.",
                    "en": "Write a question as a customer would: see which entry answers it, with the current texts."},
    "kb.try_label": {"id": "Pertanyaan pelanggan", "en": "The customer's question"},
    "kb.reply_language": {"id": "Bahasa balasan", "en": "Reply language"},
    "kb.try_button": {"id": "Coba", "en": "Try"},
    "kb.would_answer": {"id": "Dijawab oleh entri {id}", "en": "Answered by entry {id}"},
    "kb.none_answers": {"id": "Tidak ada entri yang menjawab: pelanggan ditawari petugas.",
                        "en": "No entry answers it: the customer is offered an agent."},
    "kb.similarity": {"id": "Kemiripan {score} (ambang {threshold})",
                      "en": "Similarity {score} (threshold {threshold})"},
    "kb.customer_reads": {"id": "Yang dibaca pelanggan", "en": "What the customer reads"},
    "kb.nearest": {"id": "Entri terdekat lainnya", "en": "The nearest other entries"},
    "kb.uncovered": {"id": "Kata yang tidak dikenal entri ini: {words}",
                     "en": "Words this entry does not know: {words}"},
    "kb.read_as": {"id": "Bot membacanya sebagai: {intent} (keyakinan {confidence})",
                   "en": "The bot reads it as: {intent} (confidence {confidence})"},
    "kb.not_faq": {"id": "Bot tidak akan mencari di FAQ untuk pesan ini: pesan ini terbaca sebagai {intent}, yang "
                         "punya jawabannya sendiri. Tambahkan contoh kalimat ke data latih NLU (nlu/data) agar "
                         "terbaca sebagai pertanyaan informasi.",
                   "en": "The bot would not look in the FAQ for this message: it reads as {intent}, which has its "
                         "own answer. Add example phrasings to the NLU training data (nlu/data) so it reads as a "
                         "question for information."},
    "kb.sections": {"id": "Bagian", "en": "Sections"},
    "kb.field.examples": {"id": "Contoh pertanyaan", "en": "Examples"},
    "kb.field.terms": {"id": "Kata lain", "en": "Other words"},
    "kb.field.entry": {"id": "Entri", "en": "Entry"},
    "kb.also_answers": {"id": "juga cocok, peringkat lebih rendah", "en": "also matches, ranked lower"},
})
