"""Signing in to the staff console: passwords, sessions and their cookies, CSRF, throttling, set-up and reset links.

Each test drives the real app (FastAPI TestClient over `create_app`) on SQLite and PostgreSQL and asserts what the
member of staff sees: the page, its message, the status, the cookie their browser keeps.
"""

from __future__ import annotations

from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.app import Sapa
from bot.clock import ManualClock
from bot.console import auth
from store import staff as staff_store
from store.models import Agent, AuditEntry, LoginFailure, StaffSession
from tests.console.conftest import (
    PASSWORD,
    add_staff,
    another_browser,
    csrf,
    notice,
    page_token,
    sign_in,
    signed_in_client,
)

WRONG = "Email atau kata sandi salah."
LOCKED = "Terlalu banyak percobaan masuk yang gagal. Coba lagi nanti."


def session_cookie(answer: Any) -> SimpleCookie:
    headers = answer.headers.get_list("set-cookie")
    cookie: SimpleCookie = SimpleCookie()
    for header in headers:
        if header.startswith(f"{auth.COOKIE}="):
            cookie.load(header)
    assert auth.COOKIE in cookie, f"no {auth.COOKIE} cookie in {headers}"
    return cookie


def audit_actions(sapa: Sapa) -> list[str]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return [entry.action for entry in session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()]


def audit_text(sapa: Sapa) -> str:
    with sapa.database.unit_of_work(read_only=True) as session:
        return repr([(e.actor, e.action, e.detail) for e in session.execute(select(AuditEntry)).scalars()])


def stored(sapa: Sapa, email: str) -> Agent:
    with sapa.database.unit_of_work(read_only=True) as session:
        member = staff_store.find_by_email(session, email)
        assert member is not None
        return member


# --- signing in and out --------------------------------------------------------------------------------------------


