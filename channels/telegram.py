"""Telegram: Bot API webhooks in, python-telegram-bot (PTB) sends out.

Telegram authenticates a webhook only by echoing the secret given to setWebhook in a header, so
`parse` compares that header and then reads the update's envelope (ids, chat, dates, sender) with
PTB's own types, and what a message carries (files, places, contacts, forwarding) from the JSON
itself: those fields differ most between Bot API versions, and PTB refuses a whole object for one
field it expects. Any update Telegram may send is answered 2xx, as events or logged as ignored, so
it is never redelivered forever; only a body that is no update at all is refused. Calls go through
one `telegram.Bot` (and so one httpx client) running on an event loop this adapter owns, because
PTB is async and the outbox dispatcher that calls `send` is a plain thread; except text messages
(`sendMessage`, what nearly every send is), which the dispatcher's thread posts itself on a pooled
urllib3 connection (`_post`): handing each one to the loop and back, and PTB building a Message from
the answer, cost several times the HTTP exchange (bench/outbox_send.py). Error answers are turned
into PTB's own exceptions the way PTB does (`_bot_api_error`), so both paths map errors alike.

Addresses: the sender of an inbound message is the chat id, because that is where replies go. In a
private chat it equals the user id; in a group (only with `allow_groups`) the whole group is one
customer, since a reply to the user's own id would leave the group and fail for users who never
opened a private chat with the bot.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import json
import logging
import os
import re
import threading
import warnings
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import urllib3
from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MaybeInaccessibleMessage,
    Message,
    TelegramObject,
    User,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.error import Forbidden as TelegramForbidden
from telegram.warnings import PTBDeprecationWarning
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from bot import limits
from bot.messages import (
    InboundMessage,
    Location,
    Media,
    MediaKind,
    OutboundMessage,
    ReachabilityUpdate,
    SharedContact,
)
from channels.base import (
    BadPayload,
    Forbidden,
    MaybeSent,
    ProviderEvent,
    RateKey,
    RetryLater,
    Undeliverable,
    WebhookRequest,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P", bound=TelegramObject)

SECRET_HEADER = "x-telegram-bot-api-secret-token"
MAX_TEXT = 4096  # Bot API limit for sendMessage text
MAX_CALLBACK_DATA = 64  # bytes, Bot API limit for InlineKeyboardButton.callback_data
CALL_TIMEOUT_S = 30.0  # PTB's own connect/read/write timeouts (5 s each) normally end a call sooner
PTB_TIMEOUT_S = 5.0  # PTB's default connect and read timeouts, kept by the direct sendMessage path
# The update kinds parse reads, and so the ones set_webhook subscribes to.
# Things a customer sends that Sapa cannot read, but that are the customer's own doing (unlike service
# messages): stored and answered "we cannot handle this kind of message", never silently dropped.
CUSTOMER_CONTENT = ("dice", "poll", "game", "story", "checklist", "paid_media", "giveaway")
ALLOWED_UPDATES = ("message", "edited_message", "callback_query", "my_chat_member")
LANGUAGES = ("id", "en")
# "/start", "/start PAYLOAD" or "/start@our_bot PAYLOAD" (Telegram's deep-link form).
START = re.compile(r"^/start(?:@\w+)?(?:\s+(?P<payload>.*))?$", re.DOTALL)
# File attributes of a message: (attribute, media kind, content type when Telegram gives none). The
# first present wins; animation before document, because Telegram sends a GIF as both for old clients.
FILES: tuple[tuple[str, MediaKind, str], ...] = (
    ("animation", "video", "video/mp4"),
    ("video", "video", "video/mp4"),
    ("video_note", "video", "video/mp4"),
    ("voice", "voice", "audio/ogg"),
    ("audio", "audio", "audio/mpeg"),
    ("document", "document", "application/octet-stream"),
    ("sticker", "sticker", "image/webp"),
)
# Required fields older Bot APIs (and the Bot API's own examples) leave out, filled before PTB sees them,
# by the key that holds the object. A user without is_bot is a person: bots say so.
_PERSON = {"is_bot": False}
DEFAULTS: dict[str, dict[str, Any]] = {
    "sticker": {"type": "regular", "is_animated": False, "is_video": False},
    "callback_query": {"chat_instance": ""},
    **dict.fromkeys(("from", "user", "sender_user", "forward_from", "new_chat_members", "left_chat_member"), _PERSON),
}
BUILD_ERRORS = (TypeError, KeyError, ValueError, AttributeError, OverflowError)


class TelegramChannel:
    name = "telegram"
    session_window: timedelta | None = None
    # The outbox commits each send's start first; Telegram cannot be asked what it accepted, so an unclear
    # outcome (MaybeSent) is recorded `unconfirmed` and never resent (docs/delivery.md).
    guard_sends = True

    def __init__(
        self,
        token: str,
        webhook_secret: str,
        *,
        api_base_url: str | None = None,
        allow_groups: bool = False,
        per_chat_per_second: float = 1.0,
        global_per_second: float = 30.0,
    ) -> None:
        if not webhook_secret:
            raise ValueError("webhook_secret must not be empty: it is the only proof a webhook came from Telegram")
        # Opt in to PTB's future RetryAfter.retry_after type (timedelta, handled below); without it
        # PTB warns from inside its own error constructor on every 429.
        os.environ.setdefault("PTB_TIMEDELTA", "1")
        self.bot = Bot(token, base_url=api_base_url) if api_base_url else Bot(token)
        self.webhook_secret = webhook_secret
        self.allow_groups = allow_groups
        self.per_chat_per_second = per_chat_per_second
        self.global_per_second = global_per_second
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._loop_lock = threading.Lock()
        self._initialized = False  # the HTTP client is open and the token checked (see _ensure_initialized)
        self._pool = urllib3.PoolManager(maxsize=4, retries=False, block=False)  # sendMessage (`_post`)

    # -- inbound -------------------------------------------------------------------------------

    def parse(self, request: WebhookRequest) -> list[ProviderEvent]:
        given = request.headers.get(SECRET_HEADER, "")
        if not given or not hmac.compare_digest(given.encode(), self.webhook_secret.encode()):
            raise Forbidden("missing or wrong X-Telegram-Bot-Api-Secret-Token")
        try:
            data = limits.loads(request.body or b"null")  # depth, 64-bit numbers, NUL and surrogates refused
        except limits.Refused as exc:
            raise BadPayload(exc.reason, exc.status) from None
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            raise BadPayload("body is not a Telegram Update: a JSON object with an integer update_id", 400)
        # An update carries exactly one kind next to its id; kinds we never subscribed to (or that a
        # newer Bot API adds) are answered 200 and logged, or Telegram would redeliver them forever.
        kind = next((key for key in data if key != "update_id"), "without content")
        body = data.get(kind)
        if kind not in ALLOWED_UPDATES:
            return _ignored(kind, "not a kind Sapa reads")
        if not isinstance(body, dict):
            raise BadPayload(f"the update's {kind} is not an object", 400)
        body = _filled(body, kind)
        try:
            if kind == "my_chat_member":
                return self._from_member_update(body, data["update_id"])
            if kind == "callback_query":
                return self._from_callback(self._build(CallbackQuery, body, required=("from",)))
            message = self._build(Message, body, required=("chat",))
            return self._from_message(message, body, kind=kind)
        except BUILD_ERRORS as exc:
            # PTB builds objects without checking field types, so a wrong type may only surface while
            # we read the fields: either way the update is not one Telegram would send.
            raise BadPayload(f"body is not a valid Telegram Update: {exc!r}", 400) from None

    def _build(self, cls: type[P], raw: dict[str, Any], *, required: tuple[str, ...]) -> P:
        """PTB's `cls` from `raw`, leaving out sub-objects PTB cannot build.

        PTB refuses a whole object when one nested field of an older or newer Bot API is missing
        (a photo without file_unique_id, an old sticker without type). We read attachments from the
        raw dict anyway, so only the envelope (ids, chat, dates, sender) must build; without `required`
        (or with wrong scalar types) the update is malformed and this raises.
        """
        try:
            return cls.de_json(raw, self.bot)
        except BUILD_ERRORS:
            pass
        core = {key: value for key, value in raw.items() if not isinstance(value, dict | list) or key in required}
        cls.de_json(core, self.bot)  # raises for a malformed envelope
        readable = {key: value for key, value in raw.items() if key not in core and _builds(cls, {**core, key: value})}
        log.warning(
            "telegram %s: read without %s, which PTB could not build",
            cls.__name__, ", ".join(sorted(set(raw) - set(core) - set(readable))),
        )
        try:
            return cls.de_json({**core, **readable}, self.bot)
        except BUILD_ERRORS:
            return cls.de_json(core, self.bot)

    def _chat_allowed(self, chat_type: str) -> bool:
        if chat_type == ChatType.PRIVATE:
            return True
        # Channels never: their posts have no customer behind them.
        return self.allow_groups and chat_type in (ChatType.GROUP, ChatType.SUPERGROUP)

    def _from_message(self, message: Message, raw: dict[str, Any], *, kind: str) -> list[ProviderEvent]:
        chat = message.chat
        if chat is None:
            raise BadPayload("a message without a chat", 400)
        if not self._chat_allowed(chat.type):
            return _ignored(kind, f"{chat.type} chat")
        user = message.from_user
        text = message.text or message.caption or ""
        edited = kind == "edited_message"
        if edited:
            if not text:
                return _ignored(kind, "an edit without text (a live location moving, a replaced file)")
            # The attachment was there before the edit and was answered then: an edit only logs new words.
            media: tuple[Media, ...] = ()
            location = contact = None
            unsupported = None
        else:
            media = _media(raw)
            location = _location(raw)
            contact = _contact(raw, user.id if user is not None else None)
            unsupported = next((key for key in CUSTOMER_CONTENT if key in raw), None)
            if not (text or media or location or contact or unsupported):
                known = {"message_id", "from", "chat", "date", "edit_date", "entities"}
                return _ignored(kind, f"nothing Sapa reads ({', '.join(sorted(set(raw) - known)) or 'empty'})")
        forwarded_from = _forwarded_from(raw)

        deep_link = button_payload = None
        # A forwarded "/start" is someone else's command, not this customer's.
        if forwarded_from is None and (start := START.match(text.strip())):
            text = "/start"
            deep_link = (start.group("payload") or "").strip() or None
            button_payload = "intent:greet"  # the core greets on this instead of interpreting "/start"

        message_key = f"{chat.id}:{message.message_id}"
        received_at = message.date
        provider_id = message_key
        edit_of = None
        if edited:
            edit_date = message.edit_date or message.date
            received_at = edit_date
            provider_id = f"{message_key}:edit:{int(edit_date.timestamp())}"
            edit_of = message_key
        return [
            InboundMessage(
                channel=self.name,
                sender=str(chat.id),
                provider_message_id=provider_id,
                text=text,
                received_at=received_at.astimezone(UTC),
                display_name=_display_name(user),
                language_hint=_language(user),
                media=media,
                button_payload=button_payload,
                # Only a contact of oneself proves a phone: anyone can forward someone else's card.
                shared_phone=_e164(contact.phone or "") if contact is not None and contact.own else None,
                edit_of=edit_of,
                deep_link=deep_link,
                location=location,
                unsupported=unsupported,
                contact=contact,
                forwarded_from=forwarded_from,
            )
        ]

    def _from_callback(self, query: CallbackQuery) -> list[ProviderEvent]:
        if not isinstance(query.data, str) or not query.data:
            return _ignored("callback_query", "no data (a game's button)")
        # The message is missing for buttons under inline-mode messages: reply to the user then.
        # An inaccessible (old) message still names its chat and id.
        message = query.message
        button_of = None
        if message is not None:
            if not self._chat_allowed(message.chat.type):
                return _ignored("callback_query", f"{message.chat.type} chat")
            sender = str(message.chat.id)
            button_of = f"{message.chat.id}:{message.message_id}"  # the id send() returned for it
        else:
            sender = str(query.from_user.id)
        return [
            InboundMessage(
                channel=self.name,
                sender=sender,
                provider_message_id=f"cb:{query.id}",
                # What the customer pressed, for the log; the payload is what the core acts on.
                text=_button_title(message, query.data) or query.data,
                # A callback query has no timestamp of its own; the press is happening now.
                received_at=datetime.now(UTC),
                display_name=_display_name(query.from_user),
                language_hint=_language(query.from_user),
                button_payload=query.data,
                ack_token=query.id,
                button_of=button_of,
            )
        ]

    def _from_member_update(self, raw: dict[str, Any], update_id: int) -> list[ProviderEvent]:
        # Read from the dict: PTB's ChatMember types require every right of the current Bot API, and
        # three fields are all this needs.
        chat = _dict(raw.get("chat"))
        chat_id = chat.get("id")
        if chat.get("type") != ChatType.PRIVATE or not isinstance(chat_id, int):
            return _ignored("my_chat_member", f"{chat.get('type')} chat")
        old = _dict(raw.get("old_chat_member")).get("status")
        new = _dict(raw.get("new_chat_member")).get("status")
        if new == ChatMemberStatus.BANNED:  # "kicked": in a private chat, the user blocked the bot
            reachable, reason = False, "blocked the bot"
        elif new == ChatMemberStatus.MEMBER and old == ChatMemberStatus.BANNED:
            reachable, reason = True, "unblocked the bot"
        else:
            return _ignored("my_chat_member", f"{old} -> {new}")
        return [
            ReachabilityUpdate(
                channel=self.name,
                address=str(chat_id),
                reachable=reachable,
                reason=reason,
                provider_event_id=f"mcm:{update_id}",
            )
        ]

    def acknowledge(self, message: InboundMessage) -> None:
        if not message.ack_token:
            return
        try:
            self._call(self.bot.answer_callback_query(message.ack_token))
        except Exception as exc:  # best effort: at worst the button's spinner runs until Telegram gives up
            log.warning("telegram: answerCallbackQuery %s failed: %s", message.ack_token, exc)

    # -- outbound ------------------------------------------------------------------------------

    def send(self, message: OutboundMessage) -> str:
        if message.media:  # an agent's files: see send_media at the end of the class
            return self.send_media(message)
        try:
            chat_id = int(message.recipient)
        except ValueError:
            raise Undeliverable(f"not a Telegram chat id: {message.recipient!r}") from None
        markup = _keyboard(message)
        parts = split_text(message.text)
        first_id: str | None = None
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            try:
                sent = self._send_text(chat_id, part, markup if last else None)
            except (RetryLater, Undeliverable) as exc:
                if first_id is None:
                    raise
                # Some parts are already with the customer: a retry would send them all again, so a
                # truncated reply is the lesser harm. The outbox records the first part as sent.
                log.error(
                    "telegram: part %d/%d to chat %s failed after %s was sent: %s",
                    index + 1, len(parts), chat_id, first_id, exc.reason,
                )
                break
            if first_id is None:
                first_id = sent  # the same form parse() gives
        assert first_id is not None  # split_text always returns at least one part
        return first_id

    def rate_keys(self, message: OutboundMessage) -> list[RateKey]:
        cost = float(len(split_text(message.text)))
        return [
            RateKey("telegram:global", self.global_per_second, cost),
            RateKey(f"telegram:chat:{message.recipient}", self.per_chat_per_second, cost),
        ]

    def set_webhook(self, url: str) -> None:
        """Point Telegram at `url`, with our secret and only the update kinds `parse` reads."""
        self._call(
            self.bot.set_webhook(url=url, secret_token=self.webhook_secret, allowed_updates=list(ALLOWED_UPDATES))
        )

    # -- the private event loop ----------------------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run one Bot API call on our loop and translate PTB's errors into the channel's."""
        try:
            self._ensure_initialized()
        except BaseException:
            coroutine.close()  # never awaited: close it so Python does not warn
            raise
        try:
            return self._run(coroutine)
        except (TelegramError, concurrent.futures.TimeoutError) as exc:
            raise self._translated(exc) from (None if isinstance(exc, InvalidToken) else exc)

    def _translated(self, exc: TelegramError | concurrent.futures.TimeoutError) -> RetryLater | Undeliverable:
        """PTB's error (or our own call timeout) as the channel's: what the outbox does next depends on it."""
        if isinstance(exc, RetryAfter):
            return RetryLater(f"flood control: {exc.message}", after_s=_retry_after_s(exc))
        if isinstance(exc, ChatMigrated):
            return Undeliverable(f"migrated: the group is now chat {exc.new_chat_id}")
        if isinstance(exc, TelegramForbidden):
            return Undeliverable(f"blocked: {self._redact(exc.message)}")
        if isinstance(exc, InvalidToken):
            # PTB puts the token itself in this message: never let it reach the outbox or the logs.
            return Undeliverable("invalid bot token: rejected by Telegram")
        if isinstance(exc, BadRequest):  # a subclass of NetworkError, so it must come first
            return Undeliverable(f"rejected: {self._redact(exc.message)}")
        if isinstance(exc, NetworkError):  # timeouts, connection errors and 5xx
            if _never_sent(exc):
                return RetryLater(f"network: {self._redact(exc.message)}")
            # A 5xx, a read timeout, a connection lost after sending: Telegram may have delivered it.
            return MaybeSent(f"no clear answer from Telegram: {self._redact(exc.message)}")
        if isinstance(exc, TelegramError):  # e.g. 409 Conflict: nothing says it is permanent
            return RetryLater(f"telegram: {self._redact(exc.message)}")
        return MaybeSent(f"no answer from Telegram within {CALL_TIMEOUT_S:g} s")

    def _send_text(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None) -> str:
        """sendMessage, posted from the calling thread (see the module's docstring); "chat:message" ids."""
        self._ensure_initialized()  # the token is checked (getMe) once, through PTB, before the first send
        fields = {"chat_id": str(chat_id), "text": text}
        if markup is not None:  # PTB sends objects as JSON inside the form, and so do we
            fields["reply_markup"] = json.dumps(markup.to_dict())
        try:
            sent = self._post("sendMessage", fields)
        except TelegramError as exc:
            raise self._translated(exc) from (None if isinstance(exc, InvalidToken) else exc)
        return f"{sent['chat']['id']}:{sent['message_id']}"

    def _post(self, method: str, fields: dict[str, str]) -> Any:
        """One Bot API call as PTB's HTTPXRequest makes it (a form, PTB's timeouts, no retries); its `result`.

        Raises PTB's exceptions, made as PTB makes them: a connection that never opened is a NetworkError caused
        by urllib3's connect error (`_never_sent`), a timeout TimedOut, an error answer `_bot_api_error`."""
        timeout = min(PTB_TIMEOUT_S, CALL_TIMEOUT_S)
        try:
            response = self._pool.request(
                "POST", f"{self.bot.base_url}/{method}", fields=fields, encode_multipart=False,
                timeout=urllib3.Timeout(connect=timeout, read=timeout), redirect=False)
        except NewConnectionError as exc:
            raise NetworkError(f"urllib3.{type(exc).__name__}: {exc}") from exc
        except urllib3.exceptions.TimeoutError as exc:
            raise TimedOut from exc
        except urllib3.exceptions.HTTPError as exc:
            raise NetworkError(f"urllib3.{type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status <= 299:
            raise _bot_api_error(response.status, response.data)
        try:
            return json.loads(response.data.decode("utf-8", "replace"))["result"]
        except ValueError as exc:
            raise TelegramError("Invalid server response") from exc

    def _redact(self, text: str) -> str:
        # Error texts can quote request URLs, and the token is part of every Bot API URL.
        for form in (self.bot.token, quote(self.bot.token, safe="")):
            text = text.replace(form, "<token>")
        return text

    def _ensure_initialized(self) -> None:
        """Open the HTTP client and check the token (getMe) once, before the first call.

        Kept apart from the call itself because nothing has been sent yet: a slow or failed start-up is a plain
        retry, never "maybe sent" (on a loaded machine the first start-up can outlast a short call timeout)."""
        if self._initialized:
            return
        try:
            self._run(self.bot.initialize())
        except InvalidToken:
            raise Undeliverable("invalid bot token: rejected by Telegram") from None
        except (TelegramError, concurrent.futures.TimeoutError) as exc:
            reason = getattr(exc, "message", None) or f"no answer within {CALL_TIMEOUT_S:g} s"
            raise RetryLater(f"telegram: not connected yet, nothing sent ({self._redact(reason)})") from exc
        self._initialized = True

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._ensure_loop())
        try:
            return future.result(timeout=CALL_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="telegram-bot-loop", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def close(self) -> None:
        """Close the HTTP client and stop the loop; a later call starts them afresh."""
        with self._loop_lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            self._initialized = False
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.bot.shutdown(), loop).result(timeout=CALL_TIMEOUT_S)
        except Exception as exc:
            log.warning("telegram: closing the bot client failed: %s", exc)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=CALL_TIMEOUT_S)
        loop.close()

    # -- files: what a customer sent (fetch_media), what an agent shared (send_media) ----------

    FILE_PREFIX = "telegram:file/"  # how parse() refers to a customer's file (bot.messages.Media.url)
    DOWNLOAD_LIMIT = 20 * 1024 * 1024  # Bot API: getFile serves files of up to 20 MB
    UPLOAD_LIMIT = 50 * 1024 * 1024  # Bot API: bots upload files of up to 50 MB
    PHOTO_LIMIT = 10 * 1024 * 1024  # sendPhoto takes up to 10 MB; larger images go as documents
    MAX_CAPTION = 1024  # characters of a photo's or document's caption

    def fetch_media(self, url: str) -> tuple[bytes, str]:
        """The bytes and content type of a file a customer sent (`telegram:file/<file_id>`).

        getFile, then a download from Telegram's file server through the same Bot (one httpx client).
        Telegram lets bots download files of up to 20 MB: a larger one is refused with that reason.
        Raises Undeliverable (refused, gone, too large) or RetryLater (Telegram unreachable or busy).
        """
        import mimetypes
        from urllib.parse import urlsplit, urlunsplit

        if not url.startswith(self.FILE_PREFIX) or len(url) == len(self.FILE_PREFIX):
            raise Undeliverable("not a Telegram file reference", address_dead=False)
        file_id = url.removeprefix(self.FILE_PREFIX)
        limit_mb = self.DOWNLOAD_LIMIT // (1024 * 1024)

        async def download() -> tuple[bytes, str]:
            file = await self.bot.get_file(file_id)
            if file.file_size and file.file_size > self.DOWNLOAD_LIMIT:
                raise Undeliverable(f"the file is larger than the {limit_mb} MB Telegram lets bots download",
                                    address_dead=False)
            if not file.file_path:
                raise Undeliverable("Telegram gave no file_path for this file", address_dead=False)
            # PTB prefixes the path with its own base_file_url; the file server sits next to the Bot API we use
            # (api_base_url: a local Bot API server or the fake), so the path is joined to that one instead.
            relative = str(file.file_path).removeprefix(self.bot.base_file_url).lstrip("/")
            parts = urlsplit(f"{self._file_base_url()}/{relative}")
            address = urlunsplit(parts._replace(path=quote(parts.path)))  # as PTB's File does
            return bytes(await self.bot.request.retrieve(address)), relative

        try:
            data, path = self._call(download())
        except Undeliverable as exc:
            if "too big" in exc.reason:  # Telegram's own words for a file over the limit
                raise Undeliverable(f"the file is larger than the {limit_mb} MB Telegram lets bots download",
                                    address_dead=False) from exc
            raise
        return data, mimetypes.guess_type(path)[0] or "application/octet-stream"

    def _file_base_url(self) -> str:
        """Telegram's file server for this bot: https://api.telegram.org/file/bot<token> beside .../bot<token>."""
        base, token = self.bot.base_url, self.bot.token
        if base.endswith("/bot" + token):
            return base[: -len(token) - 4] + "/file/bot" + token
        return self.bot.base_file_url

    def send_media(self, message: OutboundMessage) -> str:
        """Files with the text (an agent's files from the desk); returns the first message's id.

        Each file goes as a photo (a JPEG/PNG/WebP image up to 10 MB) or else as a document, the text as the
        first file's caption when it fits (1024 characters), otherwise on its own first. A file comes as bytes
        (a `data:` URL: the outbox fetched it from Slack, since Telegram takes uploads up to 50 MB) or as an
        https URL Telegram fetches itself. As in send(), once something reached the customer a later failure
        is logged, not raised, so a retry does not repeat what arrived.
        """
        from dataclasses import replace

        try:
            chat_id = int(message.recipient)
        except ValueError:
            raise Undeliverable(f"not a Telegram chat id: {message.recipient!r}") from None
        files = [(item, self._file_input(item)) for item in message.media]  # refuse before sending anything
        markup = _keyboard(message)
        text = message.text.strip()
        caption = text if text and len(text) <= self.MAX_CAPTION else None
        first_id: str | None = None
        if text and caption is None:
            first_id = self.send(replace(message, media=(), buttons=()))
        for index, (item, content) in enumerate(files):
            options: dict[str, Any] = {
                "chat_id": chat_id, "caption": caption if index == 0 else None,
                "reply_markup": markup if index == len(files) - 1 else None,
            }
            if isinstance(content, bytes):
                options["filename"] = item.file_name or "file"
            as_photo = (item.content_type or "").lower() in ("image/jpeg", "image/png", "image/webp") and (
                not isinstance(content, bytes) or len(content) <= self.PHOTO_LIMIT)
            try:
                call = (self.bot.send_photo(photo=content, **options) if as_photo
                        else self.bot.send_document(document=content, **options))
                sent = self._call(call)
            except (RetryLater, Undeliverable) as exc:
                if first_id is None:
                    raise
                log.error("telegram: file %d/%d to chat %s failed after %s was sent: %s",
                          index + 1, len(files), chat_id, first_id, exc.reason)
                break
            if first_id is None:
                first_id = f"{sent.chat.id}:{sent.message_id}"
        if first_id is None:  # no files after all: just the text
            return self.send(replace(message, media=()))
        return first_id

    def _file_input(self, item: Media) -> bytes | str:
        """What PTB uploads for `item`: its bytes (from a data: URL), or an https URL Telegram downloads itself."""
        import base64
        import binascii
        from urllib.parse import unquote_to_bytes

        url = item.url
        if url.startswith("https://"):
            return url
        if not url.startswith("data:") or "," not in url:
            raise Undeliverable("Telegram can only send a file Sapa holds or one at a public https URL",
                                address_dead=False)
        header, _, payload = url.partition(",")
        try:
            data = base64.b64decode(payload, validate=True) if header.endswith(";base64") else unquote_to_bytes(payload)
        except (binascii.Error, ValueError):
            raise Undeliverable("the file's data: URL is damaged", address_dead=False) from None
        if len(data) > self.UPLOAD_LIMIT:
            raise Undeliverable(f"the file is larger than the {self.UPLOAD_LIMIT // (1024 * 1024)} MB Telegram "
                                "accepts from bots", address_dead=False)
        return data


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut `text` into parts of at most `limit` characters, at a paragraph, line or word if possible.

    Telegram counts UTF-16 code units, so an emoji outside the BMP counts twice here too.
    """
    parts: list[str] = []
    rest = text
    while _utf16_len(rest) > limit:
        window = rest[: _fitting_prefix(rest, limit)]
        for separator in ("\n\n", "\n", " "):
            cut = window.rfind(separator)
            # A break in the first half would leave a tiny part: try a finer separator instead.
            if cut > len(window) // 2:
                break
        else:
            cut = len(window)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not parts:
        parts.append(rest)
    return parts


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fitting_prefix(text: str, limit: int) -> int:
    """The number of characters of `text` whose UTF-16 length fits in `limit`."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _keyboard(message: OutboundMessage) -> InlineKeyboardMarkup | None:
    if not message.buttons:
        return None
    for button in message.buttons:
        if len(button.payload.encode()) > MAX_CALLBACK_DATA:
            raise Undeliverable(f"button payload longer than {MAX_CALLBACK_DATA} bytes: {button.payload!r}")
    # One button per row: titles stay readable on a phone.
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(button.title, callback_data=button.payload)] for button in message.buttons]
    )


