"""SMS and WhatsApp through Twilio: one adapter class, configured once per channel name.

Both channels share Twilio's webhook shape (form-encoded, signed with X-Twilio-Signature) and
its Messages API; they differ in the address prefix ("whatsapp:"), the 24-hour session window
and what a send costs against the sender's rate limit (SMS: segments, WhatsApp: messages).
"""

from __future__ import annotations

import json
import logging
import math
import platform
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit

import requests
import urllib3
from twilio import __version__ as twilio_version
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.base.version import Version
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, HTTPError, ProxyError, SSLError

from bot.messages import DeliveryStatus, DeliveryUpdate, InboundMessage, Location, Media, MediaKind, OutboundMessage
from channels.base import (
    BadPayload,
    Forbidden,
    FormParams,
    MaybeSent,
    ProviderEvent,
    RateKey,
    RetryLater,
    Undeliverable,
    WebhookRequest,
)

logger = logging.getLogger(__name__)

WHATSAPP_PREFIX = "whatsapp:"
STATUS_CALLBACK_PATH = "/webhooks/twilio/status"
MAX_BODY = 1600  # Twilio rejects longer bodies (error 21617), on SMS and WhatsApp alike
HTTP_TIMEOUT_S = 15.0  # the SDK's default is no timeout at all: a hung socket would stall the outbox
CLOCK_SKEW = timedelta(minutes=2)  # between our clock and Twilio's, when asking what it accepted since a moment
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
MAX_MEDIA = 10  # Twilio's limit per message; a larger NumMedia is not trusted to bound a loop

STATUSES: dict[str, DeliveryStatus] = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "undelivered": "failed",
    "canceled": "failed",
}


@dataclass(frozen=True)
class ErrorVerdict:
    """What a Twilio error code says, the same whether a send is refused or a status callback reports it."""

    meaning: str  # what an agent reading a failed delivery needs to know without looking the code up
    address_dead: bool = False  # the number itself cannot receive: recorded on the customer's channel identity
    unsubscribed: bool = False  # the person replied STOP at the carrier: marketing consent is withdrawn


# Codes no retry can fix. Only an unreachable or unsubscribed number condemns the address: a closed
# WhatsApp window, a carrier's filter or our account's settings say nothing about the customer.
ERRORS: dict[int, ErrorVerdict] = {
    21610: ErrorVerdict("recipient unsubscribed (replied STOP)", address_dead=True, unsubscribed=True),
    21211: ErrorVerdict("not a valid phone number", address_dead=True),
    21614: ErrorVerdict("not a mobile number", address_dead=True),
    30003: ErrorVerdict("unreachable destination handset", address_dead=True),
    30005: ErrorVerdict("unknown destination handset", address_dead=True),
    30006: ErrorVerdict("landline or unreachable carrier", address_dead=True),
    30007: ErrorVerdict("filtered by the carrier"),
    63016: ErrorVerdict("outside the WhatsApp 24-hour window: use an approved template"),
    63018: ErrorVerdict("rate limit exceeded for the channel"),
    21408: ErrorVerdict("sending to this region is not enabled on the Twilio account"),
    21606: ErrorVerdict("the sending number cannot send to this destination"),
}

# GSM 03.38: the basic set costs one septet, the extension set two (escape + character).
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = set("\f^{}\\[]~|€")


