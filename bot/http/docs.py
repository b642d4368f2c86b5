"""The API documentation at /docs: Swagger UI served by Sapa itself (no CDN: it works offline).

FastAPI's own /docs and /redoc load Swagger UI and ReDoc from a CDN, so create_app turns them off and mounts
this page instead. Its script, style sheet and icon are the vendored files in bot/console/static/vendor
(listed with version, licence and SHA-256 in VENDORED.md); the page reads the schema from /openapi.json.

The JSON APIs read their bodies by hand (bot.limits.loads: exact 4xx messages for hostile input), so FastAPI
cannot see a body's shape; `json_body` documents it from a pydantic model without changing how it is read.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

SWAGGER_UI_VERSION = "5.36.0"
ASSETS = "console-static"  # the static mount of bot/console/mount.py, which serves vendor/
TOKEN_SCHEME = "SAPA_API_TOKEN"
# openapi_extra of a route that wants `Authorization: Bearer <SAPA_API_TOKEN>` (Swagger UI's Authorize button).
BEARER: dict[str, Any] = {"security": [{TOKEN_SCHEME: []}]}
DESCRIPTION = (
    "Sapa's HTTP APIs: the web chat (the customer's page), transactions from a shop or ERP system, and segments "
    "and broadcasts for marketing tools (README.md). The transactions, segments and broadcasts APIs want "
    "`Authorization: Bearer <SAPA_API_TOKEN>` (the Authorize button). Errors are JSON `{\"error\": \"...\"}`. "
    "The providers' webhooks (Twilio, Telegram, Slack) are not listed: their bodies are the providers' formats."
)


def mount(app: FastAPI) -> None:
    """GET /docs: Swagger UI on the app's OpenAPI document, every asset from Sapa."""

    app.description = app.description or DESCRIPTION  # read when the document is first built

    def asset(name: str) -> str:
        return str(app.url_path_for(ASSETS, path=f"vendor/swagger-ui-{SWAGGER_UI_VERSION}{name}"))

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        assert app.openapi_url is not None  # create_app keeps /openapi.json
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} API",
            swagger_js_url=asset("-bundle.js"),
            swagger_css_url=asset(".css"),
            swagger_favicon_url=asset("-favicon-32x32.png"),
            oauth2_redirect_url=None,
            # validatorUrl: the default sends the schema to validator.swagger.io for a badge.
            swagger_ui_parameters={"validatorUrl": None},
        )

    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI's document, plus the bearer token scheme the BEARER routes name (checked by hand, as bodies)."""
        schema = default_openapi()  # built once, then cached by FastAPI in app.openapi_schema
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes.setdefault(TOKEN_SCHEME, {"type": "http", "scheme": "bearer",
                                          "description": "The SAPA_API_TOKEN environment variable of the server."})
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's way to extend its document


def json_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its JSON body by hand: the model's schema, nested models inlined
    (a route's openapi_extra cannot add to components/schemas, where FastAPI would look for them)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline({**definitions[ref.removeprefix("#/$defs/")],
                               **{k: v for k, v in node.items() if k != "$ref"}})
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return {"requestBody": {"required": required, "content": {"application/json": {"schema": inline(schema)}}}}
