"""/openapi.json documents every JSON API body, and /docs is Swagger UI served by Sapa alone (issue 16).

The JSON APIs read their bodies by hand (exact 4xx messages for hostile input), so FastAPI cannot see their
shape; bot/http/docs.json_body documents each from a pydantic model. These tests read the document an
integrator reads and check that no write route of the API is left without a body schema.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from bot.app import Sapa
from tests.support.population import api_sapa

ON_SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the document is the same on both

TOKEN = "test-api-token-0123456789"
VENDOR = Path(__file__).resolve().parents[2] / "bot" / "console" / "static" / "vendor"
WRITES = {"post", "put", "patch"}
# The JSON endpoints and a field each body must name (README.md and the modules' docstrings).
JSON_BODIES = {
    ("post", "/api/webchat/sessions"): "language",
    ("post", "/api/webchat/messages"): "client_message_id",
    ("post", "/api/transactions"): "external_id",
    ("post", "/api/segments"): "filters",
    ("post", "/api/broadcasts"): "messages",
    ("post", "/api/broadcasts/{broadcast_id}/{action}"): "at",
}
# Write routes outside /api/, and why they are not the JSON API. Provider webhooks stay out of the document: their
# bodies are the providers' formats, not an API of ours.
NOT_JSON_API = {
    "/webhooks/": "Twilio form posts and Telegram updates, verified by the provider's signature or secret",
    "/slack/events": "Slack's signed events and interactions",
    "/console": "the staff console's HTML form posts (pages for people, not an API)",
}


@pytest.fixture
def sapa(db_url: str, fakes: Any, clock: Any, interpreter: Any, database: Any) -> Iterator[Sapa]:
    yield from api_sapa(db_url, fakes, clock, interpreter, database, TOKEN)


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def resolved(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    assert ref.startswith("#/components/schemas/"), f"a $ref the document cannot resolve: {ref}"
    return resolved(document["components"]["schemas"][ref.rsplit("/", 1)[1]], document)


def body_properties(operation: dict[str, Any], document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Content type -> the named properties of the request body's schema."""
    content = operation["requestBody"]["content"]
    return {kind: resolved(media.get("schema", {}), document).get("properties", {}) for kind, media in content.items()}


@ON_SQLITE
def test_every_request_body_in_the_document_has_named_properties(document: dict[str, Any]) -> None:
    bare = [
        f"{method.upper()} {path} ({kind})"
        for path, operations in document["paths"].items()
        for method, operation in operations.items() if "requestBody" in operation
        for kind, properties in body_properties(operation, document).items() if not properties
    ]
    assert not bare, f"request bodies without a schema of named properties: {bare}"


@ON_SQLITE
def test_each_json_api_body_is_documented_as_json(document: dict[str, Any]) -> None:
    for (method, path), field in JSON_BODIES.items():
        operation = document["paths"][path][method]
        assert "requestBody" in operation, f"{method.upper()} {path} documents no body"
        properties = body_properties(operation, document)
        assert "application/json" in properties, f"{method.upper()} {path}: {sorted(properties)}"
        assert field in properties["application/json"], f"{method.upper()} {path}: {properties}"
    messages = body_properties(document["paths"]["/api/webchat/messages"]["post"], document)["application/json"]
    assert messages["session_id"]["pattern"]  # the constraints the channel checks, from channels/webchat.py
    sent = document["paths"]["/api/webchat/messages"]["post"]["requestBody"]
    assert set(resolved(sent["content"]["application/json"]["schema"], document)["required"]) == {
        "session_id", "client_message_id"}


@ON_SQLITE
def test_every_api_write_route_documents_its_body(client: TestClient, document: dict[str, Any]) -> None:
    """Listed from the app's routes: a new /api/ endpoint with no body schema (or hidden from the docs) fails."""
    app = client.app
    assert isinstance(app, FastAPI)
    writes = [(method.lower(), route) for route in app.routes if isinstance(route, APIRoute)
              for method in route.methods or () if method.lower() in WRITES]
    unexplained = [f"{method.upper()} {route.path}" for method, route in writes
                   if not route.path.startswith(("/api/", *NOT_JSON_API))]
    undocumented = [f"{method.upper()} {route.path}" for method, route in writes if route.path.startswith("/api/")
                    and not (route.include_in_schema and "requestBody" in document["paths"][route.path][method])]
    assert not unexplained, f"write routes outside /api/ that NOT_JSON_API does not explain: {unexplained}"
    assert not undocumented, f"API write routes without a documented body in /openapi.json: {undocumented}"
    assert {(m, r.path) for m, r in writes if r.path.startswith("/api/")} == set(JSON_BODIES)


@ON_SQLITE
def test_api_token_routes_name_the_bearer_scheme(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["SAPA_API_TOKEN"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path in ("/api/transactions", "/api/segments", "/api/broadcasts"):
        assert document["paths"][path]["post"]["security"] == [{"SAPA_API_TOKEN": []}]
    assert "security" not in document["paths"]["/api/webchat/messages"]["post"]  # the customer's page: no token


@ON_SQLITE
def test_docs_page_loads_only_sapa_served_assets(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "'/openapi.json'" in page.text
    assert '"validatorUrl": null' in page.text  # no schema sent to validator.swagger.io
    assets = re.findall(r'(?:href|src)="([^"]*)"', page.text)
    assert len(assets) == 3, assets  # script, style sheet, icon
    for asset in assets:
        assert asset.startswith("/console/static/vendor/"), asset
        assert client.get(asset).status_code == 200, asset
    assert not re.search(r"https?:|[\"']//", page.text), "the page names another origin"
    for gone in ("/redoc", "/docs/oauth2-redirect"):  # FastAPI's CDN pages are off
        assert client.get(gone).status_code == 404, gone


def test_vendored_md_lists_every_vendored_file_with_its_sha256() -> None:
    listing = (VENDOR / "VENDORED.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", listing, flags=re.M))
    shipped = {path.name for path in VENDOR.iterdir() if path.name != "VENDORED.md"}
    assert not shipped - set(re.findall(r"`([^`]+)`", listing)), "vendored files VENDORED.md does not name"
    assert {name for name in shipped if name.startswith("swagger-ui-")} <= set(rows)  # a row each, with a hash
    for name, digest in rows.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