def test_staff_sign_in_and_reach_their_start_page(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Maya", "maya@contoh.id", "marketing")
    answer = sign_in(client, "  Maya@Contoh.ID ")  # as typed: spaces and capitals do not matter
    assert answer.status_code == 303 and answer.headers["location"] == "/console"
    home = client.get("/console")
    assert home.status_code == 200
    assert "Selamat datang, Maya" in home.text
    assert "mengelola kampanye dan siaran" in home.text  # what marketing may use
    assert "Masuk sebagai Maya (Pemasaran)" in home.text
    assert 'href="/console/inbox"' not in home.text  # no inbox for marketing
    assert 'href="/console/campaigns"' in home.text and 'href="/console/dashboard"' not in home.text
    assert "staff.signed_in" in audit_actions(sapa)


def test_desk_staff_land_in_the_inbox(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    signed_in_client(client, "rina@contoh.id")
    answer = client.get("/console", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/inbox"


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    wrong = sign_in(client, "rina@contoh.id", "not-the-password")
    unknown = sign_in(client, "nobody@contoh.id", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert notice(wrong.text) == notice(unknown.text) == WRONG
    assert auth.COOKIE not in client.cookies
    assert client.get("/console/password").status_code == 401  # still not signed in
    # The audit says who tried, with the typed email masked (people type passwords into the email field).
    text = audit_text(sapa)
    assert "r***@contoh.id" in text and "n***@contoh.id" in text and "rina@contoh.id" not in text


def test_staff_without_a_password_or_disabled_cannot_sign_in(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Baru", "baru@contoh.id", password=None)
    add_staff(sapa, "Lama", "lama@contoh.id", active=False)
    assert notice(sign_in(client, "baru@contoh.id", "").text) == WRONG
    assert notice(sign_in(client, "lama@contoh.id").text) == WRONG


def test_the_session_cookie_is_httponly_lax_and_limited_to_the_console(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    cookie = session_cookie(sign_in(client, "rina@contoh.id"))[auth.COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "lax"
    assert cookie["path"] == "/console"
    assert not cookie["secure"]  # plain http on a developer's machine: a Secure cookie would never come back
    assert int(cookie["max-age"]) == 24 * 3600
    with sapa.database.unit_of_work(read_only=True) as session:
        hashes = list(session.execute(select(StaffSession.token_hash)).scalars())
    assert hashes == [staff_store.token_hash(cookie.value)]  # only the hash is stored


def test_the_cookie_is_secure_over_https(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    https = another_browser(client, base_url="https://testserver")
    assert session_cookie(sign_in(https, "rina@contoh.id"))[auth.COOKIE]["secure"] is True


def test_the_cookie_is_secure_behind_a_trusted_https_proxy_only(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    server = sapa.settings.server.model_copy(update={"trusted_proxies": ["10.0.0.0/8"]})
    sapa.settings = sapa.settings.model_copy(update={"server": server})
    proxied = another_browser(client, client=("10.0.0.2", 40000))
    answer = sign_in(proxied, "rina@contoh.id", **{"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert session_cookie(answer)[auth.COOKIE]["secure"] is True
    # From anyone else the header is just words: no Secure, or the browser on plain http would lose its cookie.
    direct = another_browser(client, client=("198.51.100.7", 40000))
    answer = sign_in(direct, "rina@contoh.id", **{"X-Forwarded-Proto": "https"})
    assert not session_cookie(answer)[auth.COOKIE]["secure"]


def test_the_cookie_is_secure_when_the_public_url_is_https(client: TestClient, sapa: Sapa) -> None:
    """A proxy that does not forward the scheme: the public URL says the browser is on HTTPS."""
    add_staff(sapa, "Rina", "rina@contoh.id")
    server = sapa.settings.server.model_copy(update={"public_base_url": "https://sapa.contoh.id"})
    sapa.settings = sapa.settings.model_copy(update={"server": server})
    form = client.get("/console/sign-in")
    assert "Secure" in form.headers["set-cookie"]
    # The browser sends its (Secure) form cookie back over HTTPS; this test client talks http, so it is set by hand.
    client.cookies.set(auth.FORM_COOKIE, csrf(form.text), path="/console")
    answer = client.post("/console/sign-in", data={"email": "rina@contoh.id", "password": PASSWORD,
                                                   "csrf_token": csrf(form.text)}, follow_redirects=False)
    assert session_cookie(answer)[auth.COOKIE]["secure"] is True


def test_a_session_cookie_the_browser_had_is_replaced_on_sign_in(client: TestClient, sapa: Sapa) -> None:
    """Session fixation: a cookie planted in the browser before signing in is discarded, never promoted."""
    add_staff(sapa, "Rina", "rina@contoh.id")
    add_staff(sapa, "Budi", "budi@contoh.id")
    planted = session_cookie(sign_in(another_browser(client), "budi@contoh.id"))[auth.COOKIE].value
    form = client.get("/console/sign-in")
    client.cookies.set(auth.COOKIE, planted, path="/console")
    answer = client.post("/console/sign-in", data={"email": "rina@contoh.id", "password": PASSWORD,
                                                   "csrf_token": csrf(form.text)}, follow_redirects=False)
    fresh = session_cookie(answer)[auth.COOKIE].value
    assert fresh != planted
    assert "Masuk sebagai Rina" in client.get("/console/password").text
    stale = another_browser(client)
    stale.cookies.set(auth.COOKIE, planted, path="/console")
    assert stale.get("/console/password").status_code == 401  # the planted token signs nobody in any more


def test_sign_out_ends_the_session(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    token = session_cookie(sign_in(client, "rina@contoh.id"))[auth.COOKIE].value
    answer = client.post("/console/sign-out", data={"csrf_token": page_token(client)}, follow_redirects=False)
    assert answer.status_code == 303
    page = client.get(answer.headers["location"])
    assert notice(page.text) == "Anda sudah keluar."
    replay = another_browser(client)
    replay.cookies.set(auth.COOKIE, token, path="/console")  # a copied cookie is worth nothing now
    assert replay.get("/console/password").status_code == 401
    assert "staff.signed_out" in audit_actions(sapa)


def test_a_session_ends_after_the_idle_time(client: TestClient, sapa: Sapa, clock: ManualClock) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    signed_in_client(client, "rina@contoh.id")
    clock.advance(timedelta(minutes=479))
    assert client.get("/console/password").status_code == 200  # busy enough: 479 minutes idle is fine
    clock.advance(timedelta(minutes=480))
    page = client.get("/console/password")
    assert page.status_code == 401
    assert notice(page.text) == "Sesi Anda sudah berakhir. Silakan masuk lagi."
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(StaffSession)).first() is None


def test_a_session_ends_after_its_lifetime_however_busy(client: TestClient, sapa: Sapa, clock: ManualClock) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    signed_in_client(client, "rina@contoh.id")
    for _ in range(5):  # a request every 4 hours: never idle
        clock.advance(timedelta(hours=4))
        assert client.get("/console/password").status_code == 200
    clock.advance(timedelta(hours=4, seconds=1))  # 24 h after signing in
    assert client.get("/console/password").status_code == 401


def test_last_seen_is_kept_at_most_once_a_minute(client: TestClient, sapa: Sapa, clock: ManualClock) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    signed_in_client(client, "rina@contoh.id")
    start = clock.now()
    clock.advance(timedelta(seconds=30))
    client.get("/console/password")
    assert stored(sapa, "rina@contoh.id").last_seen_at == start
    clock.advance(timedelta(seconds=31))
    client.get("/console/password")
    assert stored(sapa, "rina@contoh.id").last_seen_at == clock.now()


# --- anonymous visitors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/console", "/console/inbox", "/console/staff", "/console/no-such-page"])
def test_anonymous_visitors_of_any_console_page_get_the_sign_in_page(client: TestClient, path: str) -> None:
    answer = client.get(path, follow_redirects=False)
    assert answer.status_code == 401
    assert "<h1>Masuk</h1>" in answer.text
    assert f'name="next" value="{path}"' in answer.text


def test_htmx_requests_are_sent_to_the_sign_in_page(client: TestClient) -> None:
    answer = client.get("/console/inbox", headers={"HX-Request": "true"})
    assert answer.status_code == 401
    assert answer.headers["HX-Redirect"] == "/console/sign-in"


def test_other_paths_keep_their_own_not_found(client: TestClient) -> None:
    answer = client.get("/api/no-such-thing")
    assert answer.status_code == 404 and answer.json() == {"detail": "Not Found"}


def test_signed_in_staff_get_a_not_found_page(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    signed_in_client(client, "rina@contoh.id")
    answer = client.get("/console/no-such-page")
    assert answer.status_code == 404
    assert "Halaman tidak ditemukan" in answer.text and "Masuk sebagai Rina" in answer.text


def test_after_signing_in_staff_go_where_they_were_going(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    answer = sign_in(client, "rina@contoh.id", next_path="/console/password?lang=en")
    assert answer.headers["location"] == "/console/password?lang=en"


@pytest.mark.parametrize("target", ["https://evil.example/console", "//evil.example/console", "/\\evil.example",
                                    "/consolex", "javascript:alert(1)", "/api/webchat", "/console/../api"])
def test_next_never_leaves_the_console(client: TestClient, sapa: Sapa, target: str) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    answer = sign_in(client, "rina@contoh.id", next_path=target)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console"


# --- CSRF ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_a_password_change_without_the_right_csrf_token_changes_nothing(client: TestClient, sapa: Sapa,
                                                                       token: str | None) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    signed_in_client(client, "rina@contoh.id")
    before = stored(sapa, "rina@contoh.id").password_hash
    data = {"current_password": PASSWORD, "new_password": "a-brand-new-secret", "confirm_password":
            "a-brand-new-secret"}
    if token is not None:
        data["csrf_token"] = token
    answer = client.post("/console/password", data=data)
    assert answer.status_code == 403
    assert "tidak ada yang diubah" in notice(answer.text)
    assert stored(sapa, "rina@contoh.id").password_hash == before


def test_the_csrf_header_counts_like_the_form_field(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    signed_in_client(client, "rina@contoh.id")
    token = page_token(client)
    answer = client.post("/console/sign-out", headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert answer.status_code == 303
    assert client.get("/console/password").status_code == 401


def test_the_sign_in_form_needs_its_own_token(client: TestClient, sapa: Sapa) -> None:
    """Another site cannot sign a browser in to an account of its choosing (login CSRF)."""
    add_staff(sapa, "Rina", "rina@contoh.id")
    answer = client.post("/console/sign-in", data={"email": "rina@contoh.id", "password": PASSWORD},
                         follow_redirects=False)
    assert answer.status_code == 403
    assert notice(answer.text) == "Formulir ini kedaluwarsa. Muat ulang halaman lalu coba lagi."
    assert auth.COOKIE not in client.cookies


# --- throttling ----------------------------------------------------------------------------------------------------


def test_five_failures_lock_the_account_even_for_the_right_password(client: TestClient, sapa: Sapa,
                                                                   clock: ManualClock) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    for _ in range(5):
        assert notice(sign_in(client, "rina@contoh.id", "guess-guess-guess").text) == WRONG
    locked = sign_in(client, "rina@contoh.id")  # the right password, during the lock
    assert locked.status_code == 429 and notice(locked.text) == LOCKED
    assert int(locked.headers["Retry-After"]) == 15 * 60
    assert auth.COOKIE not in client.cookies
    clock.advance(timedelta(minutes=14))
    assert sign_in(client, "rina@contoh.id").status_code == 429
    clock.advance(timedelta(minutes=1))
    assert sign_in(client, "rina@contoh.id").status_code == 303  # the lock is over
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.get(LoginFailure, "account:rina@contoh.id") is None  # success starts the count afresh
    actions = audit_actions(sapa)
    assert actions.count("staff.sign_in_failed") == 5
    assert "staff.sign_in_locked" in actions and actions.count("staff.sign_in_refused") == 2


def test_locked_attempts_do_not_even_check_the_password(client: TestClient, sapa: Sapa,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    for _ in range(5):
        sign_in(client, "rina@contoh.id", "guess-guess-guess")
    checked: list[str] = []

    def verify(stored_hash: str | None, password: str) -> bool:
        checked.append(password)
        return True

    monkeypatch.setattr(auth, "verify_password", verify)
    assert sign_in(client, "rina@contoh.id").status_code == 429
    assert checked == []


def test_an_unknown_email_locks_the_same_way(client: TestClient, sapa: Sapa) -> None:
    """A lock that only real accounts got would tell which emails exist."""
    for _ in range(5):
        sign_in(client, "nobody@contoh.id", "guess-guess-guess")
    answer = sign_in(client, "nobody@contoh.id", "guess-guess-guess")
    assert answer.status_code == 429 and notice(answer.text) == LOCKED


def test_failures_spread_over_the_window_do_not_lock(client: TestClient, sapa: Sapa, clock: ManualClock) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    for _ in range(4):
        sign_in(client, "rina@contoh.id", "guess-guess-guess")
    clock.advance(timedelta(minutes=16))  # a new window
    sign_in(client, "rina@contoh.id", "guess-guess-guess")
    assert sign_in(client, "rina@contoh.id").status_code == 303


def test_twenty_failures_from_one_address_lock_that_address(client: TestClient, sapa: Sapa,
                                                            clock: ManualClock) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    for number in range(20):  # a different email each time: no account reaches its own limit
        assert sign_in(client, f"guess{number}@contoh.id", "guess-guess-guess").status_code == 401
    locked = sign_in(client, "rina@contoh.id")
    assert locked.status_code == 429 and notice(locked.text) == LOCKED
    elsewhere = another_browser(client, client=("198.51.100.20", 5000))
    assert sign_in(elsewhere, "rina@contoh.id").status_code == 303  # Rina, from her own desk, is not locked out
    clock.advance(timedelta(minutes=15))
    assert sign_in(client, "rina@contoh.id").status_code == 303


# --- passwords -----------------------------------------------------------------------------------------------------


def test_passwords_are_stored_as_argon2id(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    assert stored(sapa, "rina@contoh.id").password_hash.startswith("$argon2id$")  # type: ignore[union-attr]


def test_an_old_hash_is_upgraded_when_its_owner_signs_in(client: TestClient, sapa: Sapa,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")  # hashed with the tests' cheap parameters
    from argon2 import PasswordHasher

    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    monkeypatch.setattr(auth, "HASHER", stronger)
    assert sign_in(client, "rina@contoh.id").status_code == 303
    upgraded = stored(sapa, "rina@contoh.id").password_hash
    assert upgraded is not None and upgraded.startswith("$argon2id$v=19$m=2048,t=2,p=1$")
    assert stronger.verify(upgraded, PASSWORD)


def test_changing_the_password_signs_out_every_other_browser(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    laptop = signed_in_client(client, "rina@contoh.id")
    phone = signed_in_client(another_browser(client), "rina@contoh.id")
    answer = laptop.post("/console/password", data={
        "csrf_token": page_token(laptop), "current_password": PASSWORD, "new_password": "teh-manis-dingin-123",
        "confirm_password": "teh-manis-dingin-123"})
    assert answer.status_code == 200
    assert notice(answer.text) == "Kata sandi diganti. Semua browser lain sudah dikeluarkan."
    assert laptop.get("/console/password").status_code == 200  # this browser stays in
    assert phone.get("/console/password").status_code == 401
    assert sign_in(another_browser(client), "rina@contoh.id").status_code == 401  # the old password is gone
    assert sign_in(another_browser(client), "rina@contoh.id", "teh-manis-dingin-123").status_code == 303
    assert "staff.password_changed" in audit_actions(sapa)
    assert "teh-manis" not in audit_text(sapa)


@pytest.mark.parametrize(("current", "new", "confirm", "message"), [
    ("wrong-current-password", "teh-manis-dingin-123", "teh-manis-dingin-123", "Kata sandi sekarang salah."),
    (PASSWORD, "pendek", "pendek", "Kata sandi minimal 10 karakter."),
    (PASSWORD, "rina@contoh.id", "rina@contoh.id", "Kata sandi tidak boleh sama dengan alamat email."),
    (PASSWORD, "teh-manis-dingin-123", "teh-manis-dingin-124", "Kedua kata sandi baru tidak sama."),
])
def test_a_refused_password_change_says_why(client: TestClient, sapa: Sapa, current: str, new: str, confirm: str,
                                            message: str) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id")
    signed_in_client(client, "rina@contoh.id")
    answer = client.post("/console/password", data={"csrf_token": page_token(client), "current_password": current,
                                                    "new_password": new, "confirm_password": confirm})
    assert answer.status_code == 400 and notice(answer.text) == message
    assert sign_in(another_browser(client), "rina@contoh.id").status_code == 303  # unchanged


def test_a_disabled_member_of_staff_is_signed_out_at_once(client: TestClient, sapa: Sapa) -> None:
    member = add_staff(sapa, "Rina", "rina@contoh.id")
    signed_in_client(client, "rina@contoh.id")
    with sapa.database.unit_of_work() as session:
        found = staff_store.find_by_id(session, member)
        assert found is not None
        found.active = False  # as if disabled elsewhere, without ending the sessions
    assert client.get("/console/password").status_code == 401


# --- the first admin's set-up link ----------------------------------------------------------------------------------


def setup_token(sapa: Sapa, hours: int = 24) -> str:
    with sapa.database.unit_of_work() as session:
        return staff_store.create_token(session, purpose="setup", staff_id=None, now=sapa.clock.now(),
                                        lifetime=timedelta(hours=hours))


def submit_setup(browser: TestClient, token: str, email: str = "admin@contoh.id",
                 password: str = "bakso-malang-enak") -> Any:
    form = browser.get(f"/console/setup?token={token}")
    return browser.post("/console/setup", data={
        "csrf_token": csrf(form.text), "token": token, "name": "Ayu", "email": email, "password": password,
        "confirm_password": password}, follow_redirects=False)


def test_the_set_up_link_creates_the_first_admin_and_signs_them_in(client: TestClient, sapa: Sapa) -> None:
    token = setup_token(sapa)
    form = client.get(f"/console/setup?token={token}")
    assert form.status_code == 200 and "Buat admin pertama" in form.text
    assert form.headers["Referrer-Policy"] == "no-referrer"
    answer = submit_setup(client, token)
    assert answer.status_code == 303
    staff_page = client.get("/console/staff")
    assert staff_page.status_code == 200 and "admin@contoh.id" in staff_page.text
    admin = stored(sapa, "admin@contoh.id")
    assert admin.role == "admin" and admin.password_hash and admin.password_hash.startswith("$argon2id$")
    assert {"staff.added", "staff.signed_in"} <= set(audit_actions(sapa))


def test_the_set_up_link_works_once(client: TestClient, sapa: Sapa) -> None:
    token = setup_token(sapa)
    assert submit_setup(client, token).status_code == 303
    again = another_browser(client).get(f"/console/setup?token={token}")
    assert again.status_code == 400
    assert "Sapa sudah punya admin" in notice(again.text)


def test_a_used_set_up_link_stays_used_even_without_an_admin(client: TestClient, sapa: Sapa) -> None:
    token = setup_token(sapa)
    submit_setup(client, token)
    with sapa.database.unit_of_work() as session:  # the admin is disabled: set-up is open again, this link is not
        admin = staff_store.find_by_email(session, "admin@contoh.id")
        assert admin is not None
        admin.active = False
    answer = another_browser(client).get(f"/console/setup?token={token}")
    assert answer.status_code == 400 and "Tautan ini tidak berlaku" in notice(answer.text)


def test_an_expired_or_wrong_set_up_link_does_nothing(client: TestClient, sapa: Sapa, clock: ManualClock) -> None:
    token = setup_token(sapa)
    clock.advance(timedelta(hours=24))
    for link in (f"/console/setup?token={token}", "/console/setup?token=made-up", "/console/setup"):
        answer = client.get(link)
        assert answer.status_code == 400 and "Tautan ini tidak berlaku" in notice(answer.text)
    assert submit_setup_blind(client, token).status_code == 400
    with sapa.database.unit_of_work(read_only=True) as session:
        assert staff_store.find_by_email(session, "admin@contoh.id") is None


def submit_setup_blind(browser: TestClient, token: str) -> Any:
    """A POST with a valid form token but a link that is not usable."""
    form = browser.get("/console/sign-in")
    return browser.post("/console/setup", data={
        "csrf_token": csrf(form.text), "token": token, "name": "Ayu", "email": "admin@contoh.id",
        "password": "bakso-malang-enak", "confirm_password": "bakso-malang-enak"})


def test_no_set_up_while_an_admin_can_sign_in(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Ayu", "ayu@contoh.id", "admin")
    token = setup_token(sapa)
    page = client.get(f"/console/setup?token={token}")
    assert page.status_code == 400 and notice(page.text) == "Sapa sudah punya admin. Silakan masuk."
    answer = submit_setup_blind(client, token)
    assert answer.status_code == 400
    with sapa.database.unit_of_work(read_only=True) as session:
        assert len(staff_store.list_staff(session)) == 1


def test_a_weak_set_up_password_is_refused_and_the_link_kept(client: TestClient, sapa: Sapa) -> None:
    token = setup_token(sapa)
    answer = submit_setup(client, token, password="pendek")
    assert answer.status_code == 400
    assert notice(answer.text) == "Kata sandi minimal 10 karakter."
    assert submit_setup(client, token).status_code == 303


# --- reset links ---------------------------------------------------------------------------------------------------


def reset_token(sapa: Sapa, member: int) -> str:
    with sapa.database.unit_of_work() as session:
        found = staff_store.find_by_id(session, member)
        assert found is not None
        return staff_store.reset_password(session, found, actor="test", now=sapa.clock.now(),
                                          lifetime=timedelta(hours=72), via="test")


def test_a_reset_link_sets_a_new_password_once(client: TestClient, sapa: Sapa) -> None:
    member = add_staff(sapa, "Rina", "rina@contoh.id")
    old_browser = signed_in_client(another_browser(client), "rina@contoh.id")
    token = reset_token(sapa, member)
    assert old_browser.get("/console/password").status_code == 401  # a reset signs them out everywhere
    assert sign_in(another_browser(client), "rina@contoh.id").status_code == 401  # and the old password is gone
    form = client.get(f"/console/reset?token={token}")
    assert form.status_code == 200 and "Halo Rina" in form.text
    answer = client.post("/console/reset", data={"csrf_token": csrf(form.text), "token": token,
                                                 "new_password": "nasi-goreng-pedas", "confirm_password":
                                                 "nasi-goreng-pedas"}, follow_redirects=False)
    assert answer.status_code == 303
    assert client.get("/console/password").status_code == 200  # signed in
    assert sign_in(another_browser(client), "rina@contoh.id", "nasi-goreng-pedas").status_code == 303
    used = another_browser(client).get(f"/console/reset?token={token}")
    assert used.status_code == 400 and "Tautan ini tidak berlaku" in notice(used.text)


def test_a_reset_link_of_a_disabled_member_does_not_work(client: TestClient, sapa: Sapa) -> None:
    member = add_staff(sapa, "Rina", "rina@contoh.id")
    token = reset_token(sapa, member)
    with sapa.database.unit_of_work() as session:
        found = staff_store.find_by_id(session, member)
        assert found is not None
        staff_store.disable_staff(session, found)
    assert client.get(f"/console/reset?token={token}").status_code == 400


def test_the_pages_speak_english_when_asked(client: TestClient) -> None:
    answer = client.get("/console/sign-in?lang=en")
    assert "<h1>Sign in</h1>" in answer.text
