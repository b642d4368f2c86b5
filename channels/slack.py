"""Slack agent desk: handoff cards out; agents' thread replies, button presses and /sapa in.

Slack signs every request with the app's signing secret. `verify` checks it at the edge, so a forgery
gets our 403 rather than bolt's 401. `parse` then hands the body to a slack-bolt `App` only for
routing. Its listeners turn payloads into the typed desk events below and append them to a list that
travels with the request in bolt's context. No listener calls Slack (say/respond are never used), and
authorization is a local function, so parsing needs no network.

Slack redelivers an event it did not see acknowledged within 3 s (same body, X-Slack-Retry-Num), and
bolt does not deduplicate, so the core does: on `AgentReply.event_id` and `AgentAction.dedupe_key`. A replay of
a signed request (the same body within the 5-minute window) carries the same ids, so it is dropped the same way;
a slash command is recorded by its `trigger_id` (bot/http/slack_events.py).

Before bolt sees a payload it is checked for what bolt and the listeners read (issue 15): text that is not text
(NUL, unpaired surrogates), nesting deeper than Slack's, and the shapes of `event`, `actions`, `user`,
`container`... A payload that fails is a BadPayload (400 with the reason), never an exception from bolt's insides.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import re
import time
from base64 import b64encode
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.client import HTTPException
from typing import Any
from urllib.error import URLError
from urllib.parse import parse_qsl, urlsplit

import requests
from slack_bolt import Ack, App, BoltContext, BoltRequest
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.error import BoltUnhandledRequestError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import Clock, SignatureVerifier

from bot.messages import InboundMessage, OutboundMessage
from channels.base import BadPayload, Forbidden, MaybeSent, RateKey, RetryLater, Undeliverable, WebhookRequest

log = logging.getLogger(__name__)

REPLAY_WINDOW_S = 300  # Slack's documented limit, also what SignatureVerifier enforces
MAX_DEPTH = 40  # Slack's deepest payloads (rich text in a message in an interaction) nest about 12 levels
MAX_ID = 255  # ids, timestamps, action names: Slack's are under 60 characters
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")  # NUL or an unpaired surrogate: no UTF-8 text Slack sends
ACTIONS = ("claim", "resolve", "escalate", "back_to_bot", "takeover")
_EVENTS = "sapa_events"  # the BoltContext key of the per-request list listeners append to
RATE_LIMITED = frozenset({"ratelimited", "rate_limited"})
# Errors a retry cannot fix: a wrong channel or token, or a message Slack will never accept.
PERMANENT_ERRORS = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "not_authed", "account_inactive",
    "token_revoked", "msg_too_long", "invalid_blocks", "invalid_blocks_format", "no_text", "token_expired",
    "missing_scope", "not_allowed_token_type", "restricted_action", "message_not_found", "cant_update_message",
    "edit_window_closed", "user_not_in_channel", "user_not_found",
})
# Errors after which Slack may have done part of the work (its docs: "some aspect of the operation succeeded").
MAYBE_TAKEN = frozenset({"internal_error", "fatal_error"})
METADATA_EVENT = "sapa_outbox"  # the event_type of the metadata on every post Sapa makes through the outbox
CLOCK_SKEW = timedelta(minutes=2)  # between our clock and Slack's, when asking what was posted since a moment
LOOKUP_PAGES, LOOKUP_PAGE_SIZE = 5, 200  # an unclear post is looked for among the newest 1,000 posts after it
FILE_PREFIX = "slack:"  # an agent's file in a message row: slack:<url_private_download> or slack:file/<file id>
FETCH_LIMIT = 50 * 1024 * 1024  # the most any channel takes (Telegram uploads); more is refused, not buffered
FETCH_TIMEOUT_S = 30.0
# files.info answers no retry can fix: the file is gone, or the app may not read files.
FILE_GONE = frozenset({"file_not_found", "file_deleted", "missing_scope", "not_allowed_token_type",
                       "invalid_auth", "not_authed", "token_revoked", "account_inactive"})
# Block Kit limits (characters).
HEADER_TEXT, SECTION_TEXT, FIELD_TEXT, BUTTON_TEXT = 150, 3000, 2000, 75
MESSAGE_PREVIEW = 300
STATUS_LABELS = {"waiting": "Waiting for an agent", "with_agent": "With an agent", "closed": "Closed",
                 "bot": "Back with the bot"}
SENDERS = {"customer": "Customer", "bot": "Bot", "agent": "Agent"}
BUTTONS = (("claim", "Claim", "primary"), ("resolve", "Resolve", None), ("escalate", "Escalate", "danger"),
           ("back_to_bot", "Back to bot", None))


@dataclass(frozen=True)
class UrlVerification:
    """Slack checking the events URL when it is saved: answer with the challenge."""

    challenge: str


@dataclass(frozen=True)
class SharedFile:
    """A file an agent shared in a card's thread (one of a message event's `files`)."""

    id: str
    name: str
    mimetype: str | None
    size: int | None  # bytes, as Slack reports them
    url: str | None  # url_private_download (else url_private): needs the bot token; None when Slack left it out
    mode: str | None  # hosted, snippet, post, external, tombstone (deleted), hidden_by_limit, file_access
    external: bool = False  # a link to Google Drive, Dropbox...: Slack does not hold the bytes

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "mimetype": self.mimetype, "size": self.size, "url": self.url,
                "mode": self.mode, "external": self.external}


@dataclass(frozen=True)
class AgentReply:
    """A person's message in a card's thread: meant for the customer of that conversation."""

    event_id: str  # the same on Slack's redeliveries
    slack_user: str
    channel: str
    thread_ts: str  # the card's ts: it names the conversation
    ts: str
    text: str  # Slack's markup already turned into plain text
    files: tuple[SharedFile, ...] = ()  # files shared with the message (subtype file_share, or files on a reply)


@dataclass(frozen=True)
class AgentAction:
    """A button on a card: claim, resolve, escalate or back_to_bot the conversation `value`."""

    dedupe_key: str
    action: str
    value: str  # the conversation's id (digits)
    slack_user: str
    channel: str
    message_ts: str  # the card, so that it can be updated


@dataclass(frozen=True)
class AgentCommand:
    """A /sapa slash command; `text` is everything after the command."""

    command: str
    text: str
    slack_user: str
    channel: str
    trigger_id: str


DeskEvent = UrlVerification | AgentReply | AgentAction | AgentCommand


class _InjectedClock(Clock):
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


class SlackDesk:
    name = "slack"
    session_window: timedelta | None = None
    # Every post through the outbox carries its row id as message metadata; the outbox commits each post's start
    # first and settles an unclear answer with find_sent, so no card or relay is posted twice (docs/delivery.md).
    guard_sends = True

    def __init__(self, bot_token: str, signing_secret: str, *, api_base_url: str | None = None,
                 now: Callable[[], float] = time.time) -> None:
        self.now = now
        self.verifier = SignatureVerifier(signing_secret, clock=_InjectedClock(now))  # ValueError when empty
        # slack_sdk joins method names with urljoin: without the trailing slash ".../api" loses "api".
        base_url = api_base_url.rstrip("/") + "/" if api_base_url else WebClient.BASE_URL
        # No retry handlers: slack_sdk's default resends a post whose connection dropped after Slack took it (a
        # duplicate in the thread); the outbox retries instead, after looking the post up (find_sent).
        self.client = WebClient(base_url=base_url, retry_handlers=[])
        self._api_netloc = urlsplit(base_url).netloc  # the fake in tests: its file URLs get the token too
        self.app = App(
            name="sapa-slack-desk",  # without a name bolt calls inspect.stack(), which is slow
            client=self.client,
            signing_secret=signing_secret,
            # A local authorize instead of the token: bolt would otherwise call auth.test on the first
            # request (token_verification_enabled=False only postpones it), making parse need Slack.
            authorize=lambda enterprise_id, team_id: AuthorizeResult(
                enterprise_id=enterprise_id, team_id=team_id, bot_token=bot_token
            ),
            request_verification_enabled=False,  # verify() did it, answering 403
            url_verification_enabled=False,  # parse() answers it before dispatch
            process_before_response=True,  # listeners run inside dispatch, so their events are ready after it
            raise_error_for_unhandled_request=True,  # not a warning with sample code: we just ignore it
        )
        # Only now: a client that already holds a token makes bolt warn that `authorize` overrides it.
        self.client.token = bot_token
        self.app.event("message")(_on_message)
        self.app.action(re.compile(r"^sapa_"))(_on_action)
        self.app.command("/sapa")(_on_command)
        self.app.error(_reraise)

    # -- inbound -------------------------------------------------------------------------------

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise Forbidden unless Slack signed `body` within the last five minutes."""
        timestamp, signature = headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature")
        if not timestamp or not signature:
            raise Forbidden("missing X-Slack-Signature or X-Slack-Request-Timestamp")
        try:
            age = abs(self.now() - int(timestamp))
        except ValueError:
            raise Forbidden("X-Slack-Request-Timestamp is not a Unix time") from None
        if age > REPLAY_WINDOW_S:
            raise Forbidden(f"X-Slack-Request-Timestamp is more than {REPLAY_WINDOW_S} s from now: replayed or late")
        try:
            valid = self.verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
        except UnicodeDecodeError:  # slack_sdk decodes first; Slack signs UTF-8 text only
            expected = "v0=" + hmac.new(self.verifier.signing_secret.encode(), b"v0:" + timestamp.encode() + b":"
                                        + body, hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected, signature):
                raise BadPayload("the body is not UTF-8 text", 400) from None
            valid = False
        if not valid:
            raise Forbidden("wrong X-Slack-Signature")

    def parse(self, request: WebhookRequest) -> list[DeskEvent]:
        """Verify (Forbidden), then route through bolt to the desk events; [] for anything else."""
        self.verify(request.headers, request.body)
        payload = _decode(request)
        _check_text(payload)
        _check_shape(payload)
        if payload.get("type") == "url_verification":
            challenge = payload.get("challenge")
            if not isinstance(challenge, str) or not challenge:
                raise BadPayload("url_verification without a challenge", 400)
            return [UrlVerification(challenge)]
        if not _for_the_desk(payload):  # bolt never sees what no listener wants (it indexes payloads blindly)
            log.info("Slack %s ignored: nothing for the desk", _kind(payload))
            return []
        events: list[DeskEvent] = []
        try:
            # Re-encoded as JSON: bolt's own form parsing turns a slash command whose text contains the
            # word "payload" into an empty body. Client headers stay out (x-slack-bolt-* steer bolt).
            bolt_request = BoltRequest(
                body=json.dumps(payload), headers={"content-type": "application/json"}, context={_EVENTS: events}
            )
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            raise BadPayload(f"not a Slack payload bolt can read: {exc!r}", 400) from None
        try:
            with contextlib.suppress(BoltUnhandledRequestError):  # app_mention, other buttons: not for the desk
                self.app.dispatch(bolt_request)  # a listener's BadPayload comes back out through _reraise
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            # A shape _check_shape does not know yet, met inside bolt: the payload's fault, not ours.
            log.warning("Slack %s unreadable: %r", _kind(payload), exc)
            raise BadPayload(f"not a Slack payload Sapa can read: {type(exc).__name__}", 400) from None
        if not events:  # answered 200 all the same, or Slack would retry it
            log.info("Slack %s ignored: nothing for the desk", _kind(payload))
        return events

    def retry_num(self, request: WebhookRequest) -> int:
        """How many times Slack has redelivered this event (0 for the first delivery), for the logs."""
        try:
            return int(request.headers.get("x-slack-retry-num", "0"))
        except ValueError:
            return 0

    def acknowledge(self, message: InboundMessage) -> None:
        return None  # ack() is the HTTP answer itself: nothing is owed to Slack later

    # -- outbound ------------------------------------------------------------------------------

    def send(self, message: OutboundMessage) -> str:
        """Post (or with options["update_ts"], update) a message; returns its ts, Slack's message id."""
        options: dict[str, Any] = getattr(message, "options", None) or {}
        card = options.get("card") if isinstance(options.get("card"), dict) else None
        blocks = render_card(card) if card is not None else None
        text = message.text or (card_text(card) if card is not None else "")
        posting = False
        try:
            if user := options.get("ephemeral_user"):  # only that person sees it (a refused claim...)
                if options.get("takeover_of") is not None:
                    blocks = _takeover_blocks(text, str(options["takeover_of"]))
                response = self.client.chat_postEphemeral(
                    channel=message.recipient, user=str(user), text=text, blocks=blocks,
                    thread_ts=options.get("thread_ts"),
                )
                return str(response.get("message_ts") or "")
            if update_ts := options.get("update_ts"):
                # An empty list drops the old blocks: without it Slack keeps the card's buttons.
                self.client.chat_update(channel=message.recipient, ts=update_ts, text=text, blocks=blocks or [])
                return str(update_ts)
            posting = True  # from here an unclear answer may hide a post Slack took
            response = self.client.chat_postMessage(
                channel=message.recipient, text=text, blocks=blocks, thread_ts=options.get("thread_ts"),
                unfurl_links=False, metadata=_metadata(message),
            )
        except SlackApiError as exc:
            raise _failure(exc, posting=posting) from exc
        except URLError as exc:  # no connection, or the request not written: nothing was posted
            raise RetryLater(f"slack unreachable: {exc.reason}") from exc
        except (OSError, HTTPException) as exc:  # read timeout, reset or closed before the answer
            if posting:
                raise MaybeSent(f"no answer from slack ({type(exc).__name__}): it may have taken the post") from exc
            raise RetryLater(f"slack unreachable: {type(exc).__name__}: {exc}") from exc
        return str(response["ts"])

    def find_sent(self, message: OutboundMessage, since: datetime, exclude: Collection[str] = ()) -> str | None:
        """The ts of the post Slack took for this outbox row since `since`, or None: found by the row id in the
        message metadata (`send` attaches it). A thread post is looked for in its thread (conversations.replies),
        a card in the channel (conversations.history), newest LOOKUP_PAGES pages at most.

        Only chat.postMessage posts can be found: an update is idempotent and an ephemeral note is not listed, so
        those are simply sent again (None). So is a post when Slack will not let Sapa read the channel (a missing
        channels:history scope...): said at ERROR, and the post is at least once again."""
        options: dict[str, Any] = message.options or {}
        if message.outbox_id is None or options.get("update_ts") or options.get("ephemeral_user"):
            return None
        thread_ts = options.get("thread_ts")
        oldest = f"{(since - CLOCK_SKEW).timestamp():.6f}"
        cursor: str | None = None
        try:
            for _ in range(LOOKUP_PAGES):
                if thread_ts:
                    page = self.client.conversations_replies(
                        channel=message.recipient, ts=str(thread_ts), oldest=oldest, include_all_metadata=True,
                        limit=LOOKUP_PAGE_SIZE, cursor=cursor)
                else:
                    page = self.client.conversations_history(
                        channel=message.recipient, oldest=oldest, include_all_metadata=True,
                        limit=LOOKUP_PAGE_SIZE, cursor=cursor)
                for posted in page.get("messages") or []:
                    if _outbox_id(posted) == message.outbox_id and posted.get("ts"):
                        return str(posted["ts"])
                cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
                if not page.get("has_more") or not cursor:
                    return None
        except SlackApiError as exc:
            failure = _failure(exc, posting=False)
            if isinstance(failure, Undeliverable):
                log.error("slack: cannot look up outbox %s in %s (%s); it is posted again (at least once)",
                          message.outbox_id, message.recipient, failure.reason)
                return None
            raise failure from exc
        except (OSError, HTTPException) as exc:
            raise RetryLater(f"slack unreachable: {type(exc).__name__}: {exc}") from exc
        log.warning("slack: outbox %s not among the newest %d posts in %s; it is posted again", message.outbox_id,
                    LOOKUP_PAGES * LOOKUP_PAGE_SIZE, message.recipient)
        return None

    def rate_keys(self, message: OutboundMessage) -> list[RateKey]:
        return [RateKey(f"slack:channel:{message.recipient}", 1.0)]  # chat.postMessage: ~1/s per channel

    # -- files ---------------------------------------------------------------------------------

    def fetch_media(self, reference: str) -> tuple[bytes, str]:
        """The bytes and content type of an agent's file: `slack:<url_private_download>` or `slack:file/<id>`.

        Slack serves private files to the bot token (scope files:read); the token only goes to Slack's hosts
        (or the configured api_base_url). A file shared from another organisation comes without a URL, so
        files.info is asked for it. Raises Undeliverable (gone, not allowed, too large) or RetryLater.
        """
        if not reference.startswith(FILE_PREFIX):
            raise Undeliverable("not a Slack file reference", address_dead=False)
        url = reference.removeprefix(FILE_PREFIX)
        if url.startswith("file/"):
            url = self._file_url(url.removeprefix("file/"))
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if not ((parts.scheme == "https" and (host == "slack.com" or host.endswith(".slack.com")))
                or parts.netloc == self._api_netloc):
            raise Undeliverable("not a Slack file URL: the bot token is not sent there", address_dead=False)
        try:
            response = requests.get(url, headers={"Authorization": f"Bearer {self.client.token}"}, stream=True,
                                    timeout=FETCH_TIMEOUT_S)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise RetryLater(f"Slack unreachable: {type(exc).__name__}") from exc
        with response:
            status = response.status_code
            if status == 429 or status >= 500:
                raise RetryLater(f"Slack answered {status} for the file")
            if status in (401, 403, 404, 410):
                raise Undeliverable(f"Slack refused the file download ({status}): it was deleted, or the app "
                                    "lacks the files:read scope", address_dead=False)
            if status != 200:
                raise Undeliverable(f"Slack answered {status} for the file", address_dead=False)
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type == "text/html" and not parts.path.lower().endswith((".html", ".htm")):
                # Slack answers a download it will not serve with its sign-in page, and 200.
                raise Undeliverable("Slack answered with its sign-in page instead of the file: the app needs the "
                                    "files:read scope", address_dead=False)
            data = bytearray()
            for chunk in response.iter_content(64 * 1024):
                data.extend(chunk)
                if len(data) > FETCH_LIMIT:
                    raise Undeliverable(f"the file is larger than {FETCH_LIMIT // (1024 * 1024)} MB",
                                        address_dead=False)
        return bytes(data), content_type or "application/octet-stream"

    def fetch_data_url(self, reference: str, content_type: str | None = None) -> str:
        """The file as a `data:` URL, for a channel that uploads bytes itself (Telegram)."""
        data, fetched_type = self.fetch_media(reference)
        kind = content_type or fetched_type or "application/octet-stream"
        return f"data:{kind};base64,{b64encode(data).decode()}"

    def _file_url(self, file_id: str) -> str:
        try:
            info = self.client.files_info(file=file_id)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "")
            if error in FILE_GONE:
                raise Undeliverable(f"Slack files.info: {error}", address_dead=False) from exc
            raise _failure(exc) from exc
        except (OSError, HTTPException) as exc:
            raise RetryLater(f"slack unreachable: {exc}") from exc
        shown = info.get("file") or {}
        url = shown.get("url_private_download") or shown.get("url_private")
        if not isinstance(url, str) or not url:
            raise Undeliverable("Slack gives no download URL for this file", address_dead=False)
        return url


