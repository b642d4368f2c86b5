"""Signed links to files Sapa never stores: /media/<message_id>/<index>?exp=<unix>&sig=<hmac-sha256>.

A customer's photo stays with Telegram or Twilio, an agent's file with Slack; the message row keeps a provider
reference (`telegram:file/…`, a Twilio media URL, `slack:…`). Staff open such a file through a link that names
the message and the file's place in it, carries an expiry, and is signed with HMAC-SHA256; bot/http/media.py
checks the signature before it looks anything up, asks the provider for the bytes, and audits the access.
The same links let Twilio fetch an agent's file (a public MediaUrl) and let a web chat customer open one.

The key comes from SAPA_MEDIA_LINK_SECRET (through bot.config). Without it one is generated once and kept in a
file (`media_links.secret_file`, by default next to the SQLite database), so every process of one installation
signs and checks with the same key. Replicas on several machines must share SAPA_MEDIA_LINK_SECRET instead.
The key is never logged. A leaf module: it imports only bot.config and bot.limits, themselves leaves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from bot.config import Settings
from bot.limits import is_ascii_number

log = logging.getLogger(__name__)

ENV_VAR = "SAPA_MEDIA_LINK_SECRET"
DEFAULT_SECRET_FILE = Path("var") / "media-link-secret"
SECRET_FILE_NAME = "media-link-secret"
_MIN_FILE_SECRET = 32  # characters in a generated key file: 64 hex digits are written
_lock = threading.Lock()
_file_secrets: dict[Path, bytes] = {}
_warned_shared = False


@dataclass(frozen=True)
class MediaLinks:
    """Signs and checks links; `ttl` is how long a link works after it was made."""

    secret: bytes
    ttl: timedelta

    def path(self, message_id: int, index: int, *, now: datetime) -> str:
        """`/media/<message_id>/<index>?exp=…&sig=…`, valid until now + ttl."""
        expires = int((now + self.ttl).timestamp())
        query = urlencode({"exp": expires, "sig": self.signature(str(message_id), str(index), str(expires))})
        return f"/media/{message_id}/{index}?{query}"

    def url(self, base_url: str, message_id: int, index: int, *, now: datetime) -> str:
        return base_url.rstrip("/") + self.path(message_id, index, now=now)

    def signature(self, message_id: str, index: str, expires: str) -> str:
        digest = hmac.new(self.secret, f"{message_id}/{index}/{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def verify(self, message_id: str, index: str, expires: str, signature: str, *, now: datetime) -> bool:
        """True for a link this installation signed that has not expired. The raw strings are checked, so
        "012" or "+12" never pass for 12; the signature is compared in constant time."""
        if not all(map(is_ascii_number, (message_id, index, expires))) or not signature:
            return False
        if not hmac.compare_digest(self.signature(message_id, index, expires).encode(), signature.encode()):
            return False
        return now.timestamp() < int(expires)


def links(settings: Settings) -> MediaLinks:
    """The link signer for these settings: the environment's key, else the installation's key file."""
    config = settings.media_links
    ttl = timedelta(days=config.expire_days)
    if config.secret is not None:
        return MediaLinks(config.secret.get_secret_value().encode(), ttl)
    _warn_if_shared(settings)
    return MediaLinks(file_secret(secret_file(settings)), ttl)


def base_url(settings: Settings) -> str:
    """Where people and providers reach this Sapa: server.public_base_url, else the address it listens on."""
    if settings.server.public_base_url:
        return settings.server.public_base_url.rstrip("/")
    host = settings.server.host
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.server.port}"


def secret_file(settings: Settings) -> Path:
    """media_links.secret_file, else next to the SQLite database file, else var/media-link-secret."""
    if settings.media_links.secret_file:
        return Path(settings.media_links.secret_file)
    url = settings.database.url
    if url.startswith("sqlite") and ":///" in url:
        database = url.split(":///", 1)[1].split("?", 1)[0]
        if database and database != ":memory:":
            return Path(database).parent / SECRET_FILE_NAME
    return DEFAULT_SECRET_FILE


def file_secret(path: Path) -> bytes:
    """The key kept in `path`, created (random, mode 0600) by the first process that needs it.

    Two processes starting together may both generate one: each writes its own temporary file and links it
    into place, which only one can do, and both then read the winner's key.
    """
    resolved = path.resolve()
    with _lock:
        if resolved in _file_secrets:
            return _file_secrets[resolved]
        secret = _read(resolved)
        if secret is None:
            _create(resolved)
            secret = _read(resolved)
        if secret is None:
            raise RuntimeError(f"the media link key file {resolved} could not be created")
        _file_secrets[resolved] = secret
        return secret


def _read(path: Path) -> bytes | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise RuntimeError(f"the media link key file {path} cannot be read: {exc}") from None
    if len(text) < _MIN_FILE_SECRET:
        raise RuntimeError(f"the media link key file {path} is damaged (too short): delete it to make a new one, "
                           f"or set {ENV_VAR}")
    return text.encode()


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # fails if another process got there first: its key wins
            log.info("media links: made a new signing key in %s (set %s to share one across machines)", path,
                     ENV_VAR)
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)


def _warn_if_shared(settings: Settings) -> None:
    global _warned_shared
    if settings.database.url.startswith("postgresql") and not _warned_shared:
        _warned_shared = True
        log.warning("media links: %s is not set, so the key is kept in %s on this machine; replicas on other "
                    "machines must share one key: set %s on all of them", ENV_VAR, secret_file(settings), ENV_VAR)
