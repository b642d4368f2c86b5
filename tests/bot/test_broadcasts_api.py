"""CRM-4.1 / CRM-4.3: the segments and broadcasts HTTP API, through the real app (Bearer SAPA_API_TOKEN)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.app import Sapa
from tests.support.population import api_sapa
from tests.support.providers import ProviderCustomer, drain

TOKEN = "test-api-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}
BODY = {"name": "Promo", "filters": {"channel": "telegram"}, "channels": ["telegram"],
        "messages": {"id": "Halo {{ name }}, ada promo!", "en": "Hi {{ name }}, an offer!"}}


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from api_sapa(db_url, fakes, clock, interpreter, database, TOKEN)


def test_crm_4_3_api_refuses_without_token_and_checks_the_acting_agent(client):
    assert client.get("/api/broadcasts").status_code == 401
    wrong = client.post("/api/broadcasts", json=BODY, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json() == {"error": "missing or wrong bearer token"}
    refused = client.post("/api/broadcasts", json=BODY, headers={**AUTH, "x-sapa-agent": "U0RINA"})
    assert refused.status_code == 403 and "your role is customer service" in refused.json()["error"]
    assert client.get("/api/broadcasts", headers=AUTH).json() == []  # nothing was stored


def test_crm_4_1_api_segment_with_preview_and_bad_filter(client):
    bad = client.post("/api/segments", json={"name": "x", "filters": {"min_points": "lots"}}, headers=AUTH)
    assert bad.status_code == 422 and "filter 'min_points'" in bad.json()["error"]
    made = client.post("/api/segments", json={"name": "tele", "filters": {"channel": "telegram"}},
                       headers={**AUTH, "x-sapa-agent": "U0MKT"})
    assert made.status_code == 201 and made.json()["total"] == 0
    assert client.get("/api/segments/tele", headers=AUTH).json()["filters"] == {"channel": ["telegram"]}
    assert client.get("/api/segments/nope", headers=AUTH).status_code == 404
    assert client.delete("/api/segments/tele", headers=AUTH).status_code == 200
    assert client.get("/api/segments", headers=AUTH).json() == []


def test_crm_4_3_api_create_schedule_and_state_errors(client, fakes, sapa, clock):
    budi = ProviderCustomer(client, fakes, "telegram", "8801", "Budi")
    assert budi.write("halo") == 200
    assert budi.write("STOP") == 200  # opted out: skipped
    assert client.post("/api/broadcasts", content=b"{", headers=AUTH).status_code == 422
    assert client.post("/api/broadcasts", content=b"x" * 70_000, headers=AUTH).status_code == 413
    webchat = client.post("/api/broadcasts", json={**BODY, "channels": ["webchat"]}, headers=AUTH)
    assert webchat.status_code == 422 and "web chat cannot receive broadcasts" in webchat.json()["error"]
    created = client.post("/api/broadcasts", json=BODY, headers={**AUTH, "x-sapa-agent": "U0MKT"})
    assert created.status_code == 201
    broadcast_id = created.json()["id"]
    assert created.json()["status"] == "draft"
    preview = client.post(f"/api/broadcasts/{broadcast_id}/preview", headers=AUTH).json()
    assert preview["skipped"] == {"opted_out": 1} and preview["recipients"] == 0
    assert client.post(f"/api/broadcasts/{broadcast_id}/resume", headers=AUTH).status_code == 409
    assert client.post("/api/broadcasts/999/pause", headers=AUTH).status_code == 404
    scheduled = client.post(f"/api/broadcasts/{broadcast_id}/schedule", json={"at": "2026-01-06T10:00"},
                            headers=AUTH)
    assert scheduled.status_code == 200 and scheduled.json()["scheduled_at"] == "2026-01-06T03:00:00+00:00"
    assert client.post(f"/api/broadcasts/{broadcast_id}/cancel", headers=AUTH).json()["status"] == "cancelled"
    again = client.post(f"/api/broadcasts/{broadcast_id}/resume", headers=AUTH)
    assert again.status_code == 409 and "is cancelled: cannot resume" in again.json()["error"]
    shown = client.get(f"/api/broadcasts/{broadcast_id}", headers=AUTH).json()
    assert shown["status"] == "cancelled" and "progress" in shown
    test = client.post(f"/api/broadcasts/{broadcast_id}/test", json={"to": "8802", "channel": "telegram"},
                       headers=AUTH)
    assert test.status_code == 202
    drain(sapa, clock)
    assert ProviderCustomer(client, fakes, "telegram", "8802").texts()[0].startswith("Halo , ada promo!")


@pytest.mark.parametrize("text", ["{{ 'x' * 10**8 }}", "{{ name * 100000 }}", "{{ 2 ** 1000000 }}",
                                  "{% for i in range(100000) %}promo {% endfor %}"])
def test_a_template_that_would_render_unbounded_text_is_refused(client, text):
    """Issue 15, item 2: a short broadcast text may not build a huge one (it rendered 100 MB and was accepted)."""
    refused = client.post("/api/broadcasts", json={**BODY, "messages": {"id": text, "en": "Hi"}}, headers=AUTH)
    assert refused.status_code == 422
    assert "does not render" in refused.json()["error"] or "not allowed" in refused.json()["error"]
    assert client.get("/api/broadcasts", headers=AUTH).json() == []
