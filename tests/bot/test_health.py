"""/livez and /readyz: what a load balancer and an orchestrator ask before and while sending traffic."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from bot.app import build, create_app
from store import create_database
from store.migrate import current_heads, downgrade, upgrade


def test_a_migrated_database_is_ready(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "revision": max(current_heads()),
                               "release_head": sorted(current_heads())}
    assert client.get("/livez").json() == {"status": "ok"}


def test_a_database_behind_this_release_is_not_ready_until_upgraded(client, db_url):
    downgrade(db_url, "-1")  # as if this release was rolled out before `sapa db upgrade` ran
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "sapa db upgrade" in response.json()["reason"]
    assert client.get("/livez").status_code == 200  # alive: restarting it would not help
    upgrade(db_url)
    assert client.get("/readyz").status_code == 200


def test_a_database_a_newer_release_migrated_keeps_this_replica_ready(client, sapa):
    # Expand first: the next release's additive migration runs while this release still serves.
    with sapa.database.unit_of_work() as session:
        session.execute(text("UPDATE alembic_version SET version_num = '9999_next_release'"))
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json()["revision"] == "9999_next_release"


def test_an_unreachable_database_is_not_ready_but_the_process_is_alive(base_settings, interpreter):
    database = create_database("postgresql+psycopg://sapa@127.0.0.1:1/sapa?connect_timeout=2")
    sapa = build(base_settings, interpreter=interpreter, database=database, model_cache=None)
    try:
        with TestClient(create_app(sapa, background=False)) as client:
            ready, live = client.get("/readyz"), client.get("/livez")
    finally:
        database.dispose()
    assert ready.status_code == 503 and ready.json() == {"status": "not ready", "reason": "database: OperationalError"}
    assert live.status_code == 200