def _never_sent(exc: NetworkError) -> bool:
    """PTB's NetworkError for a request that never left: no connection (refused, DNS, connect timeout) or no free
    pooled connection. Everything else (an HTTP 5xx, a read or write timeout, a connection lost mid-request)
    may have reached Telegram. (urllib3's connect errors: the direct sendMessage path, `_post`.)"""
    cause = exc.__cause__
    return isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol,
                              ConnectTimeoutError))


def _bot_api_error(code: int, payload: bytes) -> TelegramError:
    """The exception PTB raises for an error answer (telegram.request.BaseRequest._request_wrapper), made the
    same way: `parameters` first (a migrated chat, flood control), then by HTTP status."""
    try:
        message = f"{HTTPStatus(code).phrase} ({code})"
    except ValueError:
        message = f"Unknown HTTPError ({code})"
    parsing_failed: Exception | None = None
    try:
        data = json.loads(payload.decode("utf-8", "replace"))
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        message += f". Parsing the server response {payload!r} failed"
        parsing_failed = exc
    else:
        message = data.get("description") or message
        parameters = data.get("parameters")
        if parameters:
            if migrate_to_chat_id := parameters.get("migrate_to_chat_id"):
                return ChatMigrated(migrate_to_chat_id)
            if retry_after := parameters.get("retry_after"):
                return RetryAfter(retry_after)
            message += f". The server response contained unknown parameters: {parameters}"
    error: TelegramError
    if code == HTTPStatus.FORBIDDEN:
        error = TelegramForbidden(message)
    elif code in (HTTPStatus.NOT_FOUND, HTTPStatus.UNAUTHORIZED):
        error = InvalidToken(message)
    elif code == HTTPStatus.BAD_REQUEST:
        error = BadRequest(message)
    elif code == HTTPStatus.CONFLICT:
        error = Conflict(message)
    else:
        error = NetworkError(message)
    error.__cause__ = parsing_failed
    return error


