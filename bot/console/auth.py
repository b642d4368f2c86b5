"""Who is signed in to the console, and what they may do: passwords, sessions, CSRF, sign-in throttling.

- Passwords: Argon2id (argon2-cffi's PasswordHasher, its RFC 9106 defaults), rehashed on sign-in when the
  parameters change. An unknown email still costs one verification, so timing does not tell which emails exist.
- Sessions: the `sapa_console` cookie holds a random token; the database keeps its SHA-256 (store/staff.py). A
  session ends after `console.session_idle_minutes` without a request or `console.session_max_hours` after
  signing in; a disabled member of staff is signed out at their next request.
- CSRF: every state-changing request of a signed-in page carries the session's token (form field `csrf_token` or
  header `X-CSRF-Token`, for scripts). The anonymous forms (sign-in, set-up, reset) use
  a double-submit cookie instead (`sapa_console_form`), so nobody can sign a browser in to their own account.
- Throttling counts failed sign-ins in the database (`login_failures`) so every replica counts the same; while an
  email or an address is locked, even the right password is refused without being checked.

Routes use three dependencies: `signed_in` (any member of staff), `csrf_checked` (the same, plus the CSRF check on
POST/PUT/PATCH/DELETE) and `require(permission)` (csrf_checked plus the role's permission).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from fastapi.responses import Response

from bot.http.clients import _networks, _trusted, client_address
from handlers.permissions import Permission, can
from store import staff as staff_store
from store.audit import record
from store.models import Agent, StaffSession

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bot.app import Sapa
    from bot.config import ConsoleConfig, Settings

log = logging.getLogger(__name__)

COOKIE = "sapa_console"
FORM_COOKIE = "sapa_console_form"
COOKIE_PATH = "/console"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often: not one write per request
MIN_PASSWORD_LENGTH = 10
ANONYMOUS = "console:anonymous"  # the audit actor of a sign-in attempt nobody is signed in for yet

# Replaced by the tests with cheaper parameters (the defaults cost ~0.5 s per hash on a small machine).
HASHER = PasswordHasher()
_dummy: tuple[PasswordHasher, str] | None = None


# --- passwords ---------------------------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-time check; with no hash (unknown email, no password yet) a dummy hash is checked all the same."""
    global _dummy
    if password_hash is None:
        if _dummy is None or _dummy[0] is not HASHER:
            _dummy = (HASHER, HASHER.hash(secrets.token_urlsafe(16)))
        password_hash = _dummy[1]
        _check(password_hash, password)
        return False
    return _check(password_hash, password)


