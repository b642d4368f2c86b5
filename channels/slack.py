"""Slack agent desk: handoff cards out; agents' thread replies, button presses and /sapa in.

Slack signs every request with the app's signing secret. `verify` checks it at the edge, so a forgery
gets our 403 rather than bolt's 401. `parse` then hands the body to a slack-bolt `App` only for
routing. Its listeners turn payloads into the typed desk events below and append them to a list that
travels with the request in bolt's context. No listener calls Slack (say/respond are never used), and
authorization is a local function, so parsing needs no network.

Slack redelivers an event it did not see acknowledged within 3 s (same body, X-Slack-Retry-Num), and
bolt does not deduplicate, so the core does: on `AgentReply.event_id` and `AgentAction.dedupe_key`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from base64 import b64encode
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.client import HTTPException
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from slack_bolt import Ack, App, BoltContext, BoltRequest
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.error import BoltUnhandledRequestError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import Clock, SignatureVerifier

from bot.messages import InboundMessage, OutboundMessage
from channels.base import BadPayload, Forbidden, RateKey, RetryLater, Undeliverable, WebhookRequest

log = logging.getLogger(__name__)

REPLAY_WINDOW_S = 300  # Slack's documented limit, also what SignatureVerifier enforces
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
    value: str
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

    def __init__(self, bot_token: str, signing_secret: str, *, api_base_url: str | None = None,
                 now: Callable[[], float] = time.time) -> None:
        self.now = now
        self.verifier = SignatureVerifier(signing_secret, clock=_InjectedClock(now))  # ValueError when empty
        # slack_sdk joins method names with urljoin: without the trailing slash ".../api" loses "api".
        base_url = api_base_url.rstrip("/") + "/" if api_base_url else WebClient.BASE_URL
        self.client = WebClient(base_url=base_url)
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
        except UnicodeDecodeError:
            valid = False  # Slack signs UTF-8 text only
        if not valid:
            raise Forbidden("wrong X-Slack-Signature")

    def parse(self, request: WebhookRequest) -> list[DeskEvent]:
        """Verify (Forbidden), then route through bolt to the desk events; [] for anything else."""
        self.verify(request.headers, request.body)
        payload = _decode(request)
        if payload.get("type") == "url_verification":
            challenge = payload.get("challenge")
            if not isinstance(challenge, str) or not challenge:
                raise BadPayload("url_verification without a challenge", 400)
            return [UrlVerification(challenge)]
        events: list[DeskEvent] = []
        try:
            # Re-encoded as JSON: bolt's own form parsing turns a slash command whose text contains the
            # word "payload" into an empty body. Client headers stay out (x-slack-bolt-* steer bolt).
            bolt_request = BoltRequest(
                body=json.dumps(payload), headers={"content-type": "application/json"}, context={_EVENTS: events}
            )
        except (AttributeError, TypeError, KeyError, ValueError) as exc:
            raise BadPayload(f"not a Slack payload bolt can read: {exc!r}", 400) from None
        with contextlib.suppress(BoltUnhandledRequestError):  # app_mention, other buttons: not for the desk
            self.app.dispatch(bolt_request)  # a listener's BadPayload comes back out through _reraise
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
            response = self.client.chat_postMessage(
                channel=message.recipient, text=text, blocks=blocks, thread_ts=options.get("thread_ts"),
                unfurl_links=False,
            )
        except SlackApiError as exc:
            raise _failure(exc) from exc
        except (OSError, HTTPException) as exc:  # URLError, timeouts, resets
            raise RetryLater(f"slack unreachable: {exc}") from exc
        return str(response["ts"])

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
    files = event.get("files")
    context[_EVENTS].append(AgentReply(
        event_id=_field(body, "event_id"), slack_user=str(user), channel=_field(event, "channel"),
        thread_ts=str(thread_ts), ts=_field(event, "ts"), text=plain_text(str(event.get("text") or "")),
        files=tuple(_shared_file(f) for f in files if isinstance(f, dict)) if isinstance(files, list) else (),
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
    container = body.get("container") or {}
    context[_EVENTS].append(AgentAction(
        dedupe_key=f"{body.get('trigger_id') or ''}:{_field(action, 'action_ts')}",
        action=name,
        value=str(action.get("value", "")),
        slack_user=_field(body.get("user") or {}, "id"),
        channel=str((body.get("channel") or {}).get("id") or container.get("channel_id") or ""),
        message_ts=str((body.get("message") or {}).get("ts") or container.get("message_ts") or ""),
    ))


def _on_command(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
    ack()
    context[_EVENTS].append(AgentCommand(
        command=_field(command, "command"), text=str(command.get("text", "")),
        slack_user=_field(command, "user_id"), channel=_field(command, "channel_id"),
        trigger_id=str(command.get("trigger_id", "")),
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
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise BadPayload(f"Slack payload without {key}", 400)
    return value


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
    if not isinstance(data, dict):
        raise BadPayload("Slack payload is not a JSON object", 400)
    return data


def _failure(exc: SlackApiError) -> RetryLater | Undeliverable:
    response = exc.response
    error = str(response.get("error") or "")[:200]  # a non-JSON answer's "error" quotes the whole body
    if response.status_code == 429 or error in RATE_LIMITED:
        header = str(response.headers.get("Retry-After") or response.headers.get("retry-after") or "1")
        return RetryLater("slack ratelimited", after_s=float(header) if header.isdigit() else 1.0)
    if error in PERMANENT_ERRORS:
        return Undeliverable(f"slack {error}", address_dead=False)  # a desk channel, never a customer
    return RetryLater(f"slack {error or 'error'} (HTTP {response.status_code})")


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