def _retry_after_s(exc: RetryAfter) -> float:
    # PTB 22 returns an int (with a deprecation warning) or, with PTB_TIMEDELTA=1, a timedelta.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _e164(phone: str) -> str | None:
    digits = re.sub(r"\D", "", phone)  # Telegram gives "6281234567890" or "+6281234567890"
    return f"+{digits}" if digits else None


def _display_name(user: User | None) -> str | None:
    return user.full_name if user is not None and user.full_name else None


def _language(user: User | None) -> str | None:
    if user is None or not user.language_code:
        return None
    primary = user.language_code.split("-")[0].lower()  # "id-ID" -> "id"
    return primary if primary in LANGUAGES else None


def _ignored(kind: str, why: str) -> list[ProviderEvent]:
    # Answered 200 (an empty list), so Telegram does not redeliver it; the log says what was dropped.
    log.info("telegram update %s ignored: %s", kind, why)
    return []


def _builds(cls: type[TelegramObject], raw: dict[str, Any]) -> bool:
    try:
        cls.de_json(raw, None)
    except BUILD_ERRORS:
        return False
    return True


def _filled(value: Any, key: str = "") -> Any:
    """A copy of `value` (held under `key`) with the required fields older Bot APIs omit filled in, at any depth.

    file_unique_id (Bot API 4.5) defaults to the file_id: both name the file, and only the id is used.
    """
    if isinstance(value, list):
        return [_filled(item, key) for item in value]
    if not isinstance(value, dict):
        return value
    filled = {name: _filled(item, name) for name, item in value.items()}
    for name, default in DEFAULTS.get(key, {}).items():
        filled.setdefault(name, default)
    if isinstance(filled.get("file_id"), str):
        filled.setdefault("file_unique_id", filled["file_id"])
    return filled


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _media(raw: dict[str, Any]) -> tuple[Media, ...]:
    """The file a message carries, read from the JSON: a wrong or missing field drops it, never the update."""
    sizes = [size for size in raw.get("photo") or () if isinstance(size, dict) and _text(size.get("file_id"))]
    if sizes:
        largest = max(sizes, key=lambda size: (
            (_number(size.get("width")) or 0) * (_number(size.get("height")) or 0), _number(size.get("file_size")) or 0,
        ))
        return (Media(url=f"telegram:file/{largest['file_id']}", content_type="image/jpeg", kind="image"),)
    for attribute, kind, default_type in FILES:
        item = _dict(raw.get(attribute))
        file_id = _text(item.get("file_id"))
        if file_id is None:
            continue
        content_type = _text(item.get("mime_type")) or default_type
        if attribute == "sticker":
            content_type = (
                "application/x-tgsticker" if item.get("is_animated") is True
                else "video/webm" if item.get("is_video") is True
                else "image/webp"
            )
        return (Media(url=f"telegram:file/{file_id}", content_type=content_type, kind=kind,
                      file_name=_text(item.get("file_name"))),)
    return ()


