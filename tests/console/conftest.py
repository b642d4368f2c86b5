"""The console's test helpers: staff accounts made in the database, signing in through the real pages.

Argon2 runs with cheap parameters here (the production defaults cost about half a second a hash on a small machine);
the hash is still Argon2id, and one test proves that production's parameters replace cheaper ones on sign-in.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from bot.app import Sapa
from bot.console import auth
from handlers.permissions import ROLES
from store import staff as staff_store

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "kopi-susu-gula-aren"  # long enough, and not anyone's email
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[PasswordHasher]:
    monkeypatch.setattr(auth, "HASHER", CHEAP)
    yield CHEAP


def add_staff(sapa: Sapa, name: str, email: str, role: str = "customer_service", *,
              password: str | None = PASSWORD, active: bool = True, slack_user_id: str | None = None) -> int:
    """A member of staff straight in the database (what `sapa staff add --password-stdin` would make)."""
    with sapa.database.unit_of_work() as session:
        member = staff_store.create_staff(session, name=name, email=email, role=role, roles=ROLES,
                                          now=sapa.clock.now(), slack_user_id=slack_user_id,
                                          password_hash=auth.hash_password(password) if password else None)
        member.active = active
        session.flush()
        return member.id


def csrf(text: str) -> str:
    """The CSRF token the page's forms carry."""
    found = _CSRF.search(text)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD, *, next_path: str | None = None,
            **headers: str) -> Any:
    """Open the sign-in page and submit it, as a browser does; the answer is not followed."""
    form_page = client.get("/console/sign-in")
    data = {"email": email, "password": password, "csrf_token": csrf(form_page.text)}
    if next_path is not None:
        data["next"] = next_path
    return client.post("/console/sign-in", data=data, headers=headers, follow_redirects=False)


def signed_in_client(client: TestClient, email: str, password: str = PASSWORD) -> TestClient:
    answer = sign_in(client, email, password)
    assert answer.status_code == 303, answer.text
    return client


def another_browser(browser: TestClient, **options: Any) -> TestClient:
    """A second browser on the same app (its own cookies). Not entered: the app's lifespan already runs."""
    return TestClient(browser.app, **options)


def page_token(client: TestClient, path: str = "/console/password") -> str:
    """The signed-in page's CSRF token (every signed-in page carries it in the sign-out form)."""
    return csrf(client.get(path).text)


def notice(text: str) -> str:
    """The text of the page's first notice (status or error), whitespace collapsed."""
    found = re.search(r'<p class="notice[^"]*"[^>]*>(.*?)</p>', text, re.S)
    return " ".join(html.unescape(found.group(1)).split()) if found else ""
