"""One local fake of the Telegram Bot API, Twilio Messages API and Slack Web API.

The real SDKs talk to it unchanged (/work/shared/providers/fake-servers.md says how to point each one
here). It records every request, can be scripted to fail the way the real services do (`fail_next`), fails a
seeded fraction of message sends (`Faults`: 500, 429, a held answer past the client's timeout, or accepted and
then answered 500 / with the connection dropped), and sends Twilio status callbacks signed with Twilio's
algorithm. Tests use `FakeProviders` directly; `sapa fake-providers` runs `main()` in the foreground and
`sapa simulate` drives it over /_fake/*.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import secrets
import sys
import threading
import time
from base64 import b64decode
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.error import HTTPError
from urllib.parse import parse_qs, unquote, urlencode, urlsplit
from urllib.request import ProxyHandler, Request, build_opener

from twilio.request_validator import RequestValidator

PROVIDERS = ("telegram", "twilio", "slack")
SEND_METHODS = {"telegram": frozenset({"sendMessage", "sendPhoto", "sendDocument"}),
                "twilio": frozenset({"Messages.create"}),
                "slack": frozenset({"chat.postMessage", "chat.postEphemeral"})}
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "SapaBot", "username": "sapa_test_bot"}
SLACK_AUTH = {"ok": True, "url": "https://sapa-test.slack.com/", "team": "Sapa Test", "user": "sapa",
              "team_id": "T0SAPA", "user_id": "U0SAPABOT", "bot_id": "B0SAPABOT"}
# PTB sends nested objects as JSON strings inside the form; tests want to assert on the objects.
_TELEGRAM_JSON_FIELDS = frozenset({"reply_markup", "reply_parameters", "entities", "caption_entities",
                                   "link_preview_options", "commands", "scope", "allowed_updates", "media"})
_TELEGRAM_TRUE = frozenset({"answerCallbackQuery", "setWebhook", "deleteWebhook", "setMyCommands",
                            "deleteMyCommands", "sendChatAction"})
_TELEGRAM_ERRORS = {400: "Bad Request: chat not found", 401: "Unauthorized", 404: "Not Found",
                    403: "Forbidden: bot was blocked by the user", 409: "Conflict: terminated by other getUpdates"}
_TWILIO_ERRORS = {400: (21211, "The 'To' number is not a valid phone number."), 401: (20003, "Authenticate"),
                  404: (20404, "The requested resource was not found")}
_PHONE = re.compile(r"\+?\d{4,}(\d{3})")
_AUTO_CALLBACK_DELAY_S = 0.1  # real callbacks come after the 201: give the app time to store the sid
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # getFile refuses bigger files: "Bad Request: file is too big"
# What files.slack.com answers a download without a valid token: a sign-in page, with 200 (not an error).
SLACK_SIGN_IN_PAGE = b"<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Slack</body></html>"


@dataclass(frozen=True)
class Recorded:
    """One request a provider fake received, successful or not."""

    provider: str  # "telegram" | "twilio" | "slack"
    method: str  # "sendMessage", "Messages.create", "chat.postMessage", ...
    path: str
    headers: dict[str, str]  # lower-cased names
    params: dict[str, Any]  # form fields (first value each) or JSON body; Telegram JSON strings decoded
    at: float  # time.time()
    fault: str = ""  # the Faults kind applied to this request, "" when none
    delivered: bool = False  # a message send the fake took (the customer has it), whatever it answered


FAULT_KINDS = ("500", "429", "timeout", "accept_then_500", "accept_then_drop")


@dataclass(frozen=True)
class Faults:
    """Seeded random failures of message sends (Telegram sendMessage/sendPhoto/sendDocument, Twilio Messages POST,
    Slack chat.postMessage/postEphemeral); scripted `fail_next` failures go first. Each send fails with
    probability `fraction`, as one of `kinds` chosen by the same seeded generator:

    - "500": not taken, answered 500; "429": not taken, answered 429 (Telegram retry_after 1, Slack Retry-After 1);
    - "timeout": taken or not (a seeded coin), and the answer held `hold_s` seconds, longer than the client waits
      (Sapa's clients: Twilio HTTP_TIMEOUT_S 15 s, Telegram CALL_TIMEOUT_S 30 s and PTB's 5 s read timeout;
      tests shorten those and `hold_s`); taken: the real answer, late; not taken: a late 504;
    - "accept_then_500": taken (the customer has it, Twilio lists it) and answered 500;
    - "accept_then_drop": taken, and the connection closed without an answer.

    A send the fake would refuse anyway (a missing chat_id, a bad number) is refused as usual, not faulted. Lookups
    (Twilio's Messages list, Slack's conversations.history and .replies) never are: script one with `fail_next`.
    """

    fraction: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = ("500", "429", "timeout", "accept_then_500")
    hold_s: float = 1.0
    providers: tuple[str, ...] = PROVIDERS

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        if not self.kinds or set(self.kinds) - set(FAULT_KINDS):
            raise ValueError(f"kinds must be some of {', '.join(FAULT_KINDS)}")
        if set(self.providers) - set(PROVIDERS):
            raise ValueError(f"providers must be some of {', '.join(PROVIDERS)}")
        if self.hold_s < 0:
            raise ValueError("hold_s must not be negative")


@dataclass
class _Failure:
    provider: str
    status: int
    times: int
    method: str | None = None
    retry_after: int | None = None
    code: int | None = None
    description: str | None = None


@dataclass
class _Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    ok: bool = True  # False for every answer the SDK turns into an error (Slack errors can be HTTP 200)
    then: Callable[[], None] | None = None  # runs after the answer is written
    hold_s: float = 0.0  # wait this long before answering (Faults "timeout")
    drop: bool = False  # close the connection instead of answering (Faults "accept_then_drop")
    fault: str = ""  # the Faults kind that made this answer
    delivered: bool | None = None  # a send the fake took; None: as `ok` says


class _BadRequest(Exception):
    """The request cannot be parsed."""


def _telegram_error(status: int, retry_after: int | None, code: int | None, description: str | None) -> _Reply:
    if status == 429:  # PTB raises RetryAfter because of `parameters`, not because of the status
        wait = retry_after or 1
        return _Reply(429, {"ok": False, "error_code": 429, "parameters": {"retry_after": wait},
                            "description": description or f"Too Many Requests: retry after {wait}"}, ok=False)
    default = "Internal Server Error" if status >= 500 else _TELEGRAM_ERRORS.get(status, f"Error {status}")
    return _Reply(status, {"ok": False, "error_code": status, "description": description or default}, ok=False)


def _twilio_error(status: int, retry_after: int | None, code: int | None, description: str | None) -> _Reply:
    if status == 429:
        body = {"code": 20429, "message": "Too Many Requests",
                "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}
        return _Reply(429, body, {"Retry-After": str(retry_after)} if retry_after else {}, ok=False)
    if status >= 500:
        return _Reply(status, {"code": 20500, "message": "Internal Server Error", "status": status}, ok=False)
    default_code, default_message = _TWILIO_ERRORS.get(status, _TWILIO_ERRORS[400])
    code = code or default_code
    return _Reply(status, {"code": code, "message": description or default_message,
                           "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}, ok=False)


def _slack_error(status: int, retry_after: int | None, code: int | None, description: str | None) -> _Reply:
    if status == 429:
        return _Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after or 1)}, ok=False)
    default = "channel_not_found" if status == 200 else "internal_error"  # Slack reports most errors as 200
    return _Reply(status, {"ok": False, "error": description or default}, ok=False)


_ERRORS = {"telegram": _telegram_error, "twilio": _twilio_error, "slack": _slack_error}


def _parse_body(content_type: str, raw: bytes) -> dict[str, Any]:
    """Form, JSON or multipart, whichever the SDK chose; raises _BadRequest when unreadable."""
    if not raw:
        return {}
    if "json" in content_type:
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise _BadRequest(f"invalid JSON body: {exc}") from exc
        if not isinstance(body, dict):
            raise _BadRequest("the JSON body must be an object")
        return body
    if content_type.startswith("multipart/"):  # file uploads: PTB sendPhoto with bytes, Slack files
        message = BytesParser(policy=policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        if not message.is_multipart():
            raise _BadRequest("malformed multipart body")
        fields: dict[str, Any] = {}
        for part in cast(EmailMessage, message).iter_parts():
            name, data = part.get_param("name", header="content-disposition"), part.get_payload(decode=True)
            size = len(data) if isinstance(data, bytes) else 0
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else ""
            if isinstance(name, str):  # files are summarised: tests assert that one went, not on its bytes
                fields.setdefault(name, f"<file {part.get_filename()} {size} bytes>" if part.get_filename() else text)
        return fields
    return _first_values(raw.decode("utf-8", "replace"))


def _first_values(query: str) -> dict[str, Any]:
    return {key: values[0] for key, values in parse_qs(query, keep_blank_values=True).items()}


def _decode_telegram(params: dict[str, Any]) -> dict[str, Any]:
    decoded = dict(params)
    for key in _TELEGRAM_JSON_FIELDS & decoded.keys():
        try:
            decoded[key] = json.loads(decoded[key]) if isinstance(decoded[key], str) else decoded[key]
        except ValueError:
            pass  # the fake records what was sent; judging it is the test's job
    return decoded


def _route(path: str) -> tuple[str, str] | None:
    """(provider, method) for a provider API path, None when no fake serves it."""
    if path.startswith("/file/bot"):  # Telegram's file server: /file/bot<token>/<file_path>
        return "telegram", "file.download"
    if path.startswith("/files-pri/"):  # Slack's url_private(_download)
        return "slack", "files.download"
    if path.startswith("/twilio-media/"):  # where Twilio's media URLs redirect to (S3 in real life)
        return "twilio", "Media.content"
    if re.match(r"^/2010-04-01/Accounts/[^/]+/Messages/[^/]+/Media/[^/.]+$", path):
        return "twilio", "Media.fetch"
    if match := re.match(r"^/bot([^/]+)/([A-Za-z]\w*)$", path):
        return "telegram", match.group(2)
    if match := re.match(r"^/api/([\w.]+)$", path):
        return "slack", match.group(1)
    if path.startswith("/2010-04-01/"):
        return "twilio", "Messages.create" if re.match(r"^/2010-04-01/Accounts/[^/]+/Messages\.json$", path) else "?"
    return None


def _segments(body: str) -> int:
    # GSM-7 fits 160 characters (153 per part); anything else is UCS-2 with 70 (67 per part).
    single, multi = (160, 153) if body.isascii() else (70, 67)
    return 1 if len(body) <= single else -(-len(body) // multi)


def _int_if_numeric(value: Any) -> Any:
    return int(value) if re.fullmatch(r"-?\d+", str(value)) else value


def mask_phones(text: str) -> str:
    """Hide phone numbers except their last 3 digits: logs must not show customers' numbers."""
    return _PHONE.sub(lambda m: re.sub(r"\d", "*", m.group(0)[:-3]) + m.group(1), text)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fake: FakeProviders) -> None:
        super().__init__(address, _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that died with its connection open (a killed Sapa) is normal here; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # Keep-alive, as the real APIs: a broadcast of thousands must not open a connection per message.
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: without this, each waits ~40 ms

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, verb: str) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        length = headers.get("content-length") or "0"
        try:
            if not length.isdigit():
                raise _BadRequest(f"invalid Content-Length {length!r}")
            reply = self.server.fake._dispatch(verb, self.path, headers, self.rfile.read(int(length)))
        except _BadRequest as exc:
            self.close_connection = True  # the body may be unread: this connection cannot carry another request
            reply = _Reply(400, {"ok": False, "error": "bad_request", "description": str(exc)}, ok=False)
        except Exception as exc:  # a bug in the fake must still answer, or the SDK waits for its timeout
            reply = _Reply(500, {"ok": False, "error": "fake_provider_bug", "description": repr(exc)}, ok=False)
        if reply.hold_s:
            time.sleep(reply.hold_s)  # the client has given up by now: what follows goes nowhere
        if reply.drop:
            self.close_connection = True  # taken, and no answer at all: the client sees the connection close
            return
        data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        headers = {"Content-Type": "application/json", "Content-Length": str(len(data)), **reply.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        if reply.then is not None:
            reply.then()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # main() prints its own masked line per request


class FakeProviders:
    """A fake Telegram + Twilio + Slack API server on 127.0.0.1 that records and can fail on demand."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, twilio_auth_token: str | None = None,
                 first_message_id: int = 1, faults: Faults | None = None) -> None:
        """`first_message_id`: the first Telegram message id the fake hands out (it counts across all chats,
        where real Telegram counts per chat); raise it when a test posts inbound messages with small ids.
        `faults`: seeded random failures of message sends (see Faults; `set_faults` changes them later)."""
        self.host, self.port, self.twilio_auth_token = host, port, twilio_auth_token
        self.auto_status_callbacks = False  # True: every Twilio create is followed by "sent" then "delivered"
        self.on_record: Callable[[Recorded, int], None] | None = None  # told each request and its HTTP status
        self._lock = threading.Lock()
        self._log: list[tuple[int, Recorded, int, bool]] = []  # (index, request, HTTP status, ok)
        self._indexes = itertools.count()  # never reset, so pollers of /_fake/requests survive clear()
        self._failures: list[_Failure] = []
        self._faults: Faults | None = None
        self._fault_rng = random.Random(0)
        self.set_faults(faults)
        self._twilio_sent: dict[str, dict[str, str]] = {}  # sid -> what its status callbacks need
        self._message_ids, self._slack_ts = itertools.count(first_message_id), itertools.count(100, 100)
        self._slack_posts: dict[str, list[dict[str, Any]]] = {}  # channel -> messages posted there, oldest first
        # Files the fakes can hand out: Telegram file_id -> entry, Twilio media id / Slack path -> (bytes, type).
        self._telegram_files: dict[str, dict[str, Any]] = {}
        self._twilio_media: dict[str, tuple[bytes, str]] = {}
        self._slack_files: dict[str, dict[str, Any]] = {}  # file id -> Slack's file object
        self._slack_downloads: dict[str, tuple[bytes, str]] = {}  # /files-pri/... path -> content
        self._webhook_url = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeProviders:
        """Bind and serve in a daemon thread; returns self."""
        self._server = _Server((self.host, self.port), self)
        # A short poll interval makes stop() quick: shutdown() waits for the serving loop's next poll.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-providers",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeProviders:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """Root URL of the running server, e.g. http://127.0.0.1:8099."""
        if self._server is None:
            raise RuntimeError("FakeProviders is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def telegram_base_url(self) -> str:
        """For telegram.Bot(token, base_url=...), which appends the token."""
        return f"{self.base_url}/bot"

    @property
    def twilio_base_url(self) -> str:
        """For `client.api.base_url` of a twilio Client without region or edge."""
        return self.base_url

    @property
    def slack_base_url(self) -> str:
        """For WebClient(base_url=...); slack_sdk joins method names with urljoin, so the slash matters."""
        return f"{self.base_url}/api/"

    def requests(self, provider: str | None = None, method: str | None = None) -> list[Recorded]:
        """Every recorded request, oldest first, optionally of one provider and method."""
        return [r for _, r, _, _ in self._snapshot() if provider in (None, r.provider) and method in (None, r.method)]

    def sent(self, provider: str) -> list[Recorded]:
        """The message sends of `provider` that reached the customer: answered with success, or taken and then
        answered with an error, late, or not at all (Faults "accept_then_500", "accept_then_drop", "timeout")."""
        return [r for _, r, _, _ in self._snapshot() if r.delivered and r.provider == provider
                and r.method in SEND_METHODS[provider]]

    def twilio_messages(self) -> dict[str, dict[str, str]]:
        """Every message the Twilio fake took, by sid (To, From, Body, ...), answered with success or not."""
        with self._lock:
            return {sid: dict(message) for sid, message in self._twilio_sent.items()}

    def slack_messages(self, channel: str) -> list[dict[str, Any]]:
        """The messages Slack kept in `channel` (taken under a fault too), oldest first, with their metadata."""
        with self._lock:
            return [_shown(message, metadata=True) for message in self._slack_posts.get(channel, [])]

    def set_faults(self, faults: Faults | None) -> None:
        """Fail a seeded fraction of message sends from now on (None: no more); the generator restarts at the seed."""
        with self._lock:
            self._faults = faults if faults is not None and faults.fraction > 0 else None
            self._fault_rng = random.Random(faults.seed if faults is not None else 0)

    def fail_next(self, provider: str, status: int, *, times: int = 1, method: str | None = None,
                  retry_after: int | None = None, code: int | None = None, description: str | None = None) -> None:
        """Answer the next `times` requests of `provider` (and `method`, if given) with this failure."""
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
        if not 200 <= status <= 599 or times < 1:
            raise ValueError("status must be 200..599 and times at least 1")
        with self._lock:
            self._failures.append(_Failure(provider, status, times, method, retry_after, code, description))

    def add_telegram_file(self, data: bytes, *, file_path: str = "photos/file_0.jpg",
                          content_type: str = "image/jpeg", file_id: str | None = None, size: int | None = None
                          ) -> str:
        """A file a customer sent the bot; returns its file_id. getFile and the file server then serve it.
        `size` pretends a larger file (getFile refuses more than 20 MB, as Telegram does)."""
        file_id = file_id or f"AgACAgFakeFile{secrets.token_hex(6)}"
        with self._lock:
            self._telegram_files[file_id] = {"data": data, "file_path": file_path, "content_type": content_type,
                                             "size": len(data) if size is None else size}
        return file_id

    def add_twilio_media(self, data: bytes, content_type: str = "image/jpeg", *,
                         account_sid: str = "AC" + "0" * 32) -> str:
        """Media a customer sent by MMS/WhatsApp; returns its MediaUrl (Basic auth, then a redirect to the bytes)."""
        media_sid = "ME" + secrets.token_hex(16)
        with self._lock:
            self._twilio_media[media_sid] = (data, content_type)
        return f"{self.base_url}/2010-04-01/Accounts/{account_sid}/Messages/MM{secrets.token_hex(16)}/Media/{media_sid}"

    def add_slack_file(self, data: bytes, *, name: str = "receipt.pdf", mimetype: str = "application/pdf",
                       user: str = "U0RINA", size: int | None = None, mode: str = "hosted") -> dict[str, Any]:
        """A file an agent uploaded to Slack; returns Slack's file object, as in a file_share event's files[].
        url_private(_download) are served to requests with the bot token; files.info knows it too."""
        file_id = "F0" + secrets.token_hex(5).upper()
        root = f"{self.base_url}/files-pri/T0SAPA-{file_id}"
        now = int(time.time())
        shown = {"id": file_id, "created": now, "timestamp": now, "name": name, "title": name, "mimetype": mimetype,
                 "filetype": name.rsplit(".", 1)[-1] if "." in name else "binary", "pretty_type": mimetype,
                 "user": user, "user_team": "T0SAPA", "editable": False, "size": len(data) if size is None else size,
                 "mode": mode, "is_external": False, "external_type": "", "is_public": False,
                 "public_url_shared": False, "display_as_bot": False, "username": "",
                 "url_private": f"{root}/{name}", "url_private_download": f"{root}/download/{name}",
                 "permalink": f"https://sapa-test.slack.com/files/{user}/{file_id}/{name}",
                 "has_rich_preview": False, "file_access": "visible"}
        with self._lock:
            self._slack_files[file_id] = shown
            for key in ("url_private", "url_private_download"):
                self._slack_downloads[urlsplit(str(shown[key])).path] = (data, mimetype)
        return dict(shown)

    def clear(self) -> None:
        """Forget recorded requests and scripted failures (created Twilio sids still get callbacks)."""
        with self._lock:
            self._log.clear()
            self._failures.clear()

    def post_twilio_status(self, message_sid: str, status: str, error_code: int | None = None) -> int:
        """POST a Twilio-signed status callback for `message_sid` now; returns the app's HTTP status."""
        if not self.twilio_auth_token:
            raise RuntimeError("post_twilio_status needs twilio_auth_token: Twilio signs callbacks with it")
        with self._lock:
            message = self._twilio_sent.get(message_sid)
        if message is None:
            raise KeyError(f"the fake never created Twilio message {message_sid!r}")
        if not (url := message["StatusCallback"]):
            raise ValueError(f"Twilio message {message_sid} was created without a StatusCallback")
        params = {"MessageSid": message_sid, "SmsSid": message_sid, "AccountSid": message["AccountSid"],
                  "To": message["To"], "MessageStatus": status, "SmsStatus": status, "ApiVersion": "2010-04-01"}
        params.update({name: message[name] for name in ("From", "MessagingServiceSid") if message[name]})
        if message["To"].startswith("whatsapp:"):
            params["ChannelPrefix"] = "whatsapp"
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        signature = RequestValidator(self.twilio_auth_token).compute_signature(url, params)
        request = Request(url, data=urlencode(params).encode(), method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})
        try:  # without proxies: the app under test is local
            with build_opener(ProxyHandler({})).open(request, timeout=10) as response:
                return int(response.status)
        except HTTPError as exc:
            return exc.code

    def _snapshot(self) -> list[tuple[int, Recorded, int, bool]]:
        with self._lock:
            return list(self._log)

    def _dispatch(self, verb: str, target: str, headers: dict[str, str], raw: bytes) -> _Reply:
        url = urlsplit(target)
        if url.path.startswith("/_fake/"):
            return self._control(verb, url.path, url.query, raw)
        if (route := _route(url.path)) is None:
            return _Reply(404, {"ok": False, "error": "not_found", "description": f"nothing at {url.path}"}, ok=False)
        provider, method = route
        if provider == "twilio" and method == "Messages.create" and verb == "GET":
            method = "Messages.list"
        try:
            params = {**_first_values(url.query), **_parse_body(headers.get("content-type", ""), raw)}
        except _BadRequest as exc:
            params, reply = {}, _ERRORS[provider](400, None, None, str(exc))
        else:
            params = _decode_telegram(params) if provider == "telegram" else params
            reply = self._answer(provider, method, url.path, headers, params)
        delivered = reply.ok if reply.delivered is None else reply.delivered
        request = Recorded(provider, method, unquote(url.path), headers, params, time.time(), reply.fault,
                           delivered and method in SEND_METHODS[provider])
        with self._lock:
            self._log.append((next(self._indexes), request, reply.status, reply.ok))
        if self.on_record is not None:
            self.on_record(request, reply.status)
        return reply

    def _answer(self, provider: str, method: str, path: str, headers: dict[str, str], params: dict[str, Any]) -> _Reply:
        # Twilio authenticates before anything else; its redirect target (S3 in real life) needs no credentials.
        if provider == "twilio" and method != "Media.content" and not self._twilio_authorized(headers):
            return _twilio_error(401, None, None, None)
        if (failure := self._take_failure(provider, method)) is not None:
            return _ERRORS[provider](failure.status, failure.retry_after, failure.code, failure.description)
        if (drawn := self._draw_fault(provider, method)) is not None:
            return self._faulty(*drawn, provider, method, path, headers, params)
        return self._handle(provider, method, path, headers, params)

    def _handle(self, provider: str, method: str, path: str, headers: dict[str, str], params: dict[str, Any]
                ) -> _Reply:
        if method in ("file.download", "files.download", "Media.fetch", "Media.content"):
            return self._download(method, path, headers)
        if provider == "telegram":
            return self._telegram(method, params)
        if provider == "twilio":
            return self._twilio(method, path, params)
        return self._slack(method, headers, params)

    def _draw_fault(self, provider: str, method: str) -> tuple[str, bool, float] | None:
        """(kind, taken, hold_s) when this send fails by Faults, else None."""
        with self._lock:
            faults = self._faults
            if faults is None or provider not in faults.providers or method not in SEND_METHODS[provider]:
                return None
            if self._fault_rng.random() >= faults.fraction:
                return None
            kind = self._fault_rng.choice(faults.kinds)
            taken = kind.startswith("accept_") or (kind == "timeout" and self._fault_rng.random() < 0.5)
            return kind, taken, faults.hold_s

    def _faulty(self, kind: str, taken: bool, hold_s: float, provider: str, method: str, path: str,
                headers: dict[str, str], params: dict[str, Any]) -> _Reply:
        if not taken:
            status = {"500": 500, "429": 429}.get(kind, 504)
            reply = _ERRORS[provider](status, 1 if status == 429 else None, None, None)
            return replace(reply, hold_s=hold_s if kind == "timeout" else 0.0, fault=kind)
        reply = self._handle(provider, method, path, headers, params)
        if not reply.ok:  # refused anyway (a missing chat_id, a bad number): nothing was taken to fail
            return reply
        if kind == "timeout":
            return replace(reply, hold_s=hold_s, fault=kind, delivered=True)
        if kind == "accept_then_drop":
            return replace(reply, drop=True, fault=kind, delivered=True)
        return replace(_ERRORS[provider](500, None, None, None), then=reply.then, fault=kind, delivered=True)

    def _download(self, method: str, path: str, headers: dict[str, str]) -> _Reply:
        """A file's bytes: Telegram's file server, Twilio's media (redirect, then content), Slack's private URLs."""
        not_found = _Reply(404, {"ok": False, "error": "not_found", "description": f"nothing at {path}"}, ok=False)
        with self._lock:
            if method == "file.download":  # /file/bot<token>/<file_path>
                file_path = unquote(path).split("/", 3)[-1]
                found = next(((f["data"], f["content_type"]) for f in self._telegram_files.values()
                              if f["file_path"] == file_path), None)
            elif method == "Media.fetch":
                media_sid = path.rsplit("/", 1)[-1]
                if media_sid not in self._twilio_media:
                    return _twilio_error(404, None, None, None)
                return _Reply(307, {"message": "redirecting to the media"},
                              {"Location": f"{self.base_url}/twilio-media/{media_sid}"})
            elif method == "Media.content":
                found = self._twilio_media.get(path.rsplit("/", 1)[-1])
            else:
                if not headers.get("authorization", "").startswith("Bearer xox"):
                    return _Reply(200, SLACK_SIGN_IN_PAGE, {"Content-Type": "text/html; charset=utf-8"}, ok=False)
                found = self._slack_downloads.get(unquote(path))
        if found is None:
            return not_found
        data, content_type = found
        return _Reply(200, data, {"Content-Type": content_type})

    def _take_failure(self, provider: str, method: str) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.provider == provider and failure.method in (None, method):
                    failure.times -= 1
                    if failure.times == 0:
                        self._failures.remove(failure)
                    return failure
        return None

    def _twilio_authorized(self, headers: dict[str, str]) -> bool:
        if not self.twilio_auth_token:
            return True
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        try:
            password = b64decode(encoded, validate=True).decode().partition(":")[2]
        except ValueError:
            return False
        return scheme.lower() == "basic" and secrets.compare_digest(password, self.twilio_auth_token)

    def _telegram(self, method: str, params: dict[str, Any]) -> _Reply:
        result: Any = True
        if method == "getMe":
            result = BOT_USER
        elif method in SEND_METHODS["telegram"] or method in ("editMessageText", "editMessageReplyMarkup"):
            if params.get("inline_message_id"):
                return _Reply(200, {"ok": True, "result": True})  # edits of inline messages answer true
            if params.get("chat_id") in (None, ""):
                return _telegram_error(400, None, None, "Bad Request: chat_id is empty")
            result = self._telegram_message(method, params)
        elif method == "getFile":
            with self._lock:
                found = self._telegram_files.get(str(params.get("file_id", "")))
            if found is None:
                return _telegram_error(400, None, None, "Bad Request: invalid file_id")
            if found["size"] > TELEGRAM_DOWNLOAD_LIMIT:
                return _telegram_error(400, None, None, "Bad Request: file is too big")
            result = {"file_id": params["file_id"], "file_unique_id": "AgADFake" + str(params["file_id"])[-8:],
                      "file_size": found["size"], "file_path": found["file_path"]}
        elif method in ("setWebhook", "deleteWebhook"):
            self._webhook_url = str(params.get("url", "")) if method == "setWebhook" else ""
        elif method == "getWebhookInfo":
            result = {"url": self._webhook_url, "has_custom_certificate": False, "pending_update_count": 0}
        elif method not in _TELEGRAM_TRUE:
            return _Reply(404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}, ok=False)
        return _Reply(200, {"ok": True, "result": result})

    def _telegram_message(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        now, editing = int(time.time()), method.startswith("edit")
        message_id = _int_if_numeric(params.get("message_id")) if editing else next(self._message_ids)
        message: dict[str, Any] = {"message_id": message_id, "from": BOT_USER, "date": now,
                                   "chat": {"id": _int_if_numeric(params["chat_id"]), "type": "private"}}
        message.update({key: params[key] for key in ("text", "caption") if key in params})
        file_ids = {"file_id": f"BQACAgFake{message_id}", "file_unique_id": f"AgADFake{message_id}"}
        if method == "sendPhoto":
            message["photo"] = [{**file_ids, "width": 320, "height": 240, "file_size": 10240}]
        elif method == "sendDocument":
            message["document"] = {**file_ids, "file_name": "document"}
        elif editing:
            message["edit_date"] = now
        return message

    def _twilio(self, method: str, path: str, params: dict[str, Any]) -> _Reply:
        if method == "Messages.list":
            return self._twilio_list(path, params)
        if method != "Messages.create":
            return _twilio_error(404, None, None, None)
        to, sender, service, body = (str(params.get(k, "")) for k in ("To", "From", "MessagingServiceSid", "Body"))
        if not to:
            return _twilio_error(400, None, 21604, "A 'To' phone number is required.")
        if not (sender or service):
            return _twilio_error(400, None, 21603, "A 'From' phone number is required.")
        if not (body or params.get("MediaUrl") or params.get("ContentSid")):
            return _twilio_error(400, None, 21619, "A text message body or media urls must be specified.")
        account_sid, sid, callback = path.split("/")[3], "SM" + secrets.token_hex(16), params.get("StatusCallback", "")
        with self._lock:
            self._twilio_sent[sid] = {"AccountSid": account_sid, "To": to, "From": sender,
                                      "MessagingServiceSid": service, "StatusCallback": str(callback),
                                      "Body": body, "Created": datetime.now(UTC).isoformat()}
        now, uri = format_datetime(datetime.now(UTC)), f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json"
        resource = {
            "account_sid": account_sid, "api_version": "2010-04-01", "body": body, "date_created": now,
            "date_sent": None, "date_updated": now, "direction": "outbound-api", "error_code": None,
            "error_message": None, "from": sender or None, "messaging_service_sid": service or None,
            "num_media": "1" if params.get("MediaUrl") else "0", "num_segments": str(_segments(body)),
            "price": None, "price_unit": "USD", "sid": sid, "status": "queued", "to": to, "uri": uri,
            "subresource_uris": {"media": uri.removesuffix(".json") + "/Media.json"},
        }
        auto = self.auto_status_callbacks and bool(callback)
        return _Reply(201, resource, then=(lambda: self._spawn_auto_callbacks(sid)) if auto else None)

    def _twilio_list(self, path: str, params: dict[str, Any]) -> _Reply:
        """GET Messages.json: messages this fake accepted, filtered by To and `DateSent>` (newest first).

        The fake sends at once, so a message's sent date is its creation time."""
        to, after = str(params.get("To", "")), str(params.get("DateSent>", ""))
        since = datetime.fromisoformat(after.replace("Z", "+00:00")) if after else None
        with self._lock:
            found = [(sid, sent) for sid, sent in self._twilio_sent.items()
                     if (not to or sent["To"] == to)
                     and (since is None or datetime.fromisoformat(sent["Created"]) >= since)]
        page = [{"sid": sid, "to": sent["To"], "from": sent["From"] or None, "body": sent["Body"],
                 "status": "sent", "direction": "outbound-api", "account_sid": sent["AccountSid"],
                 "date_created": format_datetime(datetime.fromisoformat(sent["Created"])),
                 "date_sent": format_datetime(datetime.fromisoformat(sent["Created"]))}
                for sid, sent in reversed(found)][: int(params.get("PageSize") or 50)]
        return _Reply(200, {"messages": page, "page": 0, "page_size": len(page), "first_page_uri": path,
                            "next_page_uri": None, "previous_page_uri": None, "uri": path, "start": 0,
                            "end": max(len(page) - 1, 0)})

    def _spawn_auto_callbacks(self, sid: str) -> None:
        threading.Thread(target=self._auto_callbacks, args=(sid,), name="fake-twilio-status", daemon=True).start()

    def _auto_callbacks(self, sid: str) -> None:
        for status in ("sent", "delivered"):
            time.sleep(_AUTO_CALLBACK_DELAY_S)
            try:
                self.post_twilio_status(sid, status)
            except Exception as exc:  # nobody to raise to in a background thread: say it loudly instead
                print(f"fake twilio: status callback {status} for {sid} failed: {exc!r}", file=sys.stderr)
                return

    def _slack(self, method: str, headers: dict[str, str], params: dict[str, Any]) -> _Reply:
        if not headers.get("authorization", "").startswith("Bearer ") and not params.get("token"):
            return _slack_error(200, None, None, "not_authed")
        channel, text, user = params.get("channel"), params.get("text", ""), params.get("user")
        body: dict[str, Any] = {"ok": True}
        if method == "auth.test":
            body = dict(SLACK_AUTH)
        elif method == "chat.postMessage":
            if not channel:
                return _slack_error(200, None, None, "channel_not_found")
            ts = self._next_ts()
            message = {"type": "message", "text": text, "bot_id": "B0SAPABOT", "user": "U0SAPABOT", "ts": ts}
            message.update({"thread_ts": params["thread_ts"]} if params.get("thread_ts") else {})
            message[_POSTED_AT] = time.time()
            if params.get("blocks"):
                message["blocks"] = params["blocks"]
            if metadata := _slack_metadata(params.get("metadata")):
                message["metadata"] = metadata
            with self._lock:  # kept, so conversations.history and .replies list it (taken under a fault too)
                self._slack_posts.setdefault(str(channel), []).append(message)
            body = {"ok": True, "channel": channel, "ts": ts, "message": _shown(message, metadata=False)}
        elif method == "chat.update":
            edited = {"user": "U0SAPABOT", "ts": self._next_ts()}
            with self._lock:
                for posted in self._slack_posts.get(str(channel), []):
                    if posted["ts"] == params.get("ts"):
                        posted.update({"text": text, "edited": edited})
            body = {"ok": True, "channel": channel, "ts": params.get("ts"), "text": text}
        elif method in ("conversations.history", "conversations.replies"):
            return self._slack_listing(method, str(channel or ""), params)
        elif method == "chat.postEphemeral":
            if not channel or not user:
                return _slack_error(200, None, None, "channel_not_found" if not channel else "user_not_found")
            body = {"ok": True, "message_ts": self._next_ts()}
        elif method == "files.info":
            with self._lock:
                shown = self._slack_files.get(str(params.get("file", "")))
            if shown is None:
                return _slack_error(200, None, None, "file_not_found")
            body = {"ok": True, "file": shown}
        elif method == "users.info":
            body = {"ok": True, "user": {"id": user, "name": "agent", "real_name": f"Agent {user}",
                                         "profile": {"display_name": "agent"}}}
        elif method == "conversations.info":
            body = {"ok": True, "channel": {"id": channel, "name": "sapa-queue"}}
        return _Reply(200, body)

    def _slack_listing(self, method: str, channel: str, params: dict[str, Any]) -> _Reply:
        """conversations.history (the channel's top-level messages, newest first) and conversations.replies (a
        thread: its parent first, then the replies oldest first), as Slack pages them: `oldest`/`latest`
        (exclusive unless `inclusive`), `limit`, `cursor` -> `has_more` and `response_metadata.next_cursor`.
        Message metadata is shown only with `include_all_metadata`, as Slack does. The fake's ts count up from
        1700000000.000100 (tests name them), so `oldest` and `latest` are compared with the time the fake took
        the post, which is what a real ts says."""
        if not channel:
            return _slack_error(200, None, None, "channel_not_found")
        inclusive, with_metadata = _slack_flag(params.get("inclusive")), _slack_flag(params.get("include_all_metadata"))
        oldest, latest = float(params.get("oldest") or 0), float(params.get("latest") or "inf")

        def within(message: dict[str, Any]) -> bool:
            ts = float(message[_POSTED_AT])
            return (oldest <= ts if inclusive else oldest < ts) and (ts <= latest if inclusive else ts < latest)

        with self._lock:
            posts = [dict(message) for message in self._slack_posts.get(channel, [])]
        if method == "conversations.history":  # thread replies stay in their thread
            found = [m for m in reversed(posts) if m.get("thread_ts") in (None, m["ts"]) and within(m)]
        else:
            thread = str(params.get("ts") or "")
            parent = next((m for m in posts if m["ts"] == thread), None)
            if parent is None:
                return _slack_error(200, None, None, "thread_not_found")
            found = [parent, *(m for m in posts if m.get("thread_ts") == thread and m["ts"] != thread and within(m))]
        cursor = str(params.get("cursor") or "")
        try:
            limit = min(max(int(params.get("limit") or 100), 1), 999)
            if cursor and not cursor.startswith("next:"):
                raise ValueError(cursor)
            start = int(cursor.removeprefix("next:") or 0)
        except ValueError:
            return _slack_error(200, None, None, "invalid_cursor")
        page, more = found[start:start + limit], start + limit < len(found)
        return _Reply(200, {"ok": True, "messages": [_shown(m, metadata=with_metadata) for m in page],
                            "has_more": more, "pin_count": 0,
                            "response_metadata": {"next_cursor": f"next:{start + limit}" if more else ""}})

    def _next_ts(self) -> str:
        n = next(self._slack_ts)
        return f"{1700000000 + n // 1_000_000}.{n % 1_000_000:06d}"

    def _control(self, verb: str, path: str, query: str, raw: bytes) -> _Reply:
        """/_fake/* endpoints, so that another process (`sapa simulate`) can inspect and script the fake."""
        try:
            spec = json.loads(raw or b"{}") if verb == "POST" else {}
            if verb == "GET" and path == "/_fake/requests":
                return _Reply(200, {"requests": self._listing(_first_values(query))})
            if verb == "POST" and path == "/_fake/fail":
                self.fail_next(str(spec["provider"]), int(spec["status"]), times=int(spec.get("times") or 1),
                               method=spec.get("method"), retry_after=_opt_int(spec.get("retry_after")),
                               code=_opt_int(spec.get("code")), description=spec.get("description"))
                return _Reply(200, {"ok": True})
            if verb == "POST" and path == "/_fake/faults":  # {"fraction": 0.2, "seed": 7, "kinds": [...], ...}
                self.set_faults(Faults(float(spec.get("fraction") or 0), int(spec.get("seed") or 0),
                                       tuple(spec.get("kinds") or Faults.kinds), float(spec.get("hold_s", 1.0)),
                                       tuple(spec.get("providers") or PROVIDERS)))
                return _Reply(200, {"ok": True})
            if verb == "POST" and path == "/_fake/clear":
                self.clear()
                return _Reply(200, {"ok": True})
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return _Reply(400, {"ok": False, "error": f"{type(exc).__name__}: {exc}"}, ok=False)
        return _Reply(404, {"ok": False, "error": f"no control endpoint {verb} {path}"}, ok=False)

    def _listing(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        """Requests whose index is greater than `after` (the last index the poller saw)."""
        after, provider = int(query.get("after", -1)), query.get("provider")
        return [{"index": index, "provider": r.provider, "method": r.method, "path": r.path, "params": r.params,
                 "at": r.at, "status": status, "ok": ok, "fault": r.fault, "delivered": r.delivered}
                for index, r, status, ok in self._snapshot() if index > after and provider in (None, r.provider)]


_POSTED_AT = "_posted_at"  # a kept Slack message's time.time(), never shown


def _slack_metadata(value: Any) -> dict[str, Any] | None:
    """chat.postMessage's `metadata` (an object in a JSON body, a JSON string in a form) as Slack keeps it."""
    if isinstance(value, str) and value:
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, dict) or not isinstance(value.get("event_type"), str):
        return None
    return {"event_type": value["event_type"], "event_payload": dict(value.get("event_payload") or {})}


def _slack_flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _shown(message: dict[str, Any], *, metadata: bool) -> dict[str, Any]:
    """A kept Slack message as a listing shows it; its metadata only when asked for."""
    return {key: value for key, value in message.items() if key != _POSTED_AT and (metadata or key != "metadata")}


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _print_request(request: Recorded, status: int) -> None:
    params = json.dumps(request.params, ensure_ascii=False, default=str)
    params = params if len(params) <= 200 else params[:197] + "..."
    stamp = time.strftime("%H:%M:%S", time.localtime(request.at))
    print(mask_phones(f"{stamp} {status} {request.provider} {request.method} {params}"), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the fake providers in the foreground until Ctrl-C, printing one line per request."""
    parser = argparse.ArgumentParser(prog="sapa fake-providers", description="Fake Telegram, Twilio and Slack APIs.")
    parser.add_argument("--port", type=int, default=8099, help="port on 127.0.0.1 (default 8099)")
    parser.add_argument("--twilio-auth-token", default=os.environ.get("TWILIO_AUTH_TOKEN"),
                        help="check Twilio Basic auth and sign status callbacks (default $TWILIO_AUTH_TOKEN)")
    parser.add_argument("--fault-fraction", type=float, default=0.0,
                        help="fail this fraction of message sends (0..1; default 0); also POST /_fake/faults")
    parser.add_argument("--fault-seed", type=int, default=0, help="seed for which sends fail and how (default 0)")
    parser.add_argument("--fault-kinds", default=",".join(Faults.kinds),
                        help=f"comma-separated, of {', '.join(FAULT_KINDS)} (default %(default)s)")
    parser.add_argument("--fault-hold-s", type=float, default=Faults.hold_s,
                        help="seconds a 'timeout' holds its answer (default %(default)s; set above the client's)")
    args = parser.parse_args(argv)
    try:
        faults = Faults(args.fault_fraction, args.fault_seed, tuple(k for k in args.fault_kinds.split(",") if k),
                        args.fault_hold_s)
    except ValueError as exc:
        parser.error(str(exc))
    fake = FakeProviders(port=args.port, twilio_auth_token=args.twilio_auth_token or None, faults=faults)
    fake.on_record = _print_request
    try:
        fake.start()
    except OSError as exc:
        print(f"fake-providers: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(f"fake providers on {fake.base_url}: Telegram base_url {fake.telegram_base_url}, Twilio api.base_url "
          f"{fake.twilio_base_url}, Slack base_url {fake.slack_base_url}. Ctrl-C stops.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
