"""Telegram: Bot API webhooks in, python-telegram-bot (PTB) sends out.

Telegram authenticates a webhook only by echoing the secret given to setWebhook in a header, so
`parse` compares that header and then reads the body with PTB's own `Update` type. Sending goes
through one `telegram.Bot` (and so one httpx client) running on an event loop this adapter owns,
because PTB is async and the outbox dispatcher that calls `send` is a plain thread.

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
from typing import Any, TypeVar
from urllib.parse import quote

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update, User
from telegram.constants import ChatType
from telegram.error import BadRequest, ChatMigrated, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.error import Forbidden as TelegramForbidden
from telegram.warnings import PTBDeprecationWarning

from bot.messages import DeliveryUpdate, InboundMessage, Media, OutboundMessage
from channels.base import BadPayload, Forbidden, RateKey, RetryLater, Undeliverable, WebhookRequest

log = logging.getLogger(__name__)

T = TypeVar("T")

SECRET_HEADER = "x-telegram-bot-api-secret-token"
MAX_TEXT = 4096  # Bot API limit for sendMessage text
MAX_CALLBACK_DATA = 64  # bytes, Bot API limit for InlineKeyboardButton.callback_data
CALL_TIMEOUT_S = 30.0  # PTB's own connect/read/write timeouts (5 s each) normally end a call sooner
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
LANGUAGES = ("id", "en")
# "/start", "/start PAYLOAD" or "/start@our_bot PAYLOAD" (Telegram's deep-link form).
START = re.compile(r"^/start(?:@\w+)?(?:\s+(?P<payload>.*))?$", re.DOTALL)
# Media kinds we pass on: message attribute, placeholder text, content type when Telegram gives none.
MEDIA_KINDS = (
    ("document", "[document]", "application/octet-stream"),
    ("voice", "[voice]", "audio/ogg"),
    ("video", "[video]", "video/mp4"),
    ("audio", "[audio]", "audio/mpeg"),
)


class TelegramChannel:
    name = "telegram"
    session_window: timedelta | None = None

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

    # -- inbound -------------------------------------------------------------------------------

    def parse(self, request: WebhookRequest) -> list[InboundMessage | DeliveryUpdate]:
        given = request.headers.get(SECRET_HEADER, "")
        if not given or not hmac.compare_digest(given.encode(), self.webhook_secret.encode()):
            raise Forbidden("missing or wrong X-Telegram-Bot-Api-Secret-Token")
        try:
            data = json.loads(request.body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadPayload("body is not valid JSON", 400) from None
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            raise BadPayload("body is not a Telegram Update: a JSON object with an integer update_id", 400)
        try:
            return self._normalise(Update.de_json(data, self.bot))  # pure: builds objects, no network
        except (TypeError, KeyError, ValueError, AttributeError, OverflowError) as exc:
            # PTB builds objects without checking field types, so a wrong type may only surface while
            # we read the fields: either way the update is not one Telegram would send.
            raise BadPayload(f"body is not a valid Telegram Update: {exc!r}", 400) from None

    def _normalise(self, update: Update) -> list[InboundMessage | DeliveryUpdate]:
        if update.callback_query is not None:
            return self._from_callback(update)
        if update.edited_message is not None:
            return self._from_message(update.edited_message, edited=True)
        if update.message is not None:
            return self._from_message(update.message, edited=False)
        return []  # my_chat_member, poll, channel_post...: nothing a customer said

    def _chat_allowed(self, chat_type: str) -> bool:
        if chat_type == ChatType.PRIVATE:
            return True
        # Channels never: their posts have no customer behind them.
        return self.allow_groups and chat_type in (ChatType.GROUP, ChatType.SUPERGROUP)

    def _from_message(self, message: Message, *, edited: bool) -> list[InboundMessage | DeliveryUpdate]:
        chat = message.chat
        if not self._chat_allowed(chat.type):
            return []
        user = message.from_user
        text = message.text or message.caption
        media: tuple[Media, ...] = ()
        shared_phone = None
        if message.contact is not None:
            text = "[contact]"
            # Only a contact of oneself proves a phone: anyone can forward someone else's card.
            if user is not None and message.contact.user_id == user.id:
                shared_phone = _e164(message.contact.phone_number)
        elif message.photo:
            largest = max(message.photo, key=lambda size: (size.width * size.height, size.file_size or 0))
            media = (Media(url=f"telegram:file/{largest.file_id}", content_type="image/jpeg"),)
            text = text or "[photo]"
        else:
            for attribute, placeholder, default_type in MEDIA_KINDS:
                item = getattr(message, attribute)
                if item is not None:
                    content_type = getattr(item, "mime_type", None) or default_type
                    media = (Media(url=f"telegram:file/{item.file_id}", content_type=content_type),)
                    text = text or placeholder
                    break
        if not text:
            return []  # stickers, locations, service messages: nothing we can answer

        deep_link = button_payload = None
        if start := START.match(text.strip()):
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
                shared_phone=shared_phone,
                edit_of=edit_of,
                deep_link=deep_link,
            )
        ]

    def _from_callback(self, update: Update) -> list[InboundMessage | DeliveryUpdate]:
        query = update.callback_query
        assert query is not None
        if not isinstance(query.data, str) or not query.data:
            return []  # game callbacks carry no data
        # The message is missing for buttons under inline-mode messages: reply to the user then.
        if query.message is not None:
            if not self._chat_allowed(query.message.chat.type):
                return []
            sender = str(query.message.chat.id)
        else:
            sender = str(query.from_user.id)
        return [
            InboundMessage(
                channel=self.name,
                sender=sender,
                provider_message_id=f"cb:{query.id}",
                text=query.data,
                # A callback query has no timestamp of its own; the press is happening now.
                received_at=datetime.now(UTC),
                display_name=_display_name(query.from_user),
                language_hint=_language(query.from_user),
                button_payload=query.data,
                ack_token=query.id,
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
                sent = self._call(
                    self.bot.send_message(chat_id=chat_id, text=part, reply_markup=markup if last else None)
                )
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
                first_id = f"{sent.chat.id}:{sent.message_id}"  # the same form parse() gives
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
            return self._run(coroutine)
        except RetryAfter as exc:
            raise RetryLater(f"flood control: {exc.message}", after_s=_retry_after_s(exc)) from exc
        except ChatMigrated as exc:
            raise Undeliverable(f"migrated: the group is now chat {exc.new_chat_id}") from exc
        except TelegramForbidden as exc:
            raise Undeliverable(f"blocked: {self._redact(exc.message)}") from exc
        except InvalidToken:
            # PTB puts the token itself in this message: never let it reach the outbox or the logs.
            raise Undeliverable("invalid bot token: rejected by Telegram") from None
        except BadRequest as exc:  # a subclass of NetworkError, so it must come first
            raise Undeliverable(f"rejected: {self._redact(exc.message)}") from exc
        except NetworkError as exc:  # timeouts, connection errors and 5xx
            raise RetryLater(f"network: {self._redact(exc.message)}") from exc
        except TelegramError as exc:  # e.g. 409 Conflict: nothing says it is permanent
            raise RetryLater(f"telegram: {self._redact(exc.message)}") from exc
        except concurrent.futures.TimeoutError as exc:
            raise RetryLater(f"no answer from Telegram within {CALL_TIMEOUT_S:.0f} s") from exc

    def _redact(self, text: str) -> str:
        # Error texts can quote request URLs, and the token is part of every Bot API URL.
        for form in (self.bot.token, quote(self.bot.token, safe="")):
            text = text.replace(form, "<token>")
        return text

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(self._initialized(coroutine), self._ensure_loop())
        try:
            return future.result(timeout=CALL_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    async def _initialized(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            # A no-op once done; the first time it opens the HTTP client and checks the token (getMe).
            await self.bot.initialize()
        except BaseException:
            coroutine.close()  # never awaited: close it so Python does not warn
            raise
        return await coroutine

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
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.bot.shutdown(), loop).result(timeout=CALL_TIMEOUT_S)
        except Exception as exc:
            log.warning("telegram: closing the bot client failed: %s", exc)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=CALL_TIMEOUT_S)
        loop.close()


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
