"""The knowledge base (issue 17): FAQ entries and reply templates as the console lists them, edits with the same
rules as `config.yml`, their history and rollback, and "which entry would answer this question".

Each edit is a revision (store/knowledge.py); the texts the bot answers with now are handlers/knowledge_live.py's
`Knowledge`, which every save here invalidates.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError
from pydantic import ValidationError
from sqlalchemy.orm import Session

from bot.config import REQUIRED_TEMPLATES, FaqConfig, FaqEntry, Settings, _faq_problems
from bot.templating import compile_template, render, variables_in
from handlers.inquiries import Match, faq_index
from handlers.knowledge_live import Knowledge, entry_content, overlay
from nlu.interpretation import Interpretation
from store import knowledge as store
from store.audit import record
from store.models import KnowledgeRevision

log = logging.getLogger(__name__)

MAX_TEXT = 4000  # one chat message: WhatsApp's limit is 4,096 characters
MAX_QUESTION = 300
MAX_EXAMPLES = 50
MAX_TERMS = 100
MAX_NOTE = 300
_ID = re.compile(r"^[a-z0-9_]+$")
ANSWER_VARIABLES = ("name", "company")  # what an FAQ answer is rendered with (handlers/inquiries.answer_question)


# --- what the console lists --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaqItem:
    id: str
    entry: FaqEntry | None  # None: deleted
    seed: FaqEntry | None  # None: added in the console
    revision: KnowledgeRevision | None

    @property
    def state(self) -> str:
        """seed (as configured), edited, new (not in config), deleted."""
        if self.revision is None:
            return "seed"
        if self.entry is None:
            return "deleted"
        return "edited" if self.seed is not None else "new"


@dataclass(frozen=True)
class TemplateItem:
    name: str
    texts: dict[str, str]
    seed: dict[str, str]
    revision: KnowledgeRevision | None
    required: bool
    variables: tuple[str, ...]  # what the text may use

    @property
    def state(self) -> str:
        return "seed" if self.revision is None else "edited"


@dataclass(frozen=True)
class Catalogue:
    faq: list[FaqItem]
    templates: list[TemplateItem]


def catalogue(session: Session, seed: Settings) -> Catalogue:
    revisions = store.current(session)
    current = overlay(seed, revisions)
    seeded = {entry.id: entry for entry in seed.faq.entries}
    faq = [FaqItem(entry.id, entry, seeded.get(entry.id), revisions.get(("faq", entry.id)))
           for entry in current.faq.entries]
    shown = {item.id for item in faq}
    faq.extend(FaqItem(key, None, seeded.get(key), row) for (kind, key), row in sorted(revisions.items())
               if kind == "faq" and key not in shown and row.content is None)
    templates = [TemplateItem(name, texts, dict(seed.templates[name]), revisions.get(("template", name)),
                              name in REQUIRED_TEMPLATES, allowed_variables(seed, name))
                 for name, texts in sorted(current.templates.items())]
    return Catalogue(faq, templates)


def faq_item(session: Session, seed: Settings, key: str) -> FaqItem | None:
    return next((item for item in catalogue(session, seed).faq if item.id == key), None)


def template_item(session: Session, seed: Settings, name: str) -> TemplateItem | None:
    return next((item for item in catalogue(session, seed).templates if item.name == name), None)


def allowed_variables(seed: Settings, name: str) -> tuple[str, ...]:
    """The variables a template is rendered with: those its configured texts use, and the company's name (every
    text gets it). An edit may use no other: the code that sends it gives nothing else, and a missing variable stops
    the reply."""
    used = {"company"}
    for text in seed.templates.get(name, {}).values():
        try:
            used |= variables_in(text)
        except TemplateError:
            continue
    return tuple(sorted(used))


# --- edits -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    field: str  # "id", "question.en", "answer.id", "examples", "terms", "text.en", "" for the whole entry
    message: str


class Invalid(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class FaqForm:
    """What the editor typed: texts per language, examples one per line, terms separated by commas."""

    id: str
    question: dict[str, str] = field(default_factory=dict)
    answer: dict[str, str] = field(default_factory=dict)
    examples: str = ""
    terms: str = ""
    note: str = ""

    @classmethod
    def of(cls, entry: FaqEntry) -> FaqForm:
        return cls(id=entry.id, question={str(k): v for k, v in entry.question.items()},
                   answer={str(k): v for k, v in entry.answer.items()},
                   examples="\n".join(entry.examples), terms=", ".join(entry.terms))

    def examples_list(self) -> list[str]:
        return [line.strip() for line in self.examples.splitlines() if line.strip()]

    def terms_list(self) -> list[str]:
        return [term.strip() for term in re.split(r"[,\n]", self.terms) if term.strip()]


def check_faq(form: FaqForm, languages: Iterable[str]) -> tuple[dict[str, Any], list[Problem]]:
    """The entry the form describes and what is wrong with it: the rules of `faq.entries` in config.yml."""
    languages = tuple(languages)
    problems: list[Problem] = []
    key = form.id.strip()
    if not _ID.match(key) or len(key) > 120:
        problems.append(Problem("id", "use a short key of a-z, 0-9 and _ (e.g. opening_hours)"))
    question = {lang: text.strip() for lang, text in form.question.items() if lang in languages and text.strip()}
    answer = {lang: text.strip() for lang, text in form.answer.items() if lang in languages and text.strip()}
    if not question:
        problems.append(Problem(f"question.{languages[0]}", "write the question in at least one language"))
    for lang, text in question.items():
        if len(text) > MAX_QUESTION:
            problems.append(Problem(f"question.{lang}", f"{MAX_QUESTION} characters at most"))
    for lang in languages:
        if lang not in answer:
            problems.append(Problem(f"answer.{lang}", f"the answer in {lang} is missing (every language needs one)"))
        elif len(answer[lang]) > MAX_TEXT:
            problems.append(Problem(f"answer.{lang}", f"{MAX_TEXT} characters at most"))
    examples, terms = form.examples_list(), form.terms_list()
    if not examples:
        problems.append(Problem("examples", "give at least one way customers ask it, one per line"))
    if len(examples) > MAX_EXAMPLES or any(len(example) > MAX_QUESTION for example in examples):
        problems.append(Problem("examples", f"{MAX_EXAMPLES} lines at most, {MAX_QUESTION} characters each"))
    if len(terms) > MAX_TERMS or any(len(term) > 60 for term in terms):
        problems.append(Problem("terms", f"{MAX_TERMS} words at most, 60 characters each"))
    content = {"id": key, "question": question, "examples": examples, "answer": answer, "terms": terms}
    # The answers render with the variables an answer gets, on both sides of an {% if name %}: config's own check,
    # made on each answer given even when other fields are wrong, so every mistake is shown at once.
    fields: dict[str, Any] = {"id": "entry", "question": question, "examples": tuple(examples), "answer": answer,
                              "terms": tuple(terms)}
    unchecked = FaqEntry.model_construct(**fields)
    for message in _faq_problems(FaqConfig.model_construct(entries=(unchecked,)), languages):
        found = re.match(r"faq\.entry\.answer\.(\w+)\s*(.*)", message)
        if found and "is missing" not in found.group(2):  # said above, in the editor's words
            problems.append(Problem(f"answer.{found.group(1)}", found.group(2)))
    if problems:
        return content, problems
    try:
        FaqEntry.model_validate(content)
    except ValidationError as exc:
        return content, [Problem(".".join(str(p) for p in error["loc"]), error["msg"]) for error in exc.errors()]
    return content, problems


def check_template(seed: Settings, name: str, texts: Mapping[str, str]) -> tuple[dict[str, str], list[Problem]]:
    """A reply text per language: every language present, each one parses, and uses only the variables the code
    that sends it gives."""
    problems: list[Problem] = []
    cleaned: dict[str, str] = {str(lang): texts.get(lang, "").strip() for lang in seed.languages}
    allowed = set(allowed_variables(seed, name))
    for lang, text in cleaned.items():
        where = f"text.{lang}"
        if not text:
            problems.append(Problem(where, f"the text in {lang} is missing (every language needs one)"))
            continue
        if len(text) > MAX_TEXT:
            problems.append(Problem(where, f"{MAX_TEXT} characters at most"))
            continue
        try:
            compile_template(text)
            unknown = sorted(variables_in(text) - allowed)
        except TemplateSyntaxError as exc:
            problems.append(Problem(where, f"does not parse: {exc.message} (line {exc.lineno})"))
            continue
        except TemplateError as exc:
            problems.append(Problem(where, f"does not parse: {exc.message}"))
            continue
        if unknown:
            names = ", ".join("{{ " + variable + " }}" for variable in unknown)
            problems.append(Problem(where, f"uses {names}, which this text is not given; it may use "
                                           + ", ".join("{{ " + v + " }}" for v in sorted(allowed))))
    return cleaned, problems


def _whole_config_check(settings: Settings) -> list[Problem]:
    """The overlaid settings must load as config.yml would (the same validators, all of them)."""
    try:
        Settings.model_validate(settings.model_dump())
    except ValidationError as exc:
        return [Problem("", str(error["msg"])) for error in exc.errors()]
    return []


@dataclass(frozen=True)
class Saved:
    revision: KnowledgeRevision
    changed: bool  # False: the text was already this (no revision written)


def save_faq(session: Session, knowledge: Knowledge, form: FaqForm, *, original: str | None, actor: str,
             now: datetime) -> Saved:
    """Save a FAQ entry: `original` is the id edited (None for a new entry). Ids are unique; an entry's id does
    not change (a new entry with another id, and deleting this one, does that). Raises Invalid."""
    seed = knowledge.seed
    content, problems = check_faq(form, seed.languages)
    key = content["id"]
    current = knowledge.current_in(session)
    ids = {entry.id for entry in current.faq.entries}
    if original is None and key in ids:
        problems.append(Problem("id", f"{key!r} is already the id of an entry; choose another"))
    if original is not None and key != original:
        problems.append(Problem("id", "an entry's id does not change"))
    if original is not None and original not in ids:
        problems.append(Problem("", f"there is no FAQ entry {original!r} (deleted meanwhile?)"))
    if problems:
        raise Invalid(problems)
    previous = next((entry for entry in current.faq.entries if entry.id == key), None)
    if previous is not None and entry_content(previous) == content:
        row = store.latest_of(session, "faq", key)
        if row is not None:
            return Saved(row, changed=False)
    entries = tuple(FaqEntry.model_validate(content) if entry.id == key else entry for entry in current.faq.entries)
    if previous is None:
        entries += (FaqEntry.model_validate(content),)
    whole = _whole_config_check(current.model_copy(update={"faq": current.faq.model_copy(update={"entries": entries})}))
    if whole:
        raise Invalid(whole)
    row = store.add(session, "faq", key, content, actor=actor, now=now, note=form.note.strip()[:MAX_NOTE] or None)
    _audit(session, actor, "knowledge.faq_created" if previous is None else "knowledge.faq_updated", row, now)
    return Saved(row, changed=True)


def delete_faq(session: Session, knowledge: Knowledge, key: str, *, actor: str, now: datetime,
               note: str = "") -> KnowledgeRevision:
    current = knowledge.current_in(session)
    if key not in {entry.id for entry in current.faq.entries}:
        raise Invalid([Problem("", f"there is no FAQ entry {key!r}")])
    row = store.add(session, "faq", key, None, actor=actor, now=now, note=note.strip()[:MAX_NOTE] or None)
    _audit(session, actor, "knowledge.faq_deleted", row, now)
    return row


def save_template(session: Session, knowledge: Knowledge, name: str, texts: Mapping[str, str], *, actor: str,
                  now: datetime, note: str = "") -> Saved:
    """Save a reply template's texts. Templates are named by the code that sends them: none is added or deleted
    here (a required one could not be), only their words change. Raises Invalid."""
    seed = knowledge.seed
    if name not in seed.templates:
        raise Invalid([Problem("", f"there is no reply template {name!r}")])
    cleaned, problems = check_template(seed, name, texts)
    if problems:
        raise Invalid(problems)
    current = knowledge.current_in(session)
    if current.templates.get(name) == cleaned:
        row = store.latest_of(session, "template", name)
        if row is not None:
            return Saved(row, changed=False)
    templates = {**current.templates, name: cleaned}
    whole = _whole_config_check(current.model_copy(update={"templates": templates}))
    if whole:
        raise Invalid(whole)
    row = store.add(session, "template", name, cleaned, actor=actor, now=now, note=note.strip()[:MAX_NOTE] or None)
    _audit(session, actor, "knowledge.template_updated", row, now)
    return Saved(row, changed=True)


def rollback(session: Session, knowledge: Knowledge, kind: str, key: str, revision_id: int | None, *, actor: str,
             now: datetime) -> KnowledgeRevision:
    """Make an older revision current again, or (`revision_id` None) the configured seed: a new revision that
    copies it. History is never rewritten. The copy is checked as an edit is (config may have changed since)."""
    seed = knowledge.seed
    if kind not in store.KINDS:
        raise Invalid([Problem("", f"unknown kind {kind!r}")])
    source: KnowledgeRevision | None = None
    if revision_id is None:
        if kind == "faq":
            entry = next((e for e in seed.faq.entries if e.id == key), None)
            content: dict[str, Any] | None = entry_content(entry) if entry is not None else None
        else:
            content = dict(seed.templates[key]) if key in seed.templates else None
        if content is None:
            raise Invalid([Problem("", f"{key!r} is not in config.yml")])
    else:
        source = store.get(session, revision_id)
        if source is None or source.kind != kind or source.key != key:
            raise Invalid([Problem("", f"revision {revision_id} is not a revision of {key!r}")])
        content = source.content
    if kind == "template":
        assert content is not None  # templates are never deleted
        cleaned, problems = check_template(seed, key, content)
        if problems:
            raise Invalid(problems)
        content = dict(cleaned)
    elif content is not None:
        checked, problems = check_faq(FaqForm(id=key, question=dict(content.get("question") or {}),
                                              answer=dict(content.get("answer") or {}),
                                              examples="\n".join(content.get("examples") or ()),
                                              terms=", ".join(content.get("terms") or ())), seed.languages)
        if problems:
            raise Invalid(problems)
        content = checked
    row = store.add(session, kind, key, content, actor=actor, now=now,
                    note=f"rollback to revision {revision_id}" if revision_id else "rollback to config.yml",
                    restored_from_id=source.id if source is not None else None)
    _audit(session, actor, "knowledge.rolled_back", row, now,
           restored_from=source.id if source is not None else "config")
    return row


def _audit(session: Session, actor: str, action: str, row: KnowledgeRevision, now: datetime, **extra: Any) -> None:
    record(session, actor=actor, action=action, subject_type="knowledge", subject_id=row.id, now=now,
           detail={"kind": row.kind, "key": row.key, "revision": row.id, **extra})


# --- history -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    field: str  # "question.id", "answer.en", "examples", "terms", "text.id", "entry"
    before: str | None
    after: str | None


@dataclass(frozen=True)
class HistoryItem:
    revision: KnowledgeRevision
    changes: list[Change]


def _fields(kind: str, content: Mapping[str, Any] | None, languages: Iterable[str]) -> dict[str, str | None]:
    if content is None:
        return {}
    if kind == "template":
        return {f"text.{lang}": content.get(lang) for lang in languages}
    fields: dict[str, str | None] = {}
    for lang in languages:
        fields[f"question.{lang}"] = (content.get("question") or {}).get(lang)
        fields[f"answer.{lang}"] = (content.get("answer") or {}).get(lang)
    fields["examples"] = "\n".join(content.get("examples") or ()) or None
    fields["terms"] = ", ".join(content.get("terms") or ()) or None
    return fields


def changes(kind: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
            languages: Iterable[str]) -> list[Change]:
    """What a revision changed, field by field (per language); a deletion or a re-creation is one change."""
    languages = tuple(languages)
    if before is None and after is None:
        return []
    if after is None:
        return [Change("entry", "present", None)]
    old, new = _fields(kind, before, languages), _fields(kind, after, languages)
    return [Change(name, old.get(name), value) for name, value in new.items() if old.get(name) != value]


def history(session: Session, seed: Settings, kind: str, key: str) -> tuple[dict[str, Any] | None, list[HistoryItem]]:
    """The seed's content and every revision, newest first, each with what it changed from the one before."""
    if kind == "faq":
        entry = next((e for e in seed.faq.entries if e.id == key), None)
        seeded = entry_content(entry) if entry is not None else None
    else:
        seeded = dict(seed.templates[key]) if key in seed.templates else None
    rows = store.history(session, kind, key)  # type: ignore[arg-type]
    items: list[HistoryItem] = []
    for index, row in enumerate(rows):
        before = rows[index + 1].content if index + 1 < len(rows) else seeded
        items.append(HistoryItem(row, changes(kind, before, row.content, seed.languages)))
    return seeded, items