# -- bolt listeners (bolt passes arguments by name) ----------------------------------------------


def _on_message(body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
    # bolt hands over every subtype (edits, deletions, bot posts); only a person's reply inside a
    # thread is for a customer, also when "send to channel" was ticked (thread_broadcast).
    # Modern bot messages have bot_id and no subtype.
    # A file shared in the thread is a message too: subtype file_share, or (newer clients) files on a
    # plain reply.
    thread_ts, ts, user = event.get("thread_ts"), event.get("ts"), event.get("user")
    from_person = (event.get("subtype") in (None, "thread_broadcast", "file_share") and not event.get("bot_id")
                   and user)
    if not from_person or not thread_ts or thread_ts == ts:
        return
    text, files = event.get("text"), event.get("files")
    if text is not None and not isinstance(text, str):
        raise BadPayload("a thread reply's text is not a string", 400)
    if files is not None and not (isinstance(files, list) and all(isinstance(f, dict) for f in files)):
        raise BadPayload("a thread reply's files are not a list of objects", 400)
    context[_EVENTS].append(AgentReply(
        event_id=_field(body, "event_id"), slack_user=_field(event, "user"), channel=_field(event, "channel"),
        thread_ts=_field(event, "thread_ts"), ts=_field(event, "ts"), text=plain_text(text or ""),
        files=tuple(_shared_file(f) for f in files or ()),
    ))


def _shared_file(data: Mapping[str, Any]) -> SharedFile:
    url = data.get("url_private_download") or data.get("url_private")
    size = data.get("size")
    name = data.get("name") or data.get("title") or "file"
    mimetype = data.get("mimetype")
    return SharedFile(
        id=str(data.get("id") or ""), name=str(name), mimetype=str(mimetype) if mimetype else None,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        url=url if isinstance(url, str) and url else None, mode=str(data["mode"]) if data.get("mode") else None,
        external=bool(data.get("is_external")),
    )


def _on_action(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext) -> None:
    ack()
    name = str(action.get("action_id", "")).removeprefix("sapa_")
    if name not in ACTIONS:
        return
    value = action.get("value")
    if not isinstance(value, str):
        raise BadPayload(f"the value of button sapa_{name} is not a string", 400)
    if not re.fullmatch(r"[0-9]{1,18}", value):  # not isdigit(): "²" is a digit to it, and int() refuses it
        raise BadPayload(f"the value of button sapa_{name} is not a conversation number", 400)
    container, channel, message = _object(body, "container"), _object(body, "channel"), _object(body, "message")
    context[_EVENTS].append(AgentAction(
        dedupe_key=f"{_optional(body, 'trigger_id')}:{_field(action, 'action_ts')}",
        action=name,
        value=value,
        slack_user=_field(_object(body, "user"), "id"),
        channel=_optional(channel, "id") or _optional(container, "channel_id"),
        message_ts=_optional(message, "ts") or _optional(container, "message_ts"),
    ))


def _on_command(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
    ack()
    text = command.get("text", "")
    if not isinstance(text, str):
        raise BadPayload("the slash command's text is not a string", 400)
    context[_EVENTS].append(AgentCommand(
        command=_field(command, "command"), text=text,
        slack_user=_field(command, "user_id"), channel=_field(command, "channel_id"),
        trigger_id=_optional(command, "trigger_id"),
    ))


def _kind(payload: Mapping[str, Any]) -> str:
    """What a payload is, for the log: "event message/bot_message", "block_actions sapa_snooze"..."""
    event = payload.get("event")
    if isinstance(event, dict):
        subtype = event.get("subtype")
        return f"event {event.get('type')}" + (f"/{subtype}" if subtype else "") + (
            " from a bot" if event.get("bot_id") else "")
    actions = payload.get("actions")
    names = ",".join(str(a.get("action_id")) for a in actions if isinstance(a, dict)) if isinstance(
        actions, list) else ""
    return " ".join(str(part) for part in (payload.get("type") or payload.get("command") or "payload", names) if part)


def _reraise(error: Exception) -> None:
    raise error  # bolt would log it and answer 500; parse()'s caller decides instead


def _field(data: Mapping[str, Any], key: str) -> str:
    """A required id or timestamp: a non-empty string of at most MAX_ID characters."""
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise BadPayload(f"Slack payload without {key}", 400)
    if len(value) > MAX_ID:
        raise BadPayload(f"Slack payload's {key} is longer than {MAX_ID} characters", 400)
    return value


def _optional(data: Mapping[str, Any], key: str) -> str:
    """An id Slack may leave out ("" then); when present it must look like one."""
    return "" if data.get(key) in (None, "") else _field(data, key)


def _object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A sub-object Slack may leave out ({} then); anything but an object there is a bad payload."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadPayload(f"Slack payload's {key} is not an object", 400)
    return value


def _check_text(payload: Any) -> None:
    """Every string (keys too) is text Slack could have sent, and nothing nests deeper than MAX_DEPTH."""
    pending: list[tuple[Any, int]] = [(payload, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if found := _NOT_TEXT.search(value):
                what = "a NUL character" if found.group() == "\x00" else "an unpaired surrogate (not UTF-8 text)"
                raise BadPayload(f"Slack payload contains {what}", 400)
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise BadPayload(f"Slack payload nests deeper than {MAX_DEPTH} levels", 400)
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            pending.extend((item, depth + 1) for item in items)


def _for_the_desk(payload: Mapping[str, Any]) -> bool:
    """A slash command, a button press or a message event: the only payloads a desk listener takes."""
    event = payload.get("event")
    return ("command" in payload or payload.get("type") == "block_actions"
            or (payload.get("type") == "event_callback" and isinstance(event, dict) and event.get("type") == "message"))


def _check_shape(payload: Mapping[str, Any]) -> None:
    """The parts bolt reads before any listener runs (it indexes them blindly) have the type Slack gives them."""
    kind = payload.get("type")
    if kind == "event_callback" or "event" in payload:
        event = payload.get("event")
        if not isinstance(event, dict):
            raise BadPayload("Slack event_callback whose event is not an object", 400)
        if not isinstance(event.get("type"), str):
            raise BadPayload("Slack event without a type", 400)
    if kind in ("block_actions", "interactive_message") or "actions" in payload:
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions:
            raise BadPayload("Slack interaction whose actions are not a non-empty list", 400)
        if not all(isinstance(action, dict) for action in actions):
            raise BadPayload("Slack interaction with an action that is not an object", 400)
        for action in actions:
            if not isinstance(action.get("action_id", ""), str):
                raise BadPayload("Slack interaction with an action_id that is not a string", 400)
        for key in ("user", "container", "channel", "message", "team", "enterprise", "view"):
            _object(payload, key)
    if "command" in payload:
        _field(payload, "command")
        for key in ("user_id", "channel_id", "team_id", "trigger_id"):
            _optional(payload, key)


def _decode(request: WebhookRequest) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = request.body.decode("utf-8")
        if content_type == "application/x-www-form-urlencoded":
            form = dict(parse_qsl(text, keep_blank_values=True))
            # Interactivity sends its JSON in one `payload` field; slash commands are plain fields.
            data: Any = json.loads(form["payload"]) if "payload" in form else form
        else:
            data = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        raise BadPayload("body is neither JSON nor a form Slack would send", 400) from None
    except RecursionError:
        raise BadPayload(f"Slack payload nests deeper than {MAX_DEPTH} levels", 400) from None
    if not isinstance(data, dict):
        raise BadPayload("Slack payload is not a JSON object", 400)
    return data


def _failure(exc: SlackApiError, *, posting: bool = False) -> RetryLater | Undeliverable:
    """Slack's error answer as the outbox reads it. `posting` (chat.postMessage): a 5xx or an error that says part
    of the work may have been done (internal_error, fatal_error) is MaybeSent, so the post is looked up, not
    repeated; a 429 or any other answer means nothing was posted."""
    response = exc.response
    error = str(response.get("error") or "")[:200]  # a non-JSON answer's "error" quotes the whole body
    if response.status_code == 429 or error in RATE_LIMITED:
        header = str(response.headers.get("Retry-After") or response.headers.get("retry-after") or "1")
        return RetryLater("slack ratelimited", after_s=float(header) if header.isdigit() else 1.0)
    if error in PERMANENT_ERRORS:
        return Undeliverable(f"slack {error}", address_dead=False)  # a desk channel, never a customer
    reason = f"slack {error or 'error'} (HTTP {response.status_code})"
    if posting and (response.status_code >= 500 or error in MAYBE_TAKEN):
        return MaybeSent(f"{reason}: it may have taken the post")
    return RetryLater(reason)


def _metadata(message: OutboundMessage) -> dict[str, Any] | None:
    """Slack message metadata naming the outbox row, for find_sent; None outside the outbox."""
    outbox_id = getattr(message, "outbox_id", None)
    if outbox_id is None:
        return None
    return {"event_type": METADATA_EVENT, "event_payload": {"outbox_id": outbox_id}}


def _outbox_id(posted: Mapping[str, Any]) -> int | None:
    """The outbox row id in a listed message's metadata (as `_metadata` wrote it), else None."""
    metadata = posted.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_EVENT:
        return None
    payload = metadata.get("event_payload")
    value = payload.get("outbox_id") if isinstance(payload, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        return int(value)
    except ValueError:
        return None


# -- text ----------------------------------------------------------------------------------------

_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")


def plain_text(markup: str) -> str:
    """Slack message markup as a customer should read it: links and mentions as text, entities decoded."""

    def replace(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith(("http://", "https://")):
            return target if not label or label in target else f"{label} ({target})"
        return label or target.removeprefix("mailto:")

    return _LINK.sub(replace, markup).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def escape(text: str) -> str:
    """Text safe inside Slack markup: a customer's "<!channel>" must not ping anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fit(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return re.sub(r"&[a-z]*$", "", text[: limit - 1]) + "…"  # never leave half an entity behind


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": _fit(text, limit), "emoji": True}


def _mrkdwn(text: str, limit: int = SECTION_TEXT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _fit(text, limit)}


def _listing(title: str, lines: list[str]) -> dict[str, Any]:
    """A section of whole lines: those that do not fit are counted rather than cut in half."""
    text = title
    for index, line in enumerate(lines):
        more = f"\n_…and {len(lines) - index} more_"
        if len(text) + 1 + len(line) + len(more) > SECTION_TEXT:
            text += more
            break
        text += "\n" + line
    return {"type": "section", "text": _mrkdwn(text)}


def _when(iso: str | None) -> str:
    """A deadline each reader sees in their own time zone (Slack's date token), the ISO text as fallback."""
    if not iso:
        return "—"
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        return escape(iso)
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{escape(iso)}>"


def _headline(card: Mapping[str, Any]) -> str:
    title = str(card.get("title") or "Customer needs an agent")
    if not card.get("vip"):
        return title
    tier = f" {card['vip_tier']}" if card.get("vip_tier") else ""
    return f"⭐ VIP{tier} · {title}"


def render_card(card: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Block Kit for a handoff or escalation card. Everything from customers is escaped."""
    conversation = str(card["conversation_id"])
    status = str(card.get("status") or "waiting")
    status_text = escape(STATUS_LABELS.get(status, status))
    if card.get("owner"):
        status_text += f" ({escape(str(card['owner']))})"
    facts = [("Customer", escape(str(card.get("customer_name") or "unknown"))),
             ("Channel", escape(str(card.get("channel") or "—"))),
             ("Language", escape(str(card.get("language") or "—"))),
             ("Status", status_text), ("SLA deadline", _when(card.get("sla_due")))]
    if card.get("reason"):
        facts.append(("Reason", escape(str(card["reason"]))))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(_headline(card), HEADER_TEXT)},
        {"type": "section", "fields": [_mrkdwn(f"*{name}*\n{value}", FIELD_TEXT) for name, value in facts]},
    ]
    if tickets := card.get("tickets"):
        blocks.append(_listing("*Open tickets*", [
            f"• `{escape(str(t.get('ref', '?')))}` {escape(str(t.get('kind', '')))} — "
            f"{escape(str(t.get('status', '')))}, due {_when(t.get('due'))}" for t in tickets
        ]))
    if messages := card.get("last_messages"):
        lines = []
        for item in messages:
            said = " ".join(str(item.get("text", "")).split())  # one line each: "> " quotes one line
            said = said if len(said) <= MESSAGE_PREVIEW else said[: MESSAGE_PREVIEW - 1] + "…"
            sender = str(item.get("sender", ""))
            line = f"> *{escape(SENDERS.get(sender, sender.capitalize()))}:* {escape(said)}"
            # What came with it (files, a place, a contact): mrkdwn the desk built, customer words escaped there.
            extras = [str(extra) for extra in item.get("extras") or []]
            lines.append(" ".join([line, *extras]) if extras else line)
        blocks.append(_listing("*Last messages*", lines))
    if card.get("mention"):
        blocks.append({"type": "section", "text": _mrkdwn(f"cc {card['mention']}")})  # ours: meant to ping
    blocks.append({"type": "context", "elements": [_mrkdwn(f"Conversation #{escape(conversation)}")]})
    if status not in ("closed", "bot"):
        buttons = []
        for action, label, style in BUTTONS:
            if action == "claim" and status == "with_agent":
                continue
            button = {"type": "button", "action_id": f"sapa_{action}", "text": _plain(label, BUTTON_TEXT),
                      "value": conversation}
            buttons.append({**button, "style": style} if style else button)
        blocks.append({"type": "actions", "block_id": f"sapa_card_{conversation}", "elements": buttons})
    return blocks


def _takeover_blocks(text: str, conversation: str) -> list[dict[str, Any]]:
    """An ephemeral note with a Take over button (for supervisors whose claim met another holder)."""
    button = {"type": "button", "action_id": "sapa_takeover", "text": _plain("Take over", BUTTON_TEXT),
              "value": conversation, "style": "danger",
              "confirm": {"title": _plain("Take over?", 100),
                          "text": _mrkdwn("The agent holding it is told, and the customer hears that you took over.",
                                          300),
                          "confirm": _plain("Take over", 30), "deny": _plain("Cancel", 30)}}
    return [{"type": "section", "text": _mrkdwn(text)},
            {"type": "actions", "block_id": f"sapa_takeover_{conversation}", "elements": [button]}]


def card_text(card: Mapping[str, Any]) -> str:
    """The plain fallback for notifications and screen readers, shown where blocks cannot be."""
    text = f"{escape(_headline(card))}: {escape(str(card.get('customer_name') or 'a customer'))}"
    if card.get("channel"):
        text += f" via {escape(str(card['channel']))}"
    if card.get("reason"):
        text += f" ({escape(str(card['reason']))})"
    text += f", conversation #{escape(str(card['conversation_id']))}"
    return f"{text} {card['mention']}" if card.get("mention") else text