def _location(raw: dict[str, Any]) -> Location | None:
    # A venue carries its own location, and Telegram repeats it as the message's `location`.
    venue = _dict(raw.get("venue"))
    point = _dict(venue.get("location")) or _dict(raw.get("location"))
    latitude, longitude = _number(point.get("latitude")), _number(point.get("longitude"))
    if latitude is None or longitude is None:
        return None
    return Location(latitude, longitude, name=_text(venue.get("title")), address=_text(venue.get("address")))


def _contact(raw: dict[str, Any], sender_id: int | None) -> SharedContact | None:
    card = _dict(raw.get("contact"))
    phone = _text(card.get("phone_number"))
    name = " ".join(part for part in (_text(card.get("first_name")), _text(card.get("last_name"))) if part)
    if not (phone or name):
        return None
    user_id = card.get("user_id")
    own = isinstance(user_id, int) and user_id == sender_id
    return SharedContact(name=name or phone or "", phone=phone, own=own)


def _forwarded_from(raw: dict[str, Any]) -> str | None:
    """Whom a forwarded message came from: a name, "" when not given, None when not forwarded.

    Bot API 7.0 replaced forward_from, forward_sender_name, forward_from_chat and forward_date with
    forward_origin (types user, hidden_user, chat, channel); older senders still send the first set.
    """
    origin = _dict(raw.get("forward_origin"))
    if origin:
        kind = origin.get("type")
        if kind == "user":
            return _person(origin.get("sender_user"))
        if kind == "hidden_user":
            return _text(origin.get("sender_user_name")) or ""
        if kind in ("chat", "channel"):
            return _chat_name(origin.get("sender_chat" if kind == "chat" else "chat"))
        return ""  # a type a newer Bot API adds: still forwarded
    if "forward_from" in raw:
        return _person(raw.get("forward_from"))
    if "forward_sender_name" in raw:
        return _text(raw.get("forward_sender_name")) or ""
    if "forward_from_chat" in raw:
        return _chat_name(raw.get("forward_from_chat"))
    if "forward_date" in raw:
        return ""
    return None


def _person(value: Any) -> str:
    user = _dict(value)
    return " ".join(part for part in (_text(user.get("first_name")), _text(user.get("last_name"))) if part)


def _chat_name(value: Any) -> str:
    chat = _dict(value)
    return _text(chat.get("title")) or _person(chat) or _text(chat.get("username")) or ""


def _button_title(message: MaybeInaccessibleMessage | None, data: str) -> str | None:
    """The title of the pressed button, when the callback's message still shows its keyboard."""
    markup = getattr(message, "reply_markup", None)
    for row in getattr(markup, "inline_keyboard", ()):
        for button in row:
            if button.callback_data == data and button.text:
                return str(button.text)
    return None
