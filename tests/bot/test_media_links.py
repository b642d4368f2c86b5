"""Signed links to customers' files (bot/media_links.py) and the route that serves them (bot/http/media.py).

The route is exercised through the real app: a Telegram or WhatsApp customer sends a file through the signed
webhook, the file sits at the fake provider, and GET /media/... fetches it with the real SDKs (PTB's getFile and
file download, an authenticated Twilio media URL with its redirect), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from sqlalchemy import select

from bot import media_links
from bot.app import Sapa
from bot.config import ConfigError, settings_from_mapping
from bot.media_links import MediaLinks
from store.models import AuditEntry, Message
from tests.support.providers import TWILIO_SID, ProviderCustomer
from tests.support.slack import desk_sapa, desk_settings

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
PHOTO = b"\xff\xd8\xff\xe0 a customer's photo of a broken kettle"


# -- signing ---------------------------------------------------------------------------------------


def signer(days: float = 7) -> MediaLinks:
    return MediaLinks(b"k" * 64, timedelta(days=days))


def parts(path: str) -> tuple[str, str, str, str]:
    url = urlsplit(path)
    _, _, message_id, index = url.path.split("/")
    query = dict(item.split("=", 1) for item in url.query.split("&"))
    return message_id, index, query["exp"], query["sig"]


def test_a_signed_link_names_the_message_and_file_and_verifies_until_it_expires() -> None:
    path = signer().path(42, 1, now=NOW)
    assert path.startswith("/media/42/1?exp=")
    message_id, index, expires, signature = parts(path)
    assert int(expires) == int((NOW + timedelta(days=7)).timestamp())
    assert signer().verify(message_id, index, expires, signature, now=NOW + timedelta(days=6, hours=23))
    assert not signer().verify(message_id, index, expires, signature, now=NOW + timedelta(days=7))


@pytest.mark.parametrize("change", ["message", "index", "expiry", "signature", "leading zero", "other key"])
def test_any_change_to_a_link_makes_it_invalid(change: str) -> None:
    message_id, index, expires, signature = parts(signer().path(42, 1, now=NOW))
    checked = signer()
    if change == "message":
        message_id = "43"
    elif change == "index":
        index = "0"
    elif change == "expiry":
        expires = str(int(expires) + 86400)  # a longer life is a forgery too
    elif change == "signature":
        signature = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    elif change == "leading zero":
        message_id = "042"  # the same number, but not what was signed
    else:
        checked = MediaLinks(b"another installation's key....................", timedelta(days=7))
    assert not checked.verify(message_id, index, expires, signature, now=NOW)


def test_the_expiry_is_configurable(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "config.yml").read_text())
    raw["media_links"] = {"expire_days": 1, "secret_file": str(tmp_path / "key")}
    settings = settings_from_mapping(raw, {}, "test")
    message_id, index, expires, signature = parts(media_links.links(settings).path(7, 0, now=NOW))
    assert int(expires) == int((NOW + timedelta(days=1)).timestamp())


# -- the key ---------------------------------------------------------------------------------------


def test_the_key_comes_from_the_environment_when_set(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "config.yml").read_text())
    raw["media_links"] = {"secret_file": str(tmp_path / "unused")}
    secret = "e" * 64
    settings = settings_from_mapping(raw, {"SAPA_MEDIA_LINK_SECRET": secret}, "test")
    assert media_links.links(settings).secret == secret.encode()
    assert not (tmp_path / "unused").exists()
    assert secret not in repr(settings)  # a SecretStr: never printed with the settings


def test_a_key_in_the_file_or_a_short_one_is_refused_without_echoing_it() -> None:
    raw = yaml.safe_load((ROOT / "config.yml").read_text())
    with pytest.raises(ConfigError, match="SAPA_MEDIA_LINK_SECRET"):
        settings_from_mapping({**raw, "media_links": {"secret": "x" * 40}}, {}, "test")
    with pytest.raises(ConfigError) as refused:
        settings_from_mapping(raw, {"SAPA_MEDIA_LINK_SECRET": "tooshort-s3cret"}, "test")
    assert "tooshort-s3cret" not in str(refused.value) and "32 characters" in str(refused.value)


def _key_of(path: str) -> bytes:
    return media_links.file_secret(Path(path))


def test_without_the_environment_one_key_is_made_and_every_process_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "data" / "media-link-secret"
    context = multiprocessing.get_context("spawn")  # separate interpreters, racing to create it
    with context.Pool(4) as pool:
        keys = pool.map(_key_of, [str(path)] * 8)
    assert len(set(keys)) == 1 and len(keys[0]) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # only the service's user reads it
    assert _key_of(str(path)) == keys[0]  # this process too
    assert [p.name for p in path.parent.iterdir()] == ["media-link-secret"]  # no temporary files left


def test_the_key_file_sits_next_to_the_sqlite_database_by_default(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "config.yml").read_text())
    raw["database"]["url"] = f"sqlite:///{tmp_path}/db/sapa.db"
    assert media_links.secret_file(settings_from_mapping(raw, {}, "test")) == tmp_path / "db" / "media-link-secret"
    raw["database"]["url"] = "postgresql+psycopg://sapa@db/sapa"
    assert media_links.secret_file(settings_from_mapping(raw, {}, "test")) == Path("var/media-link-secret")


# -- the route -------------------------------------------------------------------------------------


@pytest.fixture
def sapa(db_url: str, fakes: Any, clock: Any, interpreter: Any, database: Any) -> Iterator[Sapa]:
    yield from desk_sapa(desk_settings(db_url, fakes), clock, interpreter, database)


def send_raw(person: ProviderCustomer, fields: dict[str, Any]) -> int:
    """A Telegram message with `fields` and no text (a photo, a location...), through the signed webhook."""
    path, body, headers = person.request("", extra=fields)
    update = json.loads(body)
    del update["message"]["text"]
    return person.client.post(path, content=json.dumps(update).encode(), headers=headers).status_code


def last_inbound(sapa: Sapa) -> Message:
    with sapa.database.unit_of_work(read_only=True) as session:
        return session.execute(select(Message).where(Message.direction == "in").order_by(Message.id.desc())
                               ).scalars().first()


def link_for(sapa: Sapa, message: Message, index: int = 0) -> str:
    return media_links.links(sapa.settings).path(message.id, index, now=sapa.clock.now())


def audit(sapa: Sapa, action: str = "media.open") -> list[AuditEntry]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return list(session.execute(select(AuditEntry).where(AuditEntry.action == action)
                                    .order_by(AuditEntry.id)).scalars())


def telegram_photo(client: Any, fakes: Any, sapa: Sapa, *, size: int | None = None) -> Message:
    person = ProviderCustomer(client, fakes, "telegram", "700020", name="Wayan")
    file_id = fakes.add_telegram_file(PHOTO, file_path="photos/file_7.jpg", size=size)
    photo = [{"file_id": file_id + "small", "file_unique_id": "s", "width": 90, "height": 90},
             {"file_id": file_id, "file_unique_id": "AgADbig", "width": 1280, "height": 960}]
    assert send_raw(person, {"photo": photo, "caption": "ketel saya rusak"}) == 200
    message = last_inbound(sapa)
    assert message.media and message.media[0]["url"] == f"telegram:file/{file_id}"
    return message


def test_a_signed_link_serves_a_telegram_customers_photo_and_the_access_is_audited(client, fakes, sapa) -> None:
    message = telegram_photo(client, fakes, sapa)
    response = client.get(link_for(sapa, message), headers={"x-forwarded-for": "203.0.113.9"})
    assert response.status_code == 200, response.text
    assert response.content == PHOTO
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["content-disposition"].startswith("inline")
    assert response.headers["cache-control"] == "private, no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert [r.method for r in fakes.requests("telegram") if r.method in ("getFile", "file.download")] == [
        "getFile", "file.download"]
    [entry] = audit(sapa)
    assert (entry.actor, entry.subject_type, entry.subject_id) == ("media_link", "message", str(message.id))
    assert entry.detail["customer_id"] == message.customer_id and entry.detail["message_id"] == message.id
    assert entry.detail["address"] == "testclient" and entry.detail["forwarded_for"] == "203.0.113.9"


def test_the_console_shows_a_customers_photo_to_a_reader_and_audits_who_opened_it(client, fakes, sapa,
                                                                                   monkeypatch) -> None:
    """In the console a file is fetched for the signed-in member of staff (no link to pass around), and the audit
    row names them; a role that may not read transcripts, or nobody, gets nothing fetched."""
    from bot.console import auth
    from tests.console.conftest import CHEAP, add_staff, another_browser, signed_in_client

    monkeypatch.setattr(auth, "HASHER", CHEAP)
    message = telegram_photo(client, fakes, sapa)
    sari = add_staff(sapa, "Sari", "sari@example.co.id", "customer_service")
    add_staff(sapa, "Maya", "maya@example.co.id", "marketing")
    path = f"/console/media/{message.id}/0"
    https = {"base_url": "https://testserver"}  # the public URL is https here: the console's cookies are Secure
    assert another_browser(client, **https).get(path).status_code == 401  # the sign-in page
    assert signed_in_client(another_browser(client, **https), "maya@example.co.id").get(path).status_code == 403
    assert audit(sapa) == []
    agent = signed_in_client(another_browser(client, **https), "sari@example.co.id")
    page = agent.get(f"/console/conversations/{message.conversation_id}")
    assert f'src="{path}"' in page.text  # the transcript shows the photo inline
    response = agent.get(path)
    assert response.status_code == 200 and response.content == PHOTO
    assert response.headers["cache-control"] == "private, no-store"
    [entry] = audit(sapa)
    assert (entry.actor, entry.subject_id, entry.detail["customer_id"]) == (f"agent:{sari}", str(message.id),
                                                                              message.customer_id)
    assert agent.get(f"/console/media/{message.id}/9").status_code == 404


@pytest.mark.parametrize("problem", ["forged", "expired"])
def test_a_forged_or_expired_link_gets_403_and_nothing_is_fetched(client, fakes, sapa, clock, problem) -> None:
    message = telegram_photo(client, fakes, sapa)
    path = link_for(sapa, message)
    fakes.clear()
    if problem == "forged":
        path = path.replace(f"/media/{message.id}/0", f"/media/{message.id + 1}/0")
    else:
        clock.advance(timedelta(days=7, seconds=1))
    response = client.get(path)
    assert response.status_code == 403 and "not valid or has expired" in response.json()["error"]
    assert fakes.requests("telegram") == [] and audit(sapa) == []


def test_a_genuine_link_to_a_message_or_file_that_is_not_there_gets_404(client, fakes, sapa) -> None:
    message = telegram_photo(client, fakes, sapa)
    signer_now = media_links.links(sapa.settings)
    assert client.get(signer_now.path(message.id, 1, now=sapa.clock.now())).status_code == 404  # one file only
    assert client.get(signer_now.path(message.id + 1000, 0, now=sapa.clock.now())).status_code == 404
    assert audit(sapa) == []


def test_a_provider_failure_is_a_502_that_says_why(client, fakes, sapa) -> None:
    message = telegram_photo(client, fakes, sapa)
    fakes.fail_next("telegram", 502, method="getFile")
    response = client.get(link_for(sapa, message))
    assert response.status_code == 502 and response.json()["error"].startswith("Telegram did not hand over the file")
    assert audit(sapa) == []


def test_telegrams_download_limit_is_named(client, fakes, sapa) -> None:
    message = telegram_photo(client, fakes, sapa, size=25 * 1024 * 1024)
    response = client.get(link_for(sapa, message))
    assert response.status_code == 502 and "20 MB" in response.json()["error"]


def test_a_whatsapp_customers_media_is_fetched_with_the_accounts_credentials(client, fakes, sapa) -> None:
    url = fakes.add_twilio_media(b"%PDF-1.4 invoice", "application/pdf", account_sid=TWILIO_SID)
    assert requests.get(url, timeout=5).status_code == 401  # Twilio's media needs the account's credentials
    person = ProviderCustomer(client, fakes, "whatsapp", "+6281200000077", name="Dewi")
    assert person.write("", extra={"NumMedia": "1", "MediaUrl0": url, "MediaContentType0": "application/pdf"}) == 200
    message = last_inbound(sapa)
    response = client.get(link_for(sapa, message))
    assert response.status_code == 200, response.text
    assert response.content == b"%PDF-1.4 invoice" and response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].startswith("attachment")  # never rendered as a page of Sapa
    fetched = [r.method for r in fakes.requests("twilio") if r.method.startswith("Media")]
    assert fetched == ["Media.fetch", "Media.fetch", "Media.content"]  # refused without credentials; then redirected
    assert audit(sapa)[0].detail["channel"] == "whatsapp"


def test_provider_credentials_only_go_to_the_providers_own_hosts(fakes) -> None:
    from channels.base import Undeliverable
    from channels.telegram import TelegramChannel
    from channels.twilio import TwilioChannel

    twilio = TwilioChannel("whatsapp", TWILIO_SID, "test-twilio-auth-token", from_number="+14155238886",
                           api_base_url=fakes.twilio_base_url)
    for foreign in ("https://api.twilio.com.evil.example/2010-04-01/x", "http://api.twilio.com/x",
                    "https://evil.example/Media/ME1"):
        with pytest.raises(Undeliverable, match="not a Twilio media URL"):
            twilio.fetch_media(foreign)
    assert fakes.requests() == []
    telegram = TelegramChannel("123:ABC", "secret")
    assert telegram._file_base_url() == "https://api.telegram.org/file/bot123:ABC"  # beside .../bot<token>
    local = TelegramChannel("123:ABC", "secret", api_base_url=fakes.telegram_base_url)
    assert local._file_base_url() == f"{fakes.base_url}/file/bot123:ABC"
    with pytest.raises(Undeliverable, match="not a Telegram file reference"):
        local.fetch_media("https://example.com/x.jpg")
