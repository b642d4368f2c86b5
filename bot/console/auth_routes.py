"""The console's own pages: sign-in and sign-out, password change, the first admin's set-up link, reset links,
the start page, and the admin's staff page; plus the handlers that turn "not signed in", "not allowed" and "no
such page" into pages.

Every console page for an anonymous visitor is the sign-in page with HTTP 401 (not a redirect: nothing to loop),
remembering where they were going (`next`, only ever a /console path). htmx requests get 401 with HX-Redirect.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.console import auth
from bot.console.auth import Refused, SignInRequired, StaffUser, csrf_checked, require, sapa_of, signed_in
from bot.console.web import page, texts
from bot.http.blocking import run_blocking
from bot.limits import parse_id
from handlers.permissions import GRANTS, ROLE_NAMES, ROLES
from store import staff as staff_store
from store.audit import record
from store.models import Agent

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)  # pages, not the API
SIGN_IN = "/console/sign-in"
NO_REFERRER = {"Referrer-Policy": "no-referrer"}  # pages opened by a one-time link: the token stays in this tab


# --- helpers -----------------------------------------------------------------------------------------------------


def safe_next(value: str | None) -> str:
    """A same-site /console path to go to after signing in; anything else (another site, //host, /\\host) is
    /console."""
    if not value or "\\" in value or any(ord(ch) < 32 for ch in value):
        return "/console"
    parts = urlsplit(value)
    path = parts.path
    if parts.scheme or parts.netloc or not (path == "/console" or path.startswith("/console/")):
        return "/console"
    if ".." in path or "%2e" in path.lower() or "//" in path:  # /console/../api would leave the console
        return "/console"
    if path.startswith((SIGN_IN, "/console/sign-out", "/console/static/")):
        return "/console"
    return value


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def staff_context(staff: StaffUser, active: str = "") -> dict[str, Any]:
    """What every signed-in page passes to staff_base.html."""
    return {"staff": staff, "csrf_token": staff.csrf_token, "active": active}


def optional_staff(request: Request) -> StaffUser | None:
    try:
        return signed_in(request)
    except SignInRequired:
        return None


def sign_in_page(request: Request, *, status_code: int = 200, next_path: str = "/console", error: str | None = None,
                 notice: str | None = None, email: str = "", headers: dict[str, str] | None = None) -> Response:
    token = auth.form_token(request)
    response = page(request, "sign_in.html", status_code=status_code, form_token=token, next_path=next_path,
                    error=error, notice=notice, email=email)
    auth.set_form_cookie(response, request, token)
    response.headers.update(headers or {})
    return response


def _link_base(request: Request) -> str:
    base = sapa_of(request).settings.server.public_base_url
    return (base or str(request.base_url)).rstrip("/")


def _now(request: Request) -> datetime:
    return sapa_of(request).clock.now()


def _link_lifetime(request: Request) -> timedelta:
    return timedelta(hours=sapa_of(request).settings.console.reset_link_hours)


# --- signing in and out ------------------------------------------------------------------------------------------


@router.get("/console/sign-in")
def sign_in_form(request: Request, next: str | None = None, signed_out: str | None = None) -> Response:
    if optional_staff(request) is not None:
        return _redirect(safe_next(next))
    return sign_in_page(request, next_path=safe_next(next), notice="sign_in.signed_out" if signed_out else None)


@router.post("/console/sign-in")
async def sign_in_submit(request: Request, email: Annotated[str, Form()] = "",
                         password: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "") -> Response:
    next_path = safe_next(next)
    if not await auth.form_token_ok(request):
        return sign_in_page(request, status_code=403, next_path=next_path, error="error.form_expired", email=email)
    result = await run_blocking(auth.sign_in, request, email[:320], password[:1024])
    if result.locked_until is not None:
        wait = max(int((result.locked_until - _now(request)).total_seconds()), 1)
        return sign_in_page(request, status_code=429, next_path=next_path, email=email,
                            error="sign_in.locked", headers={"Retry-After": str(wait)})
    if result.token is None:
        # One message whatever went wrong: it must not tell which emails have an account.
        return sign_in_page(request, status_code=401, next_path=next_path, error="sign_in.failed", email=email)
    response = _redirect(next_path)
    auth.set_session_cookie(response, request, result.token)
    return response


@router.post("/console/sign-out")
def sign_out(request: Request, staff: Annotated[StaffUser, Depends(csrf_checked)]) -> Response:
    now = _now(request)
    with sapa_of(request).database.unit_of_work() as session:
        staff_store.delete_session(session, staff.session_id)
        record(session, actor=staff.actor, action="staff.signed_out", subject_type="staff", subject_id=staff.id,
               now=now)
    log.info("console: staff #%s signed out", staff.id)
    response = _redirect(f"{SIGN_IN}?signed_out=1")
    auth.clear_session_cookie(response)
    return response


# --- the start page ----------------------------------------------------------------------------------------------


@router.get("/console")
def home(request: Request, staff: Annotated[StaffUser, Depends(signed_in)]) -> Response:
    if staff.can("inbox.view"):
        return _redirect("/console/inbox")
    granted = [permission for permission in GRANTS.get(staff.role, frozenset())]
    return page(request, "home.html", permissions=sorted(granted), **staff_context(staff))


# --- changing one's password -------------------------------------------------------------------------------------


@router.get("/console/password")
def password_form(request: Request, staff: Annotated[StaffUser, Depends(signed_in)]) -> Response:
    return page(request, "password.html", error=None, notice=None, **staff_context(staff, "password"))


@router.post("/console/password")
def password_submit(request: Request, staff: Annotated[StaffUser, Depends(csrf_checked)],
                    current_password: Annotated[str, Form()] = "", new_password: Annotated[str, Form()] = "",
                    confirm_password: Annotated[str, Form()] = "") -> Response:
    sapa = sapa_of(request)
    with sapa.database.unit_of_work(read_only=True) as session:
        member = staff_store.find_by_id(session, staff.id)
    problem = _new_password_problem(new_password, confirm_password, staff.email)
    if member is None or not auth.verify_password(member.password_hash, current_password[:1024]):
        problem = "password.wrong_current"
    if problem is not None:
        return page(request, "password.html", status_code=400, error=problem, notice=None,
                    **staff_context(staff, "password"))
    new_hash = auth.hash_password(new_password)
    now = _now(request)
    with sapa.database.unit_of_work() as session:
        current = staff_store.find_by_id(session, staff.id)
        assert current is not None
        staff_store.set_password_hash(session, current, new_hash, now=now)
        ended = staff_store.end_sessions(session, staff.id, keep=staff.session_id)  # a thief's browser too
        record(session, actor=staff.actor, action="staff.password_changed", subject_type="staff",
               subject_id=staff.id, now=now, detail={"via": "console", "other_sessions_ended": ended})
    log.info("console: staff #%s changed their password (%s other sessions ended)", staff.id, ended)
    return page(request, "password.html", error=None, notice="password.changed",
                **staff_context(staff, "password"))


def _new_password_problem(password: str, confirmation: str, email: str | None) -> str | None:
    if password != confirmation:
        return "password.mismatch"
    return auth.password_problem(password, email)


# --- the first admin: the set-up link `sapa serve` prints ---------------------------------------------------------


def _setup_page(request: Request, token: str, *, status_code: int = 200, error: str | None = None,
                usable: bool = True, name: str = "", email: str = "") -> Response:
    form = auth.form_token(request)
    response = page(request, "setup.html", status_code=status_code, token=token, form_token=form, error=error,
                    usable=usable, name=name, email=email)
    auth.set_form_cookie(response, request, form)
    response.headers.update(NO_REFERRER)
    return response


def _setup_refusal(request: Request, token: str) -> str | None:
    """Why this set-up link cannot be used now (a text key), or None."""
    with sapa_of(request).database.unit_of_work(read_only=True) as session:
        if staff_store.admin_can_sign_in(session):
            return "setup.admin_exists"
        if staff_store.valid_token(session, token, purpose="setup", now=_now(request)) is None:
            return "link.invalid"
    return None


@router.get("/console/setup")
def setup_form(request: Request, token: str = "") -> Response:
    refusal = _setup_refusal(request, token)
    if refusal is not None:
        return _setup_page(request, "", status_code=400, error=refusal, usable=False)
    return _setup_page(request, token)


class _Stop(Exception):
    """Leave a unit of work (rolled back) with a text key to show."""


@router.post("/console/setup")
async def setup_submit(request: Request, token: Annotated[str, Form()] = "", name: Annotated[str, Form()] = "",
                       email: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
                       confirm_password: Annotated[str, Form()] = "") -> Response:
    if not await auth.form_token_ok(request):
        return _setup_page(request, token, status_code=403, error="error.form_expired", name=name, email=email)
    refusal = await run_blocking(_setup_refusal, request, token)
    if refusal is not None:
        return _setup_page(request, "", status_code=400, error=refusal, usable=False)
    problem = _new_password_problem(password, confirm_password, email)
    if problem is not None:
        return _setup_page(request, token, status_code=400, error=problem, name=name, email=email)
    new_hash = await run_blocking(auth.hash_password, password)
    try:
        session_token = await run_blocking(_create_first_admin, request, token, name, email, new_hash)
    except _Stop as stop:
        return _setup_page(request, "", status_code=400, error=str(stop), usable=False)
    except staff_store.StaffError as exc:
        return _setup_page(request, token, status_code=400, error=f"staff_error.{exc.code}", name=name, email=email)
    response = _redirect("/console")
    auth.set_session_cookie(response, request, session_token)
    return response


def _create_first_admin(request: Request, token: str, name: str, email: str, password_hash: str) -> str:
    now = _now(request)
    with sapa_of(request).database.unit_of_work() as session:
        if staff_store.admin_can_sign_in(session):  # another tab or replica was quicker
            raise _Stop("setup.admin_exists")
        if staff_store.consume_token(session, token, purpose="setup", now=now) is None:
            raise _Stop("link.invalid")
        admin = staff_store.create_staff(session, name=name, email=email, role="admin", roles=ROLES, now=now,
                                         password_hash=password_hash)
        session.flush()
        record(session, actor=f"agent:{admin.id}", action="staff.added", subject_type="staff", subject_id=admin.id,
               now=now, detail={"role": "admin", "via": "setup link"})
        session_token = auth.start_session(session, admin, request, now=now)
        record(session, actor=f"agent:{admin.id}", action="staff.signed_in", subject_type="staff",
               subject_id=admin.id, now=now, detail={"via": "setup link"})
    log.warning("console: the first admin (staff #%s) was created with the set-up link", admin.id)
    return session_token


# --- reset links (new staff, forgotten passwords) -----------------------------------------------------------------


def _reset_page(request: Request, token: str, *, status_code: int = 200, error: str | None = None,
                member: str = "") -> Response:
    form = auth.form_token(request)
    response = page(request, "reset.html", status_code=status_code, token=token, form_token=form, error=error,
                    usable=bool(token), member=member)
    auth.set_form_cookie(response, request, form)
    response.headers.update(NO_REFERRER)
    return response


def _reset_target(request: Request, token: str) -> Agent | None:
    """The active member of staff this unused, unexpired reset link is for."""
    with sapa_of(request).database.unit_of_work(read_only=True) as session:
        found = staff_store.valid_token(session, token, purpose="reset", now=_now(request))
        member = staff_store.find_by_id(session, found.staff_id) if found and found.staff_id else None
    return member if member is not None and member.active else None


@router.get("/console/reset")
def reset_form(request: Request, token: str = "") -> Response:
    member = _reset_target(request, token)
    if member is None:
        return _reset_page(request, "", status_code=400, error="link.invalid")
    return _reset_page(request, token, member=member.name)


@router.post("/console/reset")
async def reset_submit(request: Request, token: Annotated[str, Form()] = "",
                       new_password: Annotated[str, Form()] = "",
                       confirm_password: Annotated[str, Form()] = "") -> Response:
    if not await auth.form_token_ok(request):
        return _reset_page(request, token, status_code=403, error="error.form_expired")
    member = await run_blocking(_reset_target, request, token)
    if member is None:
        return _reset_page(request, "", status_code=400, error="link.invalid")
    problem = _new_password_problem(new_password, confirm_password, member.email)
    if problem is not None:
        return _reset_page(request, token, status_code=400, error=problem, member=member.name)
    new_hash = await run_blocking(auth.hash_password, new_password)
    session_token = await run_blocking(_use_reset_link, request, token, new_hash)
    if session_token is None:
        return _reset_page(request, "", status_code=400, error="link.invalid")
    response = _redirect("/console")
    auth.set_session_cookie(response, request, session_token)
    return response


def _use_reset_link(request: Request, token: str, password_hash: str) -> str | None:
    now = _now(request)
    with sapa_of(request).database.unit_of_work() as session:
        used = staff_store.consume_token(session, token, purpose="reset", now=now)
        member = staff_store.find_by_id(session, used.staff_id) if used and used.staff_id else None
        if member is None or not member.active:
            return None
        staff_store.set_password_hash(session, member, password_hash, now=now)
        ended = staff_store.end_sessions(session, member.id)
        if member.email:
            staff_store.reset_failures(session, staff_store.account_key(member.email))
        record(session, actor=f"agent:{member.id}", action="staff.password_changed", subject_type="staff",
               subject_id=member.id, now=now, detail={"via": "reset link", "other_sessions_ended": ended})
        session_token = auth.start_session(session, member, request, now=now)
        record(session, actor=f"agent:{member.id}", action="staff.signed_in", subject_type="staff",
               subject_id=member.id, now=now, detail={"via": "reset link"})
    log.info("console: staff #%s set a password with a reset link", member.id)
    return session_token


# --- the admin's staff page ----------------------------------------------------------------------------------------


def _staff_page(request: Request, staff: StaffUser, *, status_code: int = 200, **extra: Any) -> Response:
    settings = sapa_of(request).settings
    with sapa_of(request).database.unit_of_work(read_only=True) as session:
        members = staff_store.list_staff(session)
    context: dict[str, Any] = {"notice": None, "error": None, "link": None, "link_for": None, "form": {}}
    context.update(extra)
    return page(request, "staff.html", status_code=status_code, members=members, roles=ROLES,
                role_names=ROLE_NAMES, tz=settings.tz, link_hours=settings.console.reset_link_hours,
                **context, **staff_context(staff, "staff"))


@router.get("/console/staff")
def staff_list(request: Request, staff: Annotated[StaffUser, Depends(require("staff.manage"))]) -> Response:
    return _staff_page(request, staff)


@router.post("/console/staff")
def staff_add(request: Request, staff: Annotated[StaffUser, Depends(require("staff.manage"))],
              name: Annotated[str, Form()] = "", email: Annotated[str, Form()] = "",
              role: Annotated[str, Form()] = "", slack_user_id: Annotated[str, Form()] = "") -> Response:
    form = {"name": name, "email": email, "role": role, "slack_user_id": slack_user_id}
    now = _now(request)
    try:
        with sapa_of(request).database.unit_of_work() as session:
            member = staff_store.create_staff(session, name=name, email=email, role=role, roles=ROLES, now=now,
                                              slack_user_id=slack_user_id.strip() or None)
            session.flush()
            token = staff_store.create_token(session, purpose="reset", staff_id=member.id, now=now,
                                             lifetime=_link_lifetime(request))
            record(session, actor=staff.actor, action="staff.added", subject_type="staff", subject_id=member.id,
                   now=now, detail={"role": member.role, "via": "console"})
            member_id, member_name = member.id, member.name
    except staff_store.StaffError as exc:
        return _staff_page(request, staff, status_code=400, error=f"staff_error.{exc.code}", form=form)
    log.info("console: staff #%s added staff #%s", staff.id, member_id)
    return _staff_page(request, staff, notice="staff.added", link=f"{_link_base(request)}/console/reset?"
                       f"{urlencode({'token': token})}", link_for=member_name)


def _other_member(request: Request, staff: StaffUser, staff_id: int | None) -> Agent | str:
    """The member of staff an admin acts on, or the key of the text that says why not. `staff_id` is None when the
    path held no row id (not ASCII digits, or past 64 bits: the fuzz test's 10**30 reached SQLite and was a 500)."""
    if staff_id is None:
        return "error.not_found"
    if staff_id == staff.id:
        return "staff.not_self"
    with sapa_of(request).database.unit_of_work(read_only=True) as session:
        member = staff_store.find_by_id(session, staff_id)
    if member is None:
        return "error.not_found"
    return member if member.active else "staff.already_disabled"


@router.post("/console/staff/{staff_id}/disable")
def staff_disable(request: Request, staff_id: str,
                  staff: Annotated[StaffUser, Depends(require("staff.manage"))]) -> Response:
    member = _other_member(request, staff, parse_id(staff_id))
    if isinstance(member, str):
        return _staff_page(request, staff, status_code=400, error=member)
    now = _now(request)
    with sapa_of(request).database.unit_of_work() as session:
        current = staff_store.find_by_id(session, member.id)
        assert current is not None
        ended = staff_store.disable_staff(session, current)
        staff_store.revoke_tokens(session, member.id, now=now)
        record(session, actor=staff.actor, action="staff.disabled", subject_type="staff", subject_id=member.id,
               now=now, detail={"via": "console", "sessions_ended": ended})
    log.info("console: staff #%s disabled staff #%s", staff.id, member.id)
    return _staff_page(request, staff, notice="staff.disabled_done")


@router.post("/console/staff/{staff_id}/reset")
def staff_reset(request: Request, staff_id: str,
                staff: Annotated[StaffUser, Depends(require("staff.manage"))]) -> Response:
    member = _other_member(request, staff, parse_id(staff_id))
    if isinstance(member, str):
        return _staff_page(request, staff, status_code=400, error=member)
    now = _now(request)
    with sapa_of(request).database.unit_of_work() as session:
        current = staff_store.find_by_id(session, member.id)
        assert current is not None
        token = staff_store.reset_password(session, current, actor=staff.actor, now=now,
                                           lifetime=_link_lifetime(request), via="console")
        name = current.name
    log.info("console: staff #%s issued a reset link for staff #%s", staff.id, member.id)
    return _staff_page(request, staff, notice="staff.reset_done",
                       link=f"{_link_base(request)}/console/reset?{urlencode({'token': token})}", link_for=name)


# --- answers for "not signed in", "not allowed", "no such page" ---------------------------------------------------


async def on_sign_in_required(request: Request, exc: Exception) -> Response:
    if request.headers.get("hx-request"):
        response: Response = Response(status_code=401, headers={"HX-Redirect": SIGN_IN})
    else:
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        next_path = safe_next(wanted) if request.method == "GET" else "/console"
        notice = "sign_in.expired" if request.cookies.get(auth.COOKIE) else None
        response = sign_in_page(request, status_code=401, next_path=next_path, notice=notice)
    if request.cookies.get(auth.COOKIE):
        auth.clear_session_cookie(response)  # it names a session that is over
    return response


async def on_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    context = staff_context(exc.staff) if exc.staff is not None else {}
    return page(request, "forbidden.html", status_code=403, heading="error.forbidden_title", message=exc.message,
                **context)


def _console_page(path: str) -> bool:
    return (path == "/console" or path.startswith("/console/")) and not path.startswith("/console/static/")


async def on_http_error(request: Request, exc: Exception) -> Response:
    """A /console path that does not exist: the sign-in page for an anonymous visitor (so nothing tells them which
    pages exist), a 404 page for staff. Every other path keeps FastAPI's answer."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code != 404 or not _console_page(request.url.path):
        return await http_exception_handler(request, exc)
    try:
        staff = await run_blocking(signed_in, request)
    except SignInRequired as missing:
        return await on_sign_in_required(request, missing)
    return page(request, "forbidden.html", status_code=404, heading="error.not_found_title",
                message="error.not_found", **staff_context(staff))


def install(app: FastAPI) -> None:
    """Add the pages and the three handlers to the app (bot/console/mount.py)."""
    app.include_router(router)
    app.add_exception_handler(SignInRequired, on_sign_in_required)
    app.add_exception_handler(Refused, on_refused)
    app.add_exception_handler(StarletteHTTPException, on_http_error)


# --- interface texts (Indonesian first) ----------------------------------------------------------------------------

texts({f"role.{role}": ROLE_NAMES[role] for role in ROLES})
texts({
    "nav.label": {"id": "Menu utama", "en": "Main menu"},
    "nav.signed_in_as": {"id": "Masuk sebagai {name} ({role})", "en": "Signed in as {name} ({role})"},
    "sign_in.title": {"id": "Masuk", "en": "Sign in"},
    "sign_in.email": {"id": "Email", "en": "Email"},
    "sign_in.password": {"id": "Kata sandi", "en": "Password"},
    "sign_in.submit": {"id": "Masuk", "en": "Sign in"},
    "sign_in.failed": {"id": "Email atau kata sandi salah.", "en": "Wrong email or password."},
    "sign_in.locked": {"id": "Terlalu banyak percobaan masuk yang gagal. Coba lagi nanti.",
                       "en": "Too many failed sign-ins. Try again later."},
    "sign_in.signed_out": {"id": "Anda sudah keluar.", "en": "You have signed out."},
    "sign_in.expired": {"id": "Sesi Anda sudah berakhir. Silakan masuk lagi.",
                        "en": "Your session has ended. Please sign in again."},
    "sign_in.forgot": {"id": "Lupa kata sandi? Minta admin membuat tautan reset.",
                       "en": "Forgot your password? Ask an admin for a reset link."},
    "password.title": {"id": "Ganti kata sandi", "en": "Change password"},
    "password.current": {"id": "Kata sandi sekarang", "en": "Current password"},
    "password.new": {"id": "Kata sandi baru", "en": "New password"},
    "password.confirm": {"id": "Ulangi kata sandi baru", "en": "Repeat the new password"},
    "password.hint": {"id": "Minimal 10 karakter, bukan alamat email Anda.",
                      "en": "At least 10 characters, not your email address."},
    "password.submit": {"id": "Simpan kata sandi", "en": "Save password"},
    "password.changed": {"id": "Kata sandi diganti. Semua browser lain sudah dikeluarkan.",
                         "en": "Password changed. Every other browser has been signed out."},
    "password.wrong_current": {"id": "Kata sandi sekarang salah.", "en": "The current password is wrong."},
    "password.mismatch": {"id": "Kedua kata sandi baru tidak sama.", "en": "The two new passwords differ."},
    "password.too_short": {"id": "Kata sandi minimal 10 karakter.",
                           "en": "The password needs at least 10 characters."},
    "password.is_email": {"id": "Kata sandi tidak boleh sama dengan alamat email.",
                          "en": "The password must not be the email address."},
    "setup.title": {"id": "Buat admin pertama", "en": "Create the first admin"},
    "setup.intro": {"id": "Admin mengelola akun staf. Tautan ini hanya bisa dipakai sekali.",
                    "en": "The admin manages staff accounts. This link works once."},
    "setup.name": {"id": "Nama", "en": "Name"},
    "setup.submit": {"id": "Buat admin dan masuk", "en": "Create the admin and sign in"},
    "setup.admin_exists": {"id": "Sapa sudah punya admin. Silakan masuk.",
                           "en": "Sapa already has an admin. Please sign in."},
    "link.invalid": {"id": "Tautan ini tidak berlaku: sudah dipakai, kedaluwarsa, atau salah. Minta tautan baru.",
                     "en": "This link does not work: it was used, has expired or is wrong. Ask for a new one."},
    "link.to_sign_in": {"id": "Ke halaman masuk", "en": "Go to sign-in"},
    "reset.title": {"id": "Buat kata sandi", "en": "Set your password"},
    "reset.intro": {"id": "Halo {name}, buat kata sandi Anda untuk Sapa Konsol.",
                    "en": "Hello {name}, choose your password for the Sapa Console."},
    "reset.submit": {"id": "Simpan dan masuk", "en": "Save and sign in"},
    "home.title": {"id": "Selamat datang", "en": "Welcome"},
    "home.intro": {"id": "Peran Anda ({role}) dapat:", "en": "Your role ({role}) can:"},
    "home.nothing": {"id": "Peran Anda belum punya akses apa pun di konsol.",
                     "en": "Your role has no access to anything in the console yet."},
    "staff.title": {"id": "Staf", "en": "Staff"},
    "staff.add": {"id": "Tambah staf", "en": "Add staff"},
    "staff.name": {"id": "Nama", "en": "Name"},
    "staff.email": {"id": "Email", "en": "Email"},
    "staff.role": {"id": "Peran", "en": "Role"},
    "staff.slack": {"id": "ID pengguna Slack (opsional)", "en": "Slack user id (optional)"},
    "staff.slack_short": {"id": "Slack", "en": "Slack"},
    "staff.status": {"id": "Status", "en": "Status"},
    "staff.active": {"id": "Aktif", "en": "Active"},
    "staff.inactive": {"id": "Nonaktif", "en": "Disabled"},
    "staff.no_password": {"id": "belum ada kata sandi", "en": "no password yet"},
    "staff.last_seen": {"id": "Terakhir terlihat", "en": "Last seen"},
    "staff.never": {"id": "belum pernah", "en": "never"},
    "staff.actions": {"id": "Tindakan", "en": "Actions"},
    "staff.disable": {"id": "Nonaktifkan", "en": "Disable"},
    "staff.reset": {"id": "Buat tautan reset", "en": "Issue a reset link"},
    "staff.submit": {"id": "Tambah", "en": "Add"},
    "staff.added": {"id": "Staf ditambahkan.", "en": "Staff member added."},
    "staff.reset_done": {"id": "Kata sandi lama tidak berlaku lagi dan semua sesinya diakhiri.",
                         "en": "The old password no longer works and all their sessions have ended."},
    "staff.link_once": {"id": "Kirim tautan ini kepada {name}; tautan berlaku {hours} jam, sekali pakai, dan tidak "
                                "akan ditampilkan lagi:",
                        "en": "Send this link to {name}; it works for {hours} hours, once, and is not shown "
                              "again:"},
    "staff.disabled_done": {"id": "Staf dinonaktifkan dan sudah dikeluarkan dari semua browser.",
                            "en": "Staff member disabled and signed out of every browser."},
    "staff.not_self": {"id": "Anda tidak bisa melakukan ini pada akun Anda sendiri.",
                       "en": "You cannot do this to your own account."},
    "staff.already_disabled": {"id": "Staf ini sudah nonaktif.", "en": "This staff member is already disabled."},
    "staff.confirm_disable": {"id": "Nonaktifkan {name}?", "en": "Disable {name}?"},
    "staff_error.name": {"id": "Isi nama (1 sampai 200 karakter).", "en": "Enter a name (1 to 200 characters)."},
    "staff_error.email": {"id": "Alamat email tidak valid.", "en": "That is not an email address."},
    "staff_error.role": {"id": "Pilih peran yang ada.", "en": "Choose one of the roles."},
    "staff_error.slack_user_id": {"id": "ID pengguna Slack seperti U0123ABCD.",
                                  "en": "A Slack user id looks like U0123ABCD."},
    "staff_error.duplicate_email": {"id": "Email ini sudah dipakai staf lain.",
                                    "en": "Another staff member already has this email."},
    "staff_error.duplicate_slack_user_id": {"id": "ID Slack ini sudah dipakai staf lain.",
                                            "en": "Another staff member already has this Slack user id."},
    "error.forbidden_title": {"id": "Tidak diizinkan", "en": "Not allowed"},
    "error.not_found_title": {"id": "Halaman tidak ditemukan", "en": "Page not found"},
    "error.csrf": {"id": "Formulir ini kedaluwarsa atau tidak berasal dari Sapa; tidak ada yang diubah. Muat ulang "
                         "halaman lalu coba lagi.",
                   "en": "This form has expired or did not come from Sapa; nothing was changed. Reload the page "
                         "and try again."},
    "error.form_expired": {"id": "Formulir ini kedaluwarsa. Muat ulang halaman lalu coba lagi.",
                           "en": "This form has expired. Reload the page and try again."},
    "error.back": {"id": "Kembali ke awal", "en": "Back to the start"},
    "perm.inbox.view": {"id": "melihat antrean percakapan", "en": "see the conversation queue"},
    "perm.conversation.read": {"id": "membaca percakapan", "en": "read conversations"},
    "perm.conversation.act": {"id": "menangani percakapan", "en": "handle conversations"},
    "perm.conversation.reassign": {"id": "mengalihkan percakapan staf lain",
                                   "en": "reassign other staff's conversations"},
    "perm.customer.read": {"id": "melihat profil pelanggan", "en": "see customer profiles"},
    "perm.customer.edit": {"id": "mengubah profil pelanggan", "en": "edit customer profiles"},
    "perm.customer.merge": {"id": "menggabungkan data pelanggan ganda", "en": "merge duplicate customers"},
    "perm.customer.export": {"id": "mengekspor data pelanggan", "en": "export customer data"},
    "perm.customer.erase": {"id": "menghapus data pelanggan", "en": "erase customer data"},
    "perm.vip.manage": {"id": "mengelola status VIP", "en": "manage VIP status"},
    "perm.tickets.view": {"id": "melihat tiket", "en": "see tickets"},
    "perm.dashboard.view": {"id": "melihat dasbor", "en": "see the dashboard"},
    "perm.campaigns.manage": {"id": "mengelola kampanye dan siaran", "en": "manage campaigns and broadcasts"},
    "perm.loyalty.adjust": {"id": "menyesuaikan poin loyalitas", "en": "adjust loyalty points"},
    "perm.loyalty.redeem": {"id": "menukarkan hadiah untuk pelanggan", "en": "redeem rewards for customers"},
    "perm.staff.manage": {"id": "mengelola akun staf", "en": "manage staff accounts"},
    "perm.knowledge.edit": {"id": "mengubah FAQ dan teks balasan", "en": "edit FAQ answers and reply texts"},
})