def sms_segments(text: str) -> int:
    """How many SMS segments `text` is billed as: GSM-7 160/153, else UCS-2 70/67 per segment."""
    if all(c in GSM_BASIC or c in GSM_EXTENSION for c in text):
        units = [2 if c in GSM_EXTENSION else 1 for c in text]
        single, multi = 160, 153
    else:
        # UCS-2 counts UTF-16 code units: an emoji takes two.
        units = [len(c.encode("utf-16-le")) // 2 for c in text]
        single, multi = 70, 67
    if sum(units) <= single:
        return 1
    # Pack greedily: an escape pair or a surrogate pair is never split across segments.
    segments, used = 1, 0
    for unit in units:
        if used + unit > multi:
            segments, used = segments + 1, 0
        used += unit
    return segments


def split_text(text: str, limit: int = MAX_BODY) -> list[str]:
    """Cut `text` into parts of at most `limit` characters, at paragraph, line or word boundaries."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[: limit + 1]  # a separator right at the limit still counts
        cut = -1
        # Prefer the strongest boundary that keeps the part at least half full, then any boundary.
        for floor in (limit // 2, 1):
            cut = next((i for sep in ("\n\n", "\n", " ") if (i := window.rfind(sep, 0, limit + 1)) >= floor), -1)
            if cut > 0:
                break
        if cut <= 0:
            cut = limit  # one unbroken run longer than a message: cut it hard
        if part := rest[:cut].rstrip():
            parts.append(part)
        rest = rest[cut:].lstrip()
    if rest or not parts:
        parts.append(rest)
    return parts


# A message sid is two letters and 32 hex digits (SM: SMS/WhatsApp, MM: MMS). Checking the form is what makes
# a replay impossible: Twilio's signature covers the keys and values run together without separators, so
# "MessageSid=SMx…&NumMedia=0" and "MessageSid=SMx…NumMedia0" sign alike; the second is no sid.
SID = re.compile(r"^(?:SM|MM|IM)[0-9a-f]{32}$")


def _sid(request: WebhookRequest) -> str:
    """The message sid, or "" when none is given; BadPayload when it is not in Twilio's form."""
    # MessageSid since 2010; older integrations and some proxies still pass only the legacy names (same value).
    sid = request.form_value("MessageSid") or request.form_value("SmsMessageSid") or request.form_value("SmsSid")
    if sid and not SID.match(sid):
        raise BadPayload("MessageSid is not a Twilio message sid (two letters and 32 hex digits)", 400)
    return sid


def _is_whatsapp(request: WebhookRequest) -> bool | None:
    """Whether an inbound payload is WhatsApp (True) or SMS (False); None when nothing says.

    WhatsApp addresses carry the "whatsapp:" prefix, but not every sender's does (a proxy or an older
    integration may strip it), so our own number (To) and WhatsApp-only fields count as well. Only an
    unprefixed To, one of our SMS numbers, says SMS.
    """
    sender, to = request.form_value("From"), request.form_value("To")
    if sender.startswith(WHATSAPP_PREFIX) or to.startswith(WHATSAPP_PREFIX):
        return True
    if request.form_value("WaId") or request.form_value("ProfileName"):
        return True
    return False if to else None


def _media_kind(content_type: str, *, whatsapp: bool) -> MediaKind:
    main = content_type.split("/")[0]
    if main == "image":
        return "image"
    if main == "video":
        return "video"
    if main == "audio":
        # WhatsApp's voice notes are Opus in Ogg; a shared audio file keeps its own type.
        return "voice" if whatsapp and content_type.startswith("audio/ogg") else "audio"
    # Documents, and contact cards (text/vcard, text/x-vcard): their content needs a download to read.
    return "document"


def _location(request: WebhookRequest) -> Location | None:
    latitude, longitude = request.form_value("Latitude"), request.form_value("Longitude")
    if not (latitude and longitude):
        return None
    try:
        point = float(latitude), float(longitude)
    except ValueError:
        point = (math.nan, math.nan)
    if not all(math.isfinite(value) for value in point):
        logger.info("twilio location %r, %r is not a pair of numbers: ignored", latitude, longitude)
        return None
    return Location(*point, name=request.form_value("Label") or None, address=request.form_value("Address") or None)


def _transport_failure(exc: HTTPError) -> RetryLater:
    """A create that ended without an HTTP answer. No connection (refused, DNS, connect timeout, TLS handshake,
    proxy): the request never left, so a plain retry. Anything later (read timeout, connection reset or closed
    before the answer): Twilio may have accepted it (MaybeSent), so the outbox looks it up before any resend."""
    if isinstance(exc, (ConnectTimeoutError, SSLError, ProxyError)):  # NewConnectionError is a ConnectTimeoutError
        return RetryLater(f"Twilio unreachable: {type(exc).__name__}")
    return MaybeSent(f"no answer from Twilio ({type(exc).__name__}): it may have accepted the message")


def _form(params: dict[str, str | Sequence[str]]) -> str:
    """Twilio's Messages.json form: a list (MediaUrl) is the key repeated, as the SDK sends it."""
    pairs = [(key, item) for key, value in params.items()
             for item in ([value] if isinstance(value, str) else value)]
    return urlencode(pairs)


def _reason(exc: TwilioRestException | TwilioServiceException) -> str:
    if isinstance(exc, TwilioServiceException):
        return exc.detail or exc.title
    return exc.msg.removeprefix("Unable to create record: ")


class TwilioChannel:
    """The "sms" or "whatsapp" channel through Twilio's Messages API."""

    name: str
    session_window: timedelta | None
    # The outbox commits each send's start first and settles an unclear outcome with find_sent (docs/delivery.md).
    guard_sends = True

    def __init__(
        self,
        name: str,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        messages_per_second: float = 1.0,
        api_base_url: str | None = None,
        public_base_url: str | None = None,
        templates: dict[str, dict[str, tuple[str, tuple[str, ...]]]] | None = None,
    ) -> None:
        if name not in ("sms", "whatsapp"):
            raise ValueError(f"TwilioChannel name must be 'sms' or 'whatsapp', not {name!r}")
        if not (from_number or messaging_service_sid):
            raise ValueError(f"channels.{name}: set from_number or messaging_service_sid")
        self.name = name
        self.session_window = timedelta(hours=24) if name == "whatsapp" else None
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.messages_per_second = messages_per_second
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.templates = templates or {}
        self._validator = RequestValidator(auth_token)
        # A field, not a base class. Only the api domain is redirected: region/edge would mangle
        # a local base URL (the SDK rewrites the host name around dots).
        self.client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=HTTP_TIMEOUT_S))
        if api_base_url:
            self.client.api.base_url = api_base_url.rstrip("/")
        # Sends skip the SDK: per message its layers and requests' session machinery cost more CPU than the HTTP
        # exchange itself (bench/outbox_send.py). One pooled urllib3 manager posts the same form with the same Basic
        # auth and headers; error answers are still turned into the SDK's exceptions (`Version.exception`), so
        # `_mapped` judges them as before. Lookups (find_sent) and media downloads keep the SDK and requests.
        self._pool = urllib3.PoolManager(maxsize=4, retries=False, block=False)
        self._messages_path = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._headers = {
            **urllib3.make_headers(basic_auth=f"{account_sid}:{auth_token}"),
            "User-Agent": f"twilio-python/{twilio_version} ({platform.system()} {platform.machine()}) "
                          f"Python/{platform.python_version()}",
            "X-Twilio-Client": f"python-{twilio_version}",
            "Accept-Charset": "utf-8",
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        }

    # --- inbound -------------------------------------------------------------------------------

    def parse(self, request: WebhookRequest) -> list[ProviderEvent]:
        self._verify(request)
        if request.form_value("MessageStatus"):
            update = self._delivery_update(request)
            return [update] if update is not None else []
        message = self._inbound(request)
        if not (message.text or message.has_attachment or message.button_payload):
            # e.g. a WhatsApp message type Twilio passes on without content: 200, so it is not retried.
            logger.info(
                "twilio %s message %s ignored: no body, media or location (MessageType %r)",
                self.name, message.provider_message_id, request.form_value("MessageType"),
            )
            return []
        return [message]

    def signed_url(self, request: WebhookRequest) -> str:
        """The URL Twilio called, which is what it signed; behind a proxy it differs from ours."""
        received = urlsplit(request.url)
        tail = received.path + (f"?{received.query}" if received.query else "")
        if self.public_base_url:
            return self.public_base_url + tail
        # With several proxies in a row the headers list every hop; the first is what Twilio used.
        proto = request.headers.get("x-forwarded-proto") or received.scheme
        host = request.headers.get("x-forwarded-host") or request.headers.get("host") or received.netloc
        return f"{proto.split(',')[0].strip()}://{host.split(',')[0].strip()}{tail}"

    def _verify(self, request: WebhookRequest) -> None:
        signature = request.headers.get("x-twilio-signature")
        if not signature:
            raise Forbidden("missing X-Twilio-Signature")
        # A SharedKey-signed webhook names its algorithm (HMAC_SHA256); without the header it is
        # the legacy Auth Token HMAC-SHA1. An algorithm the SDK does not know fails validation.
        algorithm = get_signature_algorithm(request.headers.get("x-twilio-webhooks-signature-settings"))
        if not self._validator.validate(self.signed_url(request), FormParams(request.form), signature, algorithm):
            raise Forbidden("X-Twilio-Signature does not match this request")

    def _delivery_update(self, request: WebhookRequest) -> DeliveryUpdate | None:
        sid = _sid(request)
        if not sid:
            raise BadPayload("status callback without MessageSid")
        raw = request.form_value("MessageStatus").lower()
        status = STATUSES.get(raw)
        if status is None:
            # e.g. "receiving"/"received" for inbound messages: nothing about our outbound ones.
            logger.info("twilio status %r for %s ignored", raw, sid)
            return None
        code = request.form_value("ErrorCode")
        error, verdict = None, None
        if code and code != "0":
            verdict = ERRORS.get(int(code)) if code.isascii() and code.isdigit() and len(code) < 10 else None
            meaning = verdict.meaning if verdict else request.form_value("ErrorMessage")
            error = f"{code}: {meaning}" if meaning else code
        # Only a final failure speaks about the address; a code on any other status is a warning.
        final = verdict if status == "failed" else None
        return DeliveryUpdate(
            channel=self._channel_of(request),
            provider_message_id=sid,
            status=status,
            error=error,
            address_dead=final is not None and final.address_dead,
            unsubscribed=final is not None and final.unsubscribed,
        )

    def _channel_of(self, request: WebhookRequest) -> str:
        # Both adapters share one status callback URL, so the addresses tell which channel sent it.
        addresses = [request.form_value("To"), request.form_value("From")]
        if any(a.startswith(WHATSAPP_PREFIX) for a in addresses) or request.form_value("ChannelPrefix") == "whatsapp":
            return "whatsapp"
        return "sms" if any(addresses) else self.name

    def _inbound(self, request: WebhookRequest) -> InboundMessage:
        sid = _sid(request)
        sender = request.form_value("From")
        if not sid or not sender:
            raise BadPayload("inbound message without MessageSid or From")
        whatsapp = _is_whatsapp(request)
        if whatsapp is not None and whatsapp != (self.name == "whatsapp"):
            other = "whatsapp" if whatsapp else "sms"
            raise BadPayload(f"a {other} message arrived on the {self.name} webhook; check the Twilio number's URL")
        sender = sender.removeprefix(WHATSAPP_PREFIX)
        payload = request.form_value("ButtonPayload") or None
        body = request.form_value("Body")
        forwarded = any(request.form_value(flag).lower() == "true" for flag in ("Forwarded", "FrequentlyForwarded"))
        return InboundMessage(
            channel=self.name,
            sender=sender,
            provider_message_id=sid,
            text=(request.form_value("ButtonText") or body) if payload else body,
            received_at=datetime.now(UTC),
            display_name=request.form_value("ProfileName") or None,
            media=self._media(request),
            button_payload=payload,
            phone=sender if E164.match(sender) else None,
            location=_location(request),
            forwarded_from="" if forwarded else None,  # WhatsApp says only that it was forwarded, not by whom
            # A quick reply names the message that carried the button: ours, sent with this sid.
            button_of=(request.form_value("OriginalRepliedMessageSid") or None) if payload else None,
        )

    def _media(self, request: WebhookRequest) -> tuple[Media, ...]:
        try:
            count = int(request.form_value("NumMedia", "0") or "0")
        except ValueError:
            raise BadPayload("NumMedia is not a number") from None
        if count > MAX_MEDIA:
            logger.info("twilio %s: NumMedia %d, reading the first %d", self.name, count, MAX_MEDIA)
        sticker = request.form_value("MessageType") == "sticker"
        media = []
        for i in range(min(count, MAX_MEDIA)):
            url = request.form_value(f"MediaUrl{i}")
            if url:
                content_type = request.form_value(f"MediaContentType{i}").lower() or None
                kind = "sticker" if sticker else _media_kind(content_type or "", whatsapp=self.name == "whatsapp")
                media.append(Media(url=url, content_type=content_type, kind=kind))
        return tuple(media)

    # --- outbound ------------------------------------------------------------------------------

    def send(self, message: OutboundMessage) -> str:
        if message.media:  # an agent's files: see send_media at the end of the class
            return self.send_media(message)
        to = self._address(message.recipient)
        sender = self._sender()
        template = self._template(message)
        if template is not None:
            content_sid, variables = template
            return self._create({"To": to, "ContentSid": content_sid, "ContentVariables": variables, **sender})
        parts = self._parts(message)
        first = self._create({"To": to, "Body": parts[0], **sender})
        for number, part in enumerate(parts[1:], start=2):
            try:
                self._create({"To": to, "Body": part, **sender})
            except (RetryLater, Undeliverable) as exc:
                # The first part is delivered and its sid is what the outbox records: failing the
                # whole send would resend (duplicate) the parts the customer already has.
                # Only the last digits: logs must not carry customers' numbers.
                logger.warning(
                    "twilio %s: part %d/%d to ...%s not sent: %s", self.name, number, len(parts), to[-3:], exc
                )
                break
        return first

    def _sender(self) -> dict[str, str]:
        """Who sends (a number or a messaging service) and where Twilio reports the message's status."""
        sender = ({"From": self._address(self.from_number)} if self.from_number
                  else {"MessagingServiceSid": self.messaging_service_sid or ""})
        if self.public_base_url:
            sender["StatusCallback"] = self.public_base_url + STATUS_CALLBACK_PATH
        return sender

    def _create(self, params: dict[str, str | Sequence[str]]) -> str:
        """POST one message to Twilio's Messages.json (fields by Twilio's names); its sid.

        The timeout is the SDK client's (`client.http_client.timeout`), read per call so it can be tuned in one
        place. An error answer becomes the SDK's exception and then ours (`_mapped`); no answer, `_transport_failure`.
        """
        timeout = self.client.http_client.timeout or HTTP_TIMEOUT_S
        try:
            response = self._pool.request(
                "POST", self.client.api.base_url + self._messages_path, body=_form(params), headers=self._headers,
                timeout=urllib3.Timeout(connect=timeout, read=timeout), redirect=False)
        except HTTPError as exc:
            raise _transport_failure(exc) from exc
        text = response.data.decode("utf-8", "replace")
        if not 200 <= response.status < 300:
            error = Version.exception("POST", self._messages_path, Response(response.status, text, response.headers),
                                      "Unable to create record")
            raise self._mapped(error) from error
        # A 2xx means Twilio took the message; without a sid there is nothing better to record.
        return str(json.loads(text).get("sid") or "")

    @staticmethod
    def _mapped(exc: TwilioRestException | TwilioServiceException, *, sending: bool = True
                ) -> RetryLater | Undeliverable:
        status, code, reason = exc.status, exc.code, _reason(exc)
        if status == 429:
            # Twilio's 20429 page: not processed, safe to retry after backing off. No Retry-After.
            return RetryLater(f"429 Too Many Requests ({code})", after_s=None)
        if status >= 500:
            # A create answered 5xx may still have been accepted: the outbox looks it up before any resend.
            return (MaybeSent if sending else RetryLater)(f"Twilio {status} ({code}): {reason}")
        if status == 401:
            # Wrong or rotated credentials say nothing about the customer: retry (with backoff, up to
            # the outbox's attempts) so fixing TWILIO_AUTH_TOKEN delivers the queue instead of losing it.
            logger.error("Twilio rejected the account credentials (%s): check TWILIO_ACCOUNT_SID/AUTH_TOKEN", code)
            return RetryLater(f"Twilio 401 ({code}): credentials rejected")
        verdict = ERRORS.get(code) if isinstance(code, int) else None
        if verdict is not None:
            return Undeliverable(
                f"{code}: {reason}", address_dead=verdict.address_dead, unsubscribed=verdict.unsubscribed
            )
        # An error we do not know proves nothing about the number: the message fails, the address stays.
        return Undeliverable(f"Twilio {status} ({code}): {reason}", address_dead=False)

    def _address(self, number: str) -> str:
        if self.name == "whatsapp" and not number.startswith(WHATSAPP_PREFIX):
            return WHATSAPP_PREFIX + number
        return number

    def _template(self, message: OutboundMessage) -> tuple[str, str] | None:
        """(ContentSid, ContentVariables JSON) when this message must go as a template, else None."""
        purpose = message.template or message.purpose
        language = message.language or ""
        found = self.templates.get(purpose, {}).get(language)
        if self.name == "whatsapp":
            # Outside the window WhatsApp drops free text (63016, only reported later): never try it.
            if message.template is None and message.window_open is not False:
                return None
            if found is None:
                raise Undeliverable(
                    f"WhatsApp 24-hour window closed and no approved template for purpose '{purpose}' "
                    f"in language '{message.language}'"
                    if message.template is None
                    else f"no approved WhatsApp template for '{purpose}' in language '{message.language}'",
                    address_dead=False,
                )
        elif message.template is None or found is None:
            return None  # SMS needs no approval: the text itself is the fallback
        content_sid, names = found
        missing = [name for name in names if name not in message.template_variables]
        if missing:
            raise Undeliverable(
                f"template '{purpose}' ({language}) needs variables {', '.join(missing)} that the message lacks",
                address_dead=False,
            )
        variables = {str(i): message.template_variables[name] for i, name in enumerate(names, start=1)}
        return content_sid, json.dumps(variables, ensure_ascii=False)

    def _parts(self, message: OutboundMessage) -> list[str]:
        # Free-form Twilio messages carry no buttons: number the options; the core maps "1" back.
        text = message.text
        if message.buttons:
            options = "\n".join(f"{i}. {button.title}" for i, button in enumerate(message.buttons, start=1))
            text = f"{text}\n\n{options}" if text else options
        return split_text(text)

    def find_sent(self, message: OutboundMessage, since: datetime, exclude: Collection[str] = ()) -> str | None:
        """The sid of a message Twilio accepted for this recipient since `since`, or None.

        Asked about a send whose outcome is unknown (a crash interrupted it, or Twilio answered 5xx, or the answer
        was lost): did it reach Twilio? A free-text message must match its first part (its caption, for files); a
        template send, or files without text, any message from us. `exclude`: sids already recorded for other
        messages, so the same text sent twice is not taken for this one.
        """
        to = self._address(message.recipient)
        sender = self._address(self.from_number) if self.from_number else None
        try:
            templated = self._template(message) is not None
        except Undeliverable:
            templated = True  # it could not have been sent as text: any message from us counts
        first: str | None = None if templated else self._parts(message)[0]
        if message.media and not templated:  # send_media: the text is the first file's caption when it fits
            caption = message.text.strip()
            first = (caption or None) if len(caption) <= MAX_BODY else split_text(caption)[0]
        try:
            found = self.client.messages.list(to=to, date_sent_after=since - CLOCK_SKEW, limit=50)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise self._mapped(exc, sending=False) from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise RetryLater(f"Twilio unreachable: {type(exc).__name__}") from exc
        for record in reversed(found):  # oldest first: rows are reconciled in the order they were sent
            if record.sid in exclude or (sender is not None and record.from_ != sender):
                continue
            if first is None or record.body == first:
                return record.sid
        return None

    def rate_keys(self, message: OutboundMessage) -> list[RateKey]:
        key = f"{self.name}:sender:{self.from_number or self.messaging_service_sid}"
        try:
            templated = self._template(message) is not None
        except Undeliverable:
            templated = True  # send will refuse it; one token is a harmless charge
        if templated:
            cost = 1.0
        else:
            parts = self._parts(message)
            # Long codes are limited per SMS segment, WhatsApp senders per message.
            cost = float(sum(sms_segments(p) for p in parts) if self.name == "sms" else len(parts))
        return [RateKey(key, self.messages_per_second, cost)]

    def acknowledge(self, message: InboundMessage) -> None:
        return None  # Twilio needs only the webhook's 200

    # --- files: what a customer sent (fetch_media), what an agent shared (send_media) -----------

    FETCH_LIMIT = 32 * 1024 * 1024  # more than Twilio keeps for one MMS (5 MB) or WhatsApp media (16 MB)

    def fetch_media(self, url: str) -> tuple[bytes, str]:
        """The bytes and content type of media a customer sent (its MediaUrl).

        Twilio's media URLs need the account's credentials (HTTP Basic) and answer with a redirect to the
        bytes; requests follows it and drops the credentials when the host changes. The credentials only go
        to Twilio (or to the configured api_base_url, a fake in tests). Raises Undeliverable (not Twilio's,
        deleted, too large, credentials refused) or RetryLater (Twilio unreachable or failing).
        """
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        own = urlsplit(self.client.api.base_url)
        trusted = (parts.scheme == "https" and (host == "twilio.com" or host.endswith(".twilio.com"))) or (
            parts.scheme == own.scheme and parts.netloc == own.netloc)
        if not trusted:
            raise Undeliverable("not a Twilio media URL: the account's credentials are not sent there",
                                address_dead=False)
        try:
            response = requests.get(url, auth=(self.client.username, self.client.password), stream=True,
                                    timeout=HTTP_TIMEOUT_S)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise RetryLater(f"Twilio unreachable: {type(exc).__name__}") from exc
        with response:
            status = response.status_code
            if status == 429 or status >= 500:
                raise RetryLater(f"Twilio answered {status} for the media")
            if status in (401, 403):
                raise Undeliverable(f"Twilio refused the account's credentials for the media ({status}): check "
                                    "TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN", address_dead=False)
            if status == 404:
                raise Undeliverable("Twilio no longer has this media (deleted, or it expired)", address_dead=False)
            if status != 200:
                raise Undeliverable(f"Twilio answered {status} for the media", address_dead=False)
            data = bytearray()
            for chunk in response.iter_content(64 * 1024):
                data.extend(chunk)
                if len(data) > self.FETCH_LIMIT:
                    raise Undeliverable(f"the media is larger than {self.FETCH_LIMIT // (1024 * 1024)} MB",
                                        address_dead=False)
            content_type = response.headers.get("content-type", "").split(";")[0].strip()
        return bytes(data), content_type or "application/octet-stream"

    def send_media(self, message: OutboundMessage) -> str:
        """Files with the text (an agent's files): MMS carries up to 10 MediaUrls in one message, WhatsApp one
        file per message with the text as the first one's caption. Twilio downloads each file itself, so every
        URL must be public https (a signed Sapa link); WhatsApp files go only inside the 24-hour window, since an
        approved template cannot carry them. Returns the first message's sid.
        """
        from dataclasses import replace

        urls = [item.url for item in message.media]
        if any(not url.startswith("https://") for url in urls):
            raise Undeliverable("Twilio fetches files itself: each needs a public https URL", address_dead=False)
        if self.name == "whatsapp" and message.window_open is False:
            raise Undeliverable("WhatsApp 24-hour window closed: files can only be sent while it is open",
                                address_dead=False)
        to = self._address(message.recipient)
        sender = self._sender()
        text = message.text.strip()
        first: str | None = None
        if len(text) > MAX_BODY:  # too long for a caption: the text goes first, in parts, then the files
            first, text = self.send(replace(message, media=())), ""
        groups = [urls[i:i + 10] for i in range(0, len(urls), 10)] if self.name == "sms" else [[u] for u in urls]
        for index, group in enumerate(groups):
            params: dict[str, str | Sequence[str]] = {"To": to, "MediaUrl": group, **sender}
            if text and index == 0:
                params["Body"] = text
            try:
                sid = self._create(params)
            except (RetryLater, Undeliverable) as exc:
                if first is None:
                    raise
                logger.warning("twilio %s: file message %d/%d to ...%s not sent: %s", self.name, index + 1,
                               len(groups), to[-3:], exc)
                break
            first = first or sid
        return first or ""
