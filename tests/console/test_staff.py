"""The admin's staff page (/console/staff): list, add with a one-time link, disable, reset; admins only."""

from __future__ import annotations

import re
from html import unescape

from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.app import Sapa, build
from bot.config import AgentConfig
from store import staff as staff_store
from store.models import Agent, AuditEntry
from tests.console.conftest import add_staff, another_browser, csrf, notice, page_token, sign_in, signed_in_client


def admin_browser(client: TestClient, sapa: Sapa) -> TestClient:
    add_staff(sapa, "Ayu", "ayu@contoh.id", "admin")
    return signed_in_client(client, "ayu@contoh.id")


def one_time_link(html: str) -> str:
    found = re.search(r'<code class="once-link">([^<]+)</code>', html)
    assert found, "no one-time link on the page"
    return unescape(found.group(1))


def audits(sapa: Sapa) -> list[tuple[str, str]]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return [(e.actor, e.action) for e in session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()]


def test_the_admin_sees_everyone(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Rina", "rina@contoh.id", slack_user_id="U0RINA")
    add_staff(sapa, "Lama", "lama@contoh.id", active=False)
    page = admin_browser(client, sapa).get("/console/staff")
    assert page.status_code == 200
    rows = re.findall(r'<tr id="staff-\d+">(.*?)</tr>', page.text, re.S)
    text = [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in rows]
    assert any("Rina rina@contoh.id Layanan pelanggan U0RINA Aktif" in row for row in text)
    assert any("Lama" in row and "Nonaktif" in row for row in text)
    assert 'aria-current="page">Staf</a>' in page.text


def test_adding_staff_shows_a_one_time_link_they_set_their_password_with(client: TestClient, sapa: Sapa) -> None:
    admin = admin_browser(client, sapa)
    answer = admin.post("/console/staff", data={"csrf_token": page_token(admin, "/console/staff"), "name": "Dewi",
                                               "email": "Dewi@Contoh.id", "role": "supervisor"})
    assert answer.status_code == 200 and "Staf ditambahkan." in answer.text
    link = one_time_link(answer.text)
    assert link.startswith("http://testserver/console/reset?token=")
    assert "dewi@contoh.id" in answer.text  # stored lower-cased
    assert "once-link" not in admin.get("/console/staff").text  # shown once: the list does not repeat it
    newcomer = another_browser(client)
    form = newcomer.get(link.removeprefix("http://testserver"))
    assert "Halo Dewi" in form.text
    token = link.split("token=")[1]
    newcomer.post("/console/reset", data={"csrf_token": csrf(form.text), "token": token,
                                          "new_password": "rendang-padang-1", "confirm_password": "rendang-padang-1"})
    assert "Masuk sebagai Dewi (Supervisor)" in newcomer.get("/console/password").text
    assert ("agent:1", "staff.added") in audits(sapa)


def test_adding_staff_with_a_taken_email_says_so(client: TestClient, sapa: Sapa) -> None:
    admin = admin_browser(client, sapa)
    answer = admin.post("/console/staff", data={"csrf_token": page_token(admin, "/console/staff"), "name": "Ayu 2",
                                               "email": "AYU@contoh.id", "role": "admin"})
    assert answer.status_code == 400
    assert notice(answer.text) == "Email ini sudah dipakai staf lain."
    assert 'value="Ayu 2"' in answer.text  # what was typed stays


def test_adding_staff_without_the_csrf_token_adds_nobody(client: TestClient, sapa: Sapa) -> None:
    admin = admin_browser(client, sapa)
    answer = admin.post("/console/staff", data={"name": "Eve", "email": "eve@contoh.id", "role": "admin"})
    assert answer.status_code == 403
    with sapa.database.unit_of_work(read_only=True) as session:
        assert staff_store.find_by_email(session, "eve@contoh.id") is None


def test_disabling_staff_signs_them_out_at_once(client: TestClient, sapa: Sapa) -> None:
    admin = admin_browser(client, sapa)
    rina = add_staff(sapa, "Rina", "rina@contoh.id")
    rina_browser = signed_in_client(another_browser(client), "rina@contoh.id")
    answer = admin.post(f"/console/staff/{rina}/disable", data={"csrf_token": page_token(admin, "/console/staff")})
    assert notice(answer.text) == "Staf dinonaktifkan dan sudah dikeluarkan dari semua browser."
    assert rina_browser.get("/console/password").status_code == 401
    assert sign_in(another_browser(client), "rina@contoh.id").status_code == 401
    assert ("agent:1", "staff.disabled") in audits(sapa)


def test_an_admin_cannot_disable_themselves(client: TestClient, sapa: Sapa) -> None:
    admin = admin_browser(client, sapa)
    answer = admin.post("/console/staff/1/disable", data={"csrf_token": page_token(admin, "/console/staff")})
    assert answer.status_code == 400
    assert notice(answer.text) == "Anda tidak bisa melakukan ini pada akun Anda sendiri."
    assert admin.get("/console/staff").status_code == 200


def test_a_reset_link_from_the_staff_page(client: TestClient, sapa: Sapa) -> None:
    admin = admin_browser(client, sapa)
    rina = add_staff(sapa, "Rina", "rina@contoh.id")
    rina_browser = signed_in_client(another_browser(client), "rina@contoh.id")
    answer = admin.post(f"/console/staff/{rina}/reset", data={"csrf_token": page_token(admin, "/console/staff")})
    assert "Kata sandi lama tidak berlaku lagi" in notice(answer.text)
    assert "/console/reset?token=" in one_time_link(answer.text)
    assert rina_browser.get("/console/password").status_code == 401
    assert ("agent:1", "staff.reset_issued") in audits(sapa)


def test_only_admins_manage_staff(client: TestClient, sapa: Sapa) -> None:
    add_staff(sapa, "Sari", "sari@contoh.id", "supervisor")
    supervisor = signed_in_client(client, "sari@contoh.id")
    page = supervisor.get("/console/staff")
    assert page.status_code == 403
    assert "Peran Anda tidak mengizinkan ini." in page.text
    assert 'href="/console/staff"' not in page.text  # no Staff link in the menu either
    token = page_token(supervisor)
    answer = supervisor.post("/console/staff", data={"csrf_token": token, "name": "Eve", "email": "eve@contoh.id",
                                                     "role": "admin"})
    assert answer.status_code == 403
    with sapa.database.unit_of_work(read_only=True) as session:
        assert staff_store.find_by_email(session, "eve@contoh.id") is None


def test_the_menu_shows_what_the_role_may_open(client: TestClient, sapa: Sapa) -> None:
    page = admin_browser(client, sapa).get("/console/password")
    for link in ('href="/console/inbox"', 'href="/console/tickets"', 'href="/console/staff"',
                 'action="/console/sign-out"'):
        assert link in page.text
    assert "Masuk sebagai Ayu (Admin)" in page.text


def test_a_slack_agent_disabled_in_the_console_stays_disabled_after_a_restart(sapa: Sapa) -> None:
    """`slack.agents` in config seeds the staff table; it does not undo an admin's decision at the next start."""
    settings = sapa.settings.model_copy(update={"slack": sapa.settings.slack.model_copy(update={
        "agents": (AgentConfig(slack_user_id="U0SARI", name="Sari", role="customer_service"),)})})
    build(settings, clock=sapa.clock, interpreter=sapa.interpreter, database=sapa.database, model_cache=None)
    with sapa.database.unit_of_work() as session:
        agent = session.execute(select(Agent).where(Agent.slack_user_id == "U0SARI")).scalar_one()
        assert agent.active
        agent.active = False
    build(settings, clock=sapa.clock, interpreter=sapa.interpreter, database=sapa.database, model_cache=None)
    with sapa.database.unit_of_work(read_only=True) as session:
        assert not session.execute(select(Agent).where(Agent.slack_user_id == "U0SARI")).scalar_one().active


def test_a_staff_id_that_is_no_row_id_is_refused_not_a_server_error(client: TestClient, sapa: Sapa) -> None:
    """Found by the soak fuzz run: a staff id past 64 bits reached SQLite (OverflowError, 500)."""
    add_staff(sapa, "Ani", "ani@example.co.id", "admin")
    admin = signed_in_client(another_browser(client), "ani@example.co.id")
    token = page_token(admin)
    for staff_id in ("9" * 30, "²", "0", "-1"):
        for action in ("disable", "reset"):
            answer = admin.post(f"/console/staff/{staff_id}/{action}", data={"csrf_token": token})
            assert answer.status_code in (400, 404), (staff_id, action, answer.status_code)
