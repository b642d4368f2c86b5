"""What every console page shares: the Jinja2 environment, the interface language and the page renderer.

Pages are rendered on the server (Jinja2, autoescaped) and work as plain forms; bot/console/static/console.js adds
live updates (server-sent events), countdowns and canned replies in about a hundred lines, so no front-end library
is loaded (htmx was vendored first and removed: nothing here needed it). The interface speaks Indonesian first and
English second: `?lang=en` or `?lang=id` sets the `sapa_lang` cookie, otherwise the browser's Accept-Language
decides, otherwise Indonesian. Each route module registers its own
texts (`texts({...})`) so no module owns everyone's strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bot.limits import parse_id

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
LANGUAGES = ("id", "en")
LANG_COOKIE = "sapa_lang"

_TEXTS: dict[str, dict[str, str]] = {}

environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(("html",)),
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def texts(table: Mapping[str, Mapping[str, str]]) -> None:
    """Add interface texts: {key: {"id": ..., "en": ...}}. A key registered twice must say the same thing."""
    for key, words in table.items():
        if set(words) != set(LANGUAGES):
            raise ValueError(f"console text {key!r} needs exactly {', '.join(LANGUAGES)}")
        if key in _TEXTS and _TEXTS[key] != dict(words):
            raise ValueError(f"console text {key!r} registered twice with different words")
        _TEXTS[key] = dict(words)


def language(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    accepted = request.headers.get("accept-language", "")
    for part in accepted.split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "id"


def translator(lang: str) -> Any:
    def t(key: str, default: str | None = None, **variables: Any) -> str:
        """The text of `key`; `default` (e.g. a raw code from the database) when a key may not exist."""
        words = _TEXTS.get(key)
        if words is None:
            if default is not None:
                return default
            raise KeyError(f"console text {key!r} is not registered")
        text = words[lang]
        return text.format(**variables) if variables else text
    return t


def page(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a console template with the language, its translator and whatever the route passes."""
    lang = language(request)
    html = environment.get_template(template).render(request=request, lang=lang, t=translator(lang), **context)
    response = HTMLResponse(html, status_code=status_code)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, httponly=True, samesite="lax")
    response.headers["Cache-Control"] = "no-store"  # personal data: never cached by the browser or a proxy
    return response



def back(path: str, outcome: str, detail: str | None = None) -> RedirectResponse:
    """After a form: 303 back to `path`, which shows the outcome (`?done=`) and, for a refusal, why (`?detail=`)."""
    query = {"done": outcome, **({"detail": detail[:300]} if detail else {})}
    return RedirectResponse(f"{path}?{urlencode(query)}", status_code=303)


def outcome_notice(request: Request, outcomes: Mapping[str, str], prefix: str) -> dict[str, str] | None:
    """The notice a page shows after `back`: `outcomes` maps each outcome it knows to "ok" or "error"; the words are
    the text `<prefix><outcome>`, and an error says why when the redirect carried it."""
    outcome = request.query_params.get("done")
    if outcome is None or outcome not in outcomes:
        return None
    words = translator(language(request))(f"{prefix}{outcome}")
    detail = request.query_params.get("detail")
    kind = outcomes[outcome]
    return {"kind": kind, "text": f"{words} {detail}" if detail and kind == "error" else words}


def path_id(raw: str, what: str) -> int:
    """A record id from the URL; anything but ASCII digits that fit a BIGINT is a 404, as a missing record is."""
    ident = parse_id(raw)
    if ident is None:
        raise HTTPException(404, f"no such {what}")
    return ident


texts({
    "ticket.kind.complaint": {"id": "keluhan", "en": "complaint"},
    "ticket.kind.request": {"id": "permintaan", "en": "request"},
    "ticket.status.open": {"id": "terbuka", "en": "open"},
    "ticket.status.in_progress": {"id": "diproses", "en": "in progress"},
    "ticket.status.reopened": {"id": "dibuka lagi", "en": "reopened"},
    "ticket.status.resolved": {"id": "selesai", "en": "resolved"},
    "ticket.status.closed": {"id": "ditutup", "en": "closed"},
    "app.name": {"id": "Sapa Konsol", "en": "Sapa Console"},
    "nav.inbox": {"id": "Kotak masuk", "en": "Inbox"},
    "nav.tickets": {"id": "Tiket", "en": "Tickets"},
    "nav.staff": {"id": "Staf", "en": "Staff"},
    "nav.dashboard": {"id": "Dasbor", "en": "Dashboard"},
    "nav.campaigns": {"id": "Kampanye", "en": "Campaigns"},
    "nav.knowledge": {"id": "Basis pengetahuan", "en": "Knowledge base"},
    "nav.password": {"id": "Ganti kata sandi", "en": "Change password"},
    "nav.sign_out": {"id": "Keluar", "en": "Sign out"},
    "nav.skip": {"id": "Lewati ke konten", "en": "Skip to content"},
    "nav.language": {"id": "English", "en": "Bahasa Indonesia"},
    "error.forbidden": {"id": "Peran Anda tidak mengizinkan ini.", "en": "Your role does not allow this."},
    "error.not_found": {"id": "Tidak ditemukan.", "en": "Not found."},
})