def _check(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def password_problem(password: str, email: str | None) -> str | None:
    """The key of the text that says what is wrong with a new password, or None when it will do."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return "password.too_short"
    if email and password.strip().lower() == staff_store.normalise_email(email):
        return "password.is_email"
    return None


def mask_email(typed: str) -> str:
    """d***@example.com, for log lines and audit rows about sign-in attempts. What has no @ is masked whole:
    people type their password into the email field."""
    local, at, domain = typed.partition("@")
    return f"{local[:1]}***@{domain}" if at and local else "***"


# --- who is signed in --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffUser:
    """The signed-in member of staff, as routes and templates see them."""

    id: int
    name: str
    email: str | None
    role: str
    csrf_token: str
    session_id: int

    @property
    def actor(self) -> str:
        """The audit actor, as the Slack desk writes it."""
        return f"agent:{self.id}"

    def can(self, permission: Permission) -> bool:
        return can(self.role, permission)


class SignInRequired(Exception):
    """Nobody (or nobody any more) is signed in: the handler answers with the sign-in page."""


class Refused(Exception):
    """403: the role does not allow it (`error.forbidden`) or the CSRF token is missing or wrong (`error.csrf`)."""

    def __init__(self, staff: StaffUser | None, message: str = "error.forbidden") -> None:
        super().__init__(message)
        self.staff, self.message = staff, message


def sapa_of(request: Request) -> Sapa:
    sapa: Sapa = request.app.state.sapa
    return sapa


def expired(session_row: StaffSession, *, now: datetime, config: ConsoleConfig) -> bool:
    return (session_row.expires_at <= now
            or session_row.last_seen_at + timedelta(minutes=config.session_idle_minutes) <= now)


def signed_in(request: Request) -> StaffUser:
    """The member of staff whose cookie this request carries; SignInRequired when there is none (any more)."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignInRequired()
    sapa = sapa_of(request)
    now = sapa.clock.now()
    with sapa.database.unit_of_work(read_only=True) as session:
        found = staff_store.find_session(session, token)
    if found is None:
        raise SignInRequired()
    row, staff = found.session, found.staff
    if expired(row, now=now, config=sapa.settings.console) or not staff.active:
        with sapa.database.unit_of_work() as session:
            staff_store.delete_session(session, row.id)
        raise SignInRequired()
    if now - row.last_seen_at >= TOUCH_EVERY:
        with sapa.database.unit_of_work() as session:
            staff_store.touch_session(session, row.id, staff.id, now=now)
    return StaffUser(id=staff.id, name=staff.name, email=staff.email, role=staff.role, csrf_token=row.csrf_token,
                     session_id=row.id)


def session_valid(request: Request, staff: StaffUser) -> bool:
    """Whether this member of staff's session still lets them in (not signed out, expired or disabled since), for
    a long-lived response such as an event stream that started while it did. Blocking: call it in a thread."""
    sapa = sapa_of(request)
    with sapa.database.unit_of_work(read_only=True) as session:
        row = session.get(StaffSession, staff.session_id)
        member = staff_store.find_by_id(session, staff.id) if row is not None else None
    return (row is not None and member is not None and member.active and row.staff_id == staff.id
            and not expired(row, now=sapa.clock.now(), config=sapa.settings.console))


async def submitted_field(request: Request, name: str) -> str | None:
    """A field of a form body (read once and cached by Starlette, so the route still gets its Form fields)."""
    kind = request.headers.get("content-type", "")
    if not kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return None
    value = (await request.form()).get(name)
    return value if isinstance(value, str) else None


def same_token(submitted: str | None, expected: str | None) -> bool:
    if not submitted or not expected:
        return False
    return hmac.compare_digest(submitted.encode("utf-8"), expected.encode("utf-8"))


async def csrf_checked(request: Request, staff: Annotated[StaffUser, Depends(signed_in)]) -> StaffUser:
    """signed_in, and for a state-changing method the session's CSRF token must come with the request."""
    if request.method in SAFE_METHODS:
        return staff
    submitted = request.headers.get("x-csrf-token") or await submitted_field(request, "csrf_token")
    if not same_token(submitted, staff.csrf_token):
        log.warning("console: %s %s by staff #%s refused: missing or wrong CSRF token", request.method,
                    request.url.path, staff.id)
        raise Refused(staff, "error.csrf")
    return staff


def require(permission: Permission) -> Callable[..., Awaitable[StaffUser]]:
    """A dependency: the signed-in member of staff (CSRF-checked) if their role may do `permission`, else 403."""
    async def dependency(staff: Annotated[StaffUser, Depends(csrf_checked)]) -> StaffUser:
        if not staff.can(permission):
            raise Refused(staff)
        return staff
    dependency.__name__ = f"require_{permission.replace('.', '_')}"
    return dependency


# --- cookies -----------------------------------------------------------------------------------------------------


def is_https(request: Request, settings: Settings) -> bool:
    """Whether the browser talks HTTPS to us: directly, through a trusted proxy's X-Forwarded-Proto, or because the
    public URL says so (a proxy that does not forward the scheme)."""
    if (settings.server.public_base_url or "").startswith("https://") or request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else ""
    if not _trusted(peer, _networks(tuple(settings.server.trusted_proxies))):
        return False
    return request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower() == "https"


def _set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    # SameSite=Lax, not Strict: a Strict cookie is not sent on a top-level navigation that starts outside Sapa (the
    # set-up or reset link opened from the terminal or an e-mail, a /console link pasted in Slack), so the form it
    # shows would fail its check and signed-in staff would land on the sign-in page. Lax still keeps the cookie off
    # cross-site POSTs, and the CSRF token covers the rest.
    response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, httponly=True, samesite="lax",
                        secure=is_https(request, sapa_of(request).settings))


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    _set_cookie(response, request, COOKIE, token, sapa_of(request).settings.console.session_max_hours * 3600)


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax")


def form_token(request: Request) -> str:
    """The anonymous forms' CSRF token: the browser's `sapa_console_form` cookie, or a new one to set."""
    existing = request.cookies.get(FORM_COOKIE)
    return existing if existing and len(existing) <= 64 else secrets.token_urlsafe(32)


def set_form_cookie(response: Response, request: Request, token: str) -> None:
    if request.cookies.get(FORM_COOKIE) != token:
        _set_cookie(response, request, FORM_COOKIE, token, None)


async def form_token_ok(request: Request) -> bool:
    return same_token(await submitted_field(request, "csrf_token"), request.cookies.get(FORM_COOKIE))


# --- signing in --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignInResult:
    """token: the new session's cookie value on success; locked_until: set when a lock refused the attempt."""

    token: str | None = None
    locked_until: datetime | None = None