# --- try a question ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    question: str
    answer: Match | None  # the entry that would answer, None when none would
    nearest: list[Match]  # the closest others (all of them when none answers)
    reply: str  # what the customer would be sent (the faq_answer or faq_no_answer text), in `language`
    language: str
    # How the interpreter reads the message: the FAQ answers `ask_info` and anything no other route takes
    # (handlers/inquiries.LAST_CHANCE_ROUTES); a message read as a complaint, a greeting, a request... has its own
    # answer, so an entry that matches it never answers it.
    interpretation: Interpretation | None = None

    @property
    def reaches_faq(self) -> bool:
        if self.interpretation is None or self.interpretation.intent == "ask_info":
            return True
        from handlers import ROUTES  # here: the route table imports most handlers, this module is not among them

        return self.interpretation.intent not in {route.intent for route in ROUTES if route.intent}


def try_question(settings: Settings, text: str, language: str, *, nearest: int = 3,
                 interpretation: Interpretation | None = None) -> Trial:
    """Which entry would answer `text` with these settings (the current ones), how similar it is, and what the
    customer would read; or that none would, and the nearest entries with the words they did not cover."""
    ranked = faq_index(settings.faq).ranked(text)
    answer = ranked[0] if ranked and ranked[0].answers else None
    others = ranked[1:] if answer is not None else ranked
    language = language if language in settings.languages else settings.default_language
    variables = {"company": settings.company.name, "name": ""}
    templates = settings.templates
    if answer is not None:
        texts = {str(lang): text for lang, text in answer.entry.answer.items()}
        body = render(texts.get(language) or texts[settings.default_language], variables)
        reply = render(_pick(templates["faq_answer"], language, settings), {**variables, "answer": body})
    else:
        reply = render(_pick(templates["faq_no_answer"], language, settings), variables)
    return Trial(text, answer, others[:nearest], reply, language, interpretation)


def _pick(texts: Mapping[str, str], language: str, settings: Settings) -> str:
    return texts.get(language) or texts[settings.default_language]