def start_session(session: Session, staff: Agent, request: Request, *, now: datetime) -> str:
    """A fresh session for `staff` (a new token every time: no fixation); the browser's old one, if any, ends."""
    sapa = sapa_of(request)
    config = sapa.settings.console
    old = request.cookies.get(COOKIE)
    if old:
        staff_store.delete_session_by_token(session, old)
    staff_store.delete_expired_sessions(session, now=now, idle=timedelta(minutes=config.session_idle_minutes))
    token, _ = staff_store.create_session(
        session, staff, now=now, lifetime=timedelta(hours=config.session_max_hours),
        address=client_address(request, sapa.settings.server.trusted_proxies),
        user_agent=request.headers.get("user-agent"))
    staff.last_seen_at = now
    return token


def sign_in(request: Request, email: str, password: str) -> SignInResult:
    """Check an email and password, counting failures. Slow work (Argon2) runs outside any transaction, so a
    sign-in never holds SQLite's write lock while hashing."""
    sapa = sapa_of(request)
    now, config = sapa.clock.now(), sapa.settings.console
    email = staff_store.normalise_email(email)
    address = client_address(request, sapa.settings.server.trusted_proxies)
    keys = (staff_store.account_key(email), staff_store.address_key(address))
    with sapa.database.unit_of_work(read_only=True) as session:
        locks = [until for key in keys if (until := staff_store.locked_until(session, key, now=now))]
        staff = staff_store.find_by_email(session, email)
    if locks:
        _refused_while_locked(request, email, address, staff, now=now)
        return SignInResult(locked_until=max(locks))
    usable = staff if staff is not None and staff.active and staff.password_hash else None
    if not verify_password(usable.password_hash if usable else None, password):
        _failed(request, email, address, staff, keys, now=now, config=config)
        return SignInResult()
    assert usable is not None and usable.password_hash is not None
    new_hash = hash_password(password) if needs_rehash(usable.password_hash) else None
    with sapa.database.unit_of_work() as session:
        current = staff_store.find_by_id(session, usable.id)
        if current is None or not current.active:  # disabled while the password was being checked
            return SignInResult()
        staff_store.reset_failures(session, keys[0])  # not the address's: one good account must not wipe its count
        if new_hash is not None:
            current.password_hash = new_hash  # same password, today's parameters
        token = start_session(session, current, request, now=now)
        record(session, actor=f"agent:{current.id}", action="staff.signed_in", subject_type="staff",
               subject_id=current.id, now=now, detail={"address": address, "rehashed": new_hash is not None})
    log.info("console: staff #%s signed in from %s", usable.id, address)
    return SignInResult(token=token)


def _failed(request: Request, email: str, address: str, staff: Agent | None, keys: tuple[str, str], *,
            now: datetime, config: ConsoleConfig) -> None:
    sapa = sapa_of(request)
    window, lock = timedelta(minutes=config.login_window_minutes), timedelta(minutes=config.login_lock_minutes)
    limits = (config.login_max_failures_per_account, config.login_max_failures_per_address)
    reason = ("unknown_account" if staff is None else "disabled" if not staff.active
              else "no_password" if not staff.password_hash else "wrong_password")
    with sapa.database.unit_of_work() as session:
        for key, scope, limit in zip(keys, ("account", "address"), limits, strict=True):
            until = staff_store.record_failure(session, key, now=now, window=window, max_failures=limit, lock=lock)
            if until is not None:
                record(session, actor=ANONYMOUS, action="staff.sign_in_locked", subject_type="staff",
                       subject_id=staff.id if staff else None, now=now,
                       detail={"scope": scope, "email": mask_email(email), "address": address,
                               "until": until.isoformat()})
                log.warning("console: sign-ins for %s locked until %s after %s failures",
                            mask_email(email) if scope == "account" else f"address {address}", until.isoformat(),
                            limit)
        # The typed email is masked even here: people type their password into the email field.
        record(session, actor=ANONYMOUS, action="staff.sign_in_failed", subject_type="staff",
               subject_id=staff.id if staff else None, now=now,
               detail={"email": mask_email(email), "address": address, "reason": reason})
    log.info("console: failed sign-in for %s from %s (%s)", mask_email(email), address, reason)


def _refused_while_locked(request: Request, email: str, address: str, staff: Agent | None, *,
                          now: datetime) -> None:
    with sapa_of(request).database.unit_of_work() as session:
        record(session, actor=ANONYMOUS, action="staff.sign_in_refused", subject_type="staff",
               subject_id=staff.id if staff else None, now=now,
               detail={"email": mask_email(email), "address": address, "reason": "locked"})
    log.info("console: sign-in for %s from %s refused: locked", mask_email(email), address)
