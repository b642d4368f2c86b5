"""SMS and WhatsApp through Twilio: signed webhooks in, Messages API out (against a local fake)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from bot.devtools.fake_providers import FakeProviders
from bot.messages import Button, DeliveryUpdate, InboundMessage, Location, Media, OutboundMessage
from channels.base import BadPayload, Forbidden, FormParams, RetryLater, Undeliverable, WebhookRequest
from channels.twilio import TwilioChannel, sms_segments, split_text

FIXTURES = Path(__file__).parent / "fixtures" / "twilio"
ACCOUNT_SID = "AC3f1b2c4d5e6f708192a3b4c5d6e7f809"
TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC = "https://hub.example.test"
HOTEL_TEMPLATES = {
    "follow_up": {
        "id": ("HX0123456789abcdef0123456789abcdef", ("name", "ticket")),
        "en": ("HXfedcba9876543210fedcba9876543210", ("name", "ticket")),
    }
}


def fixture(name: str) -> tuple[str, list[tuple[str, str]]]:
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    return data["path"], [(key, value) for key, value in data["form"]]


def request(
    path: str,
    pairs: list[tuple[str, str]],
    *,
    signed_url: str | None = None,
    token: str = TOKEN,
    received: str = "http://127.0.0.1:8000",
    headers: dict[str, str] | None = None,
    body: str | None = None,
    signature: str | None = None,
) -> WebhookRequest:
    """A webhook as our server sees it: Twilio signed `signed_url`, the body is decoded like a server does."""
    sig = signature or RequestValidator(token).compute_signature(signed_url or PUBLIC + path, dict(pairs))
    raw = body if body is not None else urlencode(pairs)
    return WebhookRequest(
        method="POST",
        url=received + path,
        headers={"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": sig, **(headers or {})},
        body=raw.encode(),
        form=tuple(parse_qsl(raw, keep_blank_values=True)),
    )


def channel(name: str = "whatsapp", **kwargs: Any) -> TwilioChannel:
    options: dict[str, Any] = {"from_number": "+14155238886", "public_base_url": PUBLIC, **kwargs}
    return TwilioChannel(name, ACCOUNT_SID, TOKEN, **options)


# --- inbound ---------------------------------------------------------------------------------------


def test_inbound_sms_becomes_a_message_from_the_phone_number() -> None:
    [message] = channel("sms").parse(request(*fixture("inbound_sms")))
    assert isinstance(message, InboundMessage)
    assert message.channel == "sms"
    assert message.sender == message.phone == "+6281234567890"
    assert message.provider_message_id == "SM1f0e3a2b4c5d6e7f8091a2b3c4d5e6f7"
    assert message.text == "Halo, pesanan saya belum sampai"
    assert message.display_name is None and message.media == () and message.button_payload is None
    assert message.received_at.tzinfo is not None


def test_inbound_whatsapp_carries_the_profile_name_and_drops_the_prefix() -> None:
    [message] = channel().parse(request(*fixture("inbound_whatsapp")))
    assert isinstance(message, InboundMessage)
    assert (message.channel, message.sender, message.phone) == ("whatsapp", "+6281234567890", "+6281234567890")
    assert message.display_name == "Siti Rahayu"
    assert message.text == "Selamat pagi, saya mau tanya poin loyalty saya"


def only(name: str, adapter: TwilioChannel | None = None) -> InboundMessage:
    [message] = (adapter or channel()).parse(request(*fixture(name)))
    assert isinstance(message, InboundMessage)
    return message


def test_whatsapp_media_without_caption() -> None:
    message = only("inbound_whatsapp_media")
    assert message.text == ""  # no placeholder: the core acknowledges attachments itself
    assert [(m.content_type, m.kind) for m in message.media] == [("image/jpeg", "image"), ("image/png", "image")]
    assert all(isinstance(m, Media) and "/Media/ME" in m.url for m in message.media)


def test_an_mms_without_a_body_is_its_media() -> None:
    message = only("inbound_mms_no_body", channel("sms"))
    assert (message.channel, message.text, message.phone) == ("sms", "", "+6281234567890")
    [media] = message.media
    assert (media.content_type, media.kind) == ("image/jpeg", "image")
    assert media.url.endswith("/Messages/MM7e6d5c4b3a29180f7e6d5c4b3a291807/Media/ME1a2b3c4d5e6f708192a3b4c5d6e7f801")


@pytest.mark.parametrize(
    ("name", "text", "content_type", "kind"),
    [
        ("inbound_whatsapp_voice", "", "audio/ogg", "voice"),
        ("inbound_whatsapp_video", "", "video/mp4", "video"),
        ("inbound_whatsapp_document", "Ini invoice-nya", "application/pdf", "document"),
        # A contact card is a file Twilio hosts: reading it needs a download, so it stays a document.
        ("inbound_whatsapp_vcard", "", "text/vcard", "document"),
        ("inbound_whatsapp_sticker", "", "image/webp", "sticker"),
    ],
)
def test_each_kind_of_whatsapp_media(name: str, text: str, content_type: str, kind: str) -> None:
    message = only(name)
    assert message.text == text
    assert [(m.content_type, m.kind) for m in message.media] == [(content_type, kind)]
    assert message.contact is None and message.location is None


@pytest.mark.parametrize(
    ("content_type", "channel_name", "kind"),
    [("audio/ogg", "sms", "audio"), ("audio/mpeg", "whatsapp", "audio"), ("text/x-vcard", "sms", "document"),
     ("application/octet-stream", "sms", "document"), ("", "sms", "document")],
)
def test_media_kind_follows_the_content_type(content_type: str, channel_name: str, kind: str) -> None:
    path, pairs = fixture("inbound_mms_no_body")
    if channel_name == "whatsapp":
        path, pairs = fixture("inbound_whatsapp_voice")
    pairs = [(k, content_type if k == "MediaContentType0" else v) for k, v in pairs]
    [message] = channel(channel_name).parse(request(path, pairs))
    assert isinstance(message, InboundMessage)
    assert [m.kind for m in message.media] == [kind]


def test_more_media_than_twilio_allows_are_not_read(caplog: pytest.LogCaptureFixture) -> None:
    path, pairs = fixture("inbound_mms_no_body")
    pairs = [(k, "25" if k == "NumMedia" else v) for k, v in pairs]
    pairs += [(f"MediaUrl{i}", f"https://api.twilio.com/media/{i}") for i in range(1, 25)]
    with caplog.at_level("INFO", logger="channels.twilio"):
        [message] = channel("sms").parse(request(path, pairs))
    assert isinstance(message, InboundMessage) and len(message.media) == 10
    assert "NumMedia 25" in caplog.text


def test_a_whatsapp_location_becomes_a_location() -> None:
    message = only("inbound_whatsapp_location")
    assert message.location == Location(-6.224938, 106.809472, name="Senayan City",
                                         address="Jl. Asia Afrika No.19, Jakarta")
    assert (message.text, message.media) == ("", ())
    assert message.has_attachment


@pytest.mark.parametrize("latitude", ["north", "nan", "inf"])
def test_a_location_that_is_not_numbers_is_left_out(latitude: str) -> None:
    path, pairs = fixture("inbound_whatsapp_location")
    pairs = [(k, latitude if k == "Latitude" else v) for k, v in pairs]
    # Nothing else is left in it, so it is logged and answered 200 like any empty message.
    assert channel().parse(request(path, pairs)) == []


@pytest.mark.parametrize("name", ["inbound_whatsapp_forwarded", "inbound_whatsapp_frequently_forwarded"])
def test_a_forwarded_whatsapp_message_is_marked_forwarded(name: str) -> None:
    message = only(name)
    assert message.forwarded_from == ""  # WhatsApp does not say from whom
    assert only("inbound_whatsapp").forwarded_from is None


def test_whatsapp_quick_reply_returns_its_payload_and_the_message_that_carried_it() -> None:
    message = only("inbound_whatsapp_button")
    assert (message.button_payload, message.text) == ("csat:5", "Puas")
    assert message.button_of == "SMe1d2c3b4a5968778695a4b3c2d1e0f9a"  # our outbound sid


def test_a_reply_quoting_our_message_is_not_a_button_press() -> None:
    path, pairs = fixture("inbound_whatsapp_button")
    pairs = [(k, v) for k, v in pairs if k not in ("ButtonPayload", "ButtonText")]
    [message] = channel().parse(request(path, pairs))
    assert isinstance(message, InboundMessage)
    assert (message.button_payload, message.button_of, message.text) == (None, None, "Puas")


def test_a_whatsapp_sender_without_the_prefix_is_accepted_on_the_whatsapp_webhook() -> None:
    message = only("inbound_whatsapp_unprefixed_sender")
    assert (message.channel, message.sender, message.phone) == ("whatsapp", "+6281234567890", "+6281234567890")
    # Nothing in it says which channel: the webhook it came to decides.
    path, pairs = fixture("inbound_whatsapp_unprefixed_sender")
    bare = [(k, v) for k, v in pairs if k not in ("To", "WaId", "ProfileName")]
    assert len(channel().parse(request(path, bare))) == 1
    # The To (our WhatsApp number) still says WhatsApp on the SMS webhook.
    with pytest.raises(BadPayload, match="whatsapp message arrived on the sms webhook"):
        channel("sms").parse(request(*fixture("inbound_whatsapp_unprefixed_sender")))


def test_a_message_without_body_media_or_location_is_ignored_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    path, pairs = fixture("inbound_whatsapp")
    pairs = [(k, "" if k == "Body" else "unsupported" if k == "MessageType" else v) for k, v in pairs]
    with caplog.at_level("INFO", logger="channels.twilio"):
        assert channel().parse(request(path, pairs)) == []
    assert "ignored" in caplog.text and "'unsupported'" in caplog.text


@pytest.mark.parametrize(
    ("name", "sid", "status", "error", "channel_name"),
    [
        ("status_sms_delivered", "SM0b1c2d3e4f5a69788796a5b4c3d2e1f0", "delivered", None, "sms"),
        ("status_whatsapp_read", "SMe1d2c3b4a5968778695a4b3c2d1e0f9a", "read", None, "whatsapp"),
        (
            "status_whatsapp_failed_63016",
            "SMe1d2c3b4a5968778695a4b3c2d1e0f9a",
            "failed",
            "63016: outside the WhatsApp 24-hour window: use an approved template",
            "whatsapp",
        ),
        (
            "status_sms_undelivered_30003",
            "SM0b1c2d3e4f5a69788796a5b4c3d2e1f0",
            "failed",
            "30003: unreachable destination handset",
            "sms",
        ),
    ],
)
def test_status_callbacks_become_delivery_updates(
    name: str, sid: str, status: str, error: str | None, channel_name: str
) -> None:
    # Both adapters share one status URL, so either may parse it: the addresses name the channel.
    dead = error is not None and error.startswith("30003")
    for adapter in (channel("sms"), channel("whatsapp")):
        assert adapter.parse(request(*fixture(name))) == [
            DeliveryUpdate(
                channel=channel_name, provider_message_id=sid, status=status, error=error,  # type: ignore[arg-type]
                address_dead=dead,
            )
        ]


@pytest.mark.parametrize(
    ("name", "error", "address_dead", "unsubscribed"),
    [
        ("status_sms_failed_21610", "21610: recipient unsubscribed (replied STOP)", True, True),
        ("status_sms_undelivered_30003", "30003: unreachable destination handset", True, False),
        ("status_sms_undelivered_30005", "30005: unknown destination handset", True, False),
        ("status_sms_undelivered_30006", "30006: landline or unreachable carrier", True, False),
        # The number is fine: the window, a carrier's filter or an unknown error stopped this one message.
        ("status_whatsapp_failed_63016", "63016: outside the WhatsApp 24-hour window: use an approved template",
         False, False),
        ("status_sms_undelivered_30007", "30007: filtered by the carrier", False, False),
        ("status_whatsapp_undelivered_30008", "30008: Unknown error", False, False),
    ],
)
def test_a_failed_status_carries_the_verdict_on_the_address(
    name: str, error: str, address_dead: bool, unsubscribed: bool
) -> None:
    [update] = channel("sms").parse(request(*fixture(name)))
    assert isinstance(update, DeliveryUpdate)
    assert (update.status, update.error) == ("failed", error)
    assert (update.address_dead, update.unsubscribed) == (address_dead, unsubscribed)


def test_an_error_code_on_a_status_that_is_not_a_failure_condemns_nothing() -> None:
    path, pairs = fixture("status_sms_undelivered_30003")
    pairs = [(k, "sent" if k in ("MessageStatus", "SmsStatus") else v) for k, v in pairs]
    [update] = channel("sms").parse(request(path, pairs))
    assert isinstance(update, DeliveryUpdate)
    assert (update.status, update.address_dead) == ("sent", False)


@pytest.mark.parametrize(
    ("code", "address_dead", "unsubscribed"),
    [
        (21610, True, True),
        (21211, True, False),
        (21614, True, False),
        (30003, True, False),
        (30005, True, False),
        (30006, True, False),
        (63016, False, False),
        (30007, False, False),
        (21408, False, False),
        (21617, False, False),  # a code the table does not know proves nothing about the number
    ],
)
def test_send_time_refusals_use_the_same_verdicts(code: int, address_dead: bool, unsubscribed: bool) -> None:
    refusal = TwilioRestException(400, "/Messages.json", "Unable to create record: refused", code=code, method="POST")
    mapped = TwilioChannel._mapped(refusal)
    assert isinstance(mapped, Undeliverable)
    assert (mapped.address_dead, mapped.unsubscribed) == (address_dead, unsubscribed)
    assert mapped.reason == (f"Twilio 400 ({code}): refused" if code == 21617 else f"{code}: refused")


def test_a_whatsapp_message_on_the_sms_webhook_is_refused_and_vice_versa() -> None:
    with pytest.raises(BadPayload, match="whatsapp message arrived on the sms webhook"):
        channel("sms").parse(request(*fixture("inbound_whatsapp")))
    # An unprefixed To is one of our SMS numbers: that payload clearly is SMS.
    with pytest.raises(BadPayload, match="sms message arrived on the whatsapp webhook"):
        channel("whatsapp").parse(request(*fixture("inbound_sms")))


def test_the_legacy_sid_names_stand_in_for_message_sid() -> None:
    path, pairs = fixture("inbound_sms")
    legacy = [(k, v) for k, v in pairs if k not in ("MessageSid", "SmsMessageSid", "NumMedia")]
    [message] = channel("sms").parse(request(path, legacy))
    assert isinstance(message, InboundMessage)
    assert message.provider_message_id == "SM1f0e3a2b4c5d6e7f8091a2b3c4d5e6f7"


def test_missing_message_sid_is_a_bad_payload() -> None:
    path, pairs = fixture("inbound_sms")
    pairs = [(k, v) for k, v in pairs if k not in ("MessageSid", "SmsMessageSid", "SmsSid")]
    with pytest.raises(BadPayload):
        channel("sms").parse(request(path, pairs))


def test_a_replay_that_folds_a_parameter_into_the_sid_is_refused() -> None:
    """Issue 15, item 3: the signature runs keys and values together, so moving "NumMedia=0" into the sid's value
    keeps it valid. A sid that is not two letters and 32 hex digits is refused, so such a replay stores nothing."""
    path, pairs = fixture("inbound_sms")
    sid = dict(pairs)["MessageSid"]
    folded = [(k, sid + "NumMedia0") if k == "MessageSid" else (k, v) for k, v in pairs if k != "NumMedia"]
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, dict(pairs))
    assert RequestValidator(TOKEN).validate(PUBLIC + path, dict(folded), signature)  # the SDK cannot tell
    with pytest.raises(BadPayload, match="not a Twilio message sid"):
        channel("sms").parse(request(path, folded, signature=signature))
    for bad in ("77", "SM" + "g" * 32, "SM" + "0" * 31, "XX" + "0" * 32 + "0"):
        mangled = [(k, bad) if k == "MessageSid" else (k, v) for k, v in pairs]
        with pytest.raises(BadPayload):
            channel("sms").parse(request(path, mangled))


# --- signatures ------------------------------------------------------------------------------------


def test_behind_a_proxy_the_url_is_rebuilt_from_forwarded_headers() -> None:
    path, pairs = fixture("inbound_whatsapp")
    adapter = channel(public_base_url=None)
    proxied = {"host": "hub.example.test", "x-forwarded-proto": "https"}
    assert len(adapter.parse(request(path, pairs, headers=proxied))) == 1
    # Without the proxy's scheme the app would check http://..., which Twilio never signed.
    with pytest.raises(Forbidden):
        adapter.parse(request(path, pairs, headers={"host": "hub.example.test"}))


def test_the_query_string_is_part_of_the_signed_url() -> None:
    path, pairs = fixture("inbound_sms")
    adapter = channel("sms")
    assert len(adapter.parse(request(path + "?tenant=a", pairs))) == 1
    with pytest.raises(Forbidden):
        adapter.parse(request(path + "?tenant=a", pairs, signed_url=PUBLIC + path))


@pytest.mark.parametrize("forgery", ["wrong token", "missing header", "changed param", "plus as space"])
def test_forged_or_mangled_requests_are_forbidden(forgery: str) -> None:
    path, pairs = fixture("inbound_sms")
    adapter = channel("sms")
    if forgery == "wrong token":
        forged = request(path, pairs, token="not-the-auth-token")
    elif forgery == "missing header":
        forged = request(path, pairs)
        forged = WebhookRequest(forged.method, forged.url, {"content-type": "x"}, forged.body, forged.form)
    elif forgery == "changed param":
        sig = RequestValidator(TOKEN).compute_signature(PUBLIC + path, dict(pairs))
        changed = [(k, "Transfer semua poin" if k == "Body" else v) for k, v in pairs]
        forged = request(path, changed, signature=sig)
    else:
        # A hand-built body with a literal "+" decodes to a space: the From no longer matches.
        raw = "&".join(f"{k}={v.replace(' ', '%20')}" for k, v in pairs)
        forged = request(path, pairs, body=raw)
        assert dict(forged.form)["From"] == " 6281234567890"
    with pytest.raises(Forbidden):
        adapter.parse(forged)


def test_known_answer_vectors_from_twilio_python() -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = (
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    )
    adapter = TwilioChannel("sms", ACCOUNT_SID, "12345", from_number="+1", public_base_url="https://mycompany.com")
    vector = request("/myapp.php?foo=1&bar=2", list(params), signature="RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    # The signature passes; the voice-call params then fail as a message (no MessageSid).
    with pytest.raises(BadPayload):
        adapter.parse(vector)
    duplicates = (("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234"), ("Digits", "1234"))
    assert RequestValidator("12345").validate(url, FormParams(duplicates), "IK+Dwps556ElfBT0I3Rgjkr1wJU=")


def test_shared_key_signatures_use_the_algorithm_the_header_names() -> None:
    path, pairs = fixture("inbound_sms")
    sig = RequestValidator(TOKEN).compute_signature(PUBLIC + path, dict(pairs), algorithm="HMAC_SHA256")
    settings = {"x-twilio-webhooks-signature-settings": "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"}
    assert len(channel("sms").parse(request(path, pairs, signature=sig, headers=settings))) == 1
    with pytest.raises(Forbidden):
        channel("sms").parse(request(path, pairs, signature=sig))


# --- outbound: the shared fake Twilio REST API on 127.0.0.1 ----------------------------------------


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProviders]:
    # The SDK rewrites the host for a region/edge, which would mangle 127.0.0.1.
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # requests honours HTTP(S)_PROXY even for loopback
    with FakeProviders(twilio_auth_token=TOKEN) as providers:
        yield providers


def sent(fake: FakeProviders) -> list[dict[str, Any]]:
    return [request.params for request in fake.sent("twilio")]


def out(channel_name: str = "whatsapp", text: str = "Pesanan Anda sedang dikirim.", **kwargs: Any) -> OutboundMessage:
    return OutboundMessage(channel=channel_name, recipient="+6281234567890", text=text, **kwargs)


def test_sms_reply_goes_from_our_number_with_a_status_callback(fake: FakeProviders) -> None:
    sid = channel("sms", api_base_url=fake.twilio_base_url).send(out("sms"))
    assert re.fullmatch(r"SM[0-9a-f]{32}", sid)
    assert sent(fake) == [{
        "To": "+6281234567890",
        "From": "+14155238886",
        "Body": "Pesanan Anda sedang dikirim.",
        "StatusCallback": "https://hub.example.test/webhooks/twilio/status",
    }]


def test_whatsapp_reply_with_buttons_lists_numbered_options(fake: FakeProviders) -> None:
    buttons = (Button("Ya, sudah diterima", "received:yes"), Button("Belum", "received:no"))
    message = out(text="Apakah paket sudah diterima?", buttons=buttons, window_open=True)
    channel(api_base_url=fake.twilio_base_url).send(message)
    [params] = sent(fake)
    assert (params["To"], params["From"]) == ("whatsapp:+6281234567890", "whatsapp:+14155238886")
    assert params["Body"] == "Apakah paket sudah diterima?\n\n1. Ya, sudah diterima\n2. Belum"


def test_a_messaging_service_sends_instead_of_a_number(fake: FakeProviders) -> None:
    service = "MG0123456789abcdef0123456789abcdef"
    adapter = channel("sms", from_number=None, messaging_service_sid=service, api_base_url=fake.twilio_base_url)
    adapter.send(out("sms"))
    [params] = sent(fake)
    assert params["MessagingServiceSid"] == service and "From" not in params


def test_a_3500_character_sms_arrives_as_three_messages(fake: FakeProviders) -> None:
    words = " ".join(f"kata{i:03d}" for i in range(500))[:3500]
    sid = channel("sms", api_base_url=fake.twilio_base_url).send(out("sms", text=words))
    bodies = [params["Body"] for params in sent(fake)]
    assert len(bodies) == 3 and all(len(body) <= 1600 for body in bodies)
    assert " ".join(bodies) == words  # cut between words, nothing lost
    assert re.fullmatch(r"SM[0-9a-f]{32}", sid)


def test_split_text_prefers_paragraphs() -> None:
    text = "a" * 1000 + "\n\n" + "b" * 1000
    assert split_text(text) == ["a" * 1000, "b" * 1000]
    assert split_text("x" * 3300) == ["x" * 1600, "x" * 1600, "x" * 100]


def test_closed_window_sends_the_approved_template(fake: FakeProviders) -> None:
    adapter = channel(api_base_url=fake.twilio_base_url, templates=HOTEL_TEMPLATES)
    message = out(text="Halo Siti, tiket T-12 sudah selesai.", purpose="follow_up", language="id", window_open=False,
                  template_variables={"ticket": "T-12", "name": "Siti"})
    adapter.send(message)
    [params] = sent(fake)
    assert params["ContentSid"] == "HX0123456789abcdef0123456789abcdef"
    assert json.loads(params["ContentVariables"]) == {"1": "Siti", "2": "T-12"}
    assert "Body" not in params


def test_closed_window_without_a_template_is_undeliverable(fake: FakeProviders) -> None:
    adapter = channel(api_base_url=fake.twilio_base_url, templates=HOTEL_TEMPLATES)
    with pytest.raises(Undeliverable) as caught:
        adapter.send(out(purpose="survey", language="id", window_open=False))
    assert caught.value.reason == (
        "WhatsApp 24-hour window closed and no approved template for purpose 'survey' in language 'id'"
    )
    with pytest.raises(Undeliverable, match="name"):
        adapter.send(out(purpose="follow_up", language="id", window_open=False, template_variables={"ticket": "T-1"}))
    assert fake.requests("twilio") == []


def test_rate_limit_and_server_errors_are_retried_later(fake: FakeProviders) -> None:
    adapter = channel("sms", api_base_url=fake.twilio_base_url)
    fake.fail_next("twilio", 429)
    with pytest.raises(RetryLater) as caught:
        adapter.send(out("sms"))
    assert (caught.value.reason, caught.value.after_s) == ("429 Too Many Requests (20429)", None)
    fake.fail_next("twilio", 500)
    with pytest.raises(RetryLater):
        adapter.send(out("sms"))
    assert sent(fake) == []


def test_an_invalid_number_is_undeliverable(fake: FakeProviders) -> None:
    fake.fail_next("twilio", 400, code=21211, description="The 'To' number +62812 is not a valid phone number.")
    with pytest.raises(Undeliverable) as caught:
        channel("sms", api_base_url=fake.twilio_base_url).send(out("sms"))
    assert caught.value.reason == "21211: The 'To' number +62812 is not a valid phone number."
    assert (caught.value.address_dead, caught.value.unsubscribed) == (True, False)


def test_a_send_outside_the_whatsapp_window_leaves_the_address_alone(fake: FakeProviders) -> None:
    fake.fail_next("twilio", 400, code=63016, description="Failed to send freeform message because you are outside "
                   "the allowed window. If you are using WhatsApp, please use a Message Template.")
    with pytest.raises(Undeliverable) as caught:
        channel(api_base_url=fake.twilio_base_url).send(out(window_open=True))
    assert caught.value.reason.startswith("63016: Failed to send freeform message")
    assert (caught.value.address_dead, caught.value.unsubscribed) == (False, False)


def test_a_later_part_failing_keeps_the_first_sid(fake: FakeProviders) -> None:
    # Failing the whole send would make the outbox resend the part the customer already has.
    fake.on_record = lambda request, status: fake.fail_next("twilio", 500) if status == 201 else None
    sid = channel("sms", api_base_url=fake.twilio_base_url).send(out("sms", text="a" * 1600 + " " + "b" * 1600))
    assert [params["Body"] for params in sent(fake)] == ["a" * 1600]
    assert [request.params["Body"] for request in fake.requests("twilio")] == ["a" * 1600, "b" * 1600]
    assert re.fullmatch(r"SM[0-9a-f]{32}", sid)


def test_an_unreachable_api_is_retried_later(fake: FakeProviders) -> None:
    base_url = fake.twilio_base_url
    fake.stop()
    with pytest.raises(RetryLater, match="unreachable"):
        channel("sms", api_base_url=base_url).send(out("sms"))


def test_the_status_callback_for_a_sent_message_verifies_and_parses(fake: FakeProviders) -> None:
    # Our public URL is a local catcher, so the fake's signed callback reaches it as Twilio's would.
    caught: list[tuple[str, dict[str, str], bytes]] = []

    class Catcher(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            caught.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    catcher = ThreadingHTTPServer(("127.0.0.1", 0), Catcher)
    threading.Thread(target=catcher.serve_forever, daemon=True).start()
    try:
        public = f"http://127.0.0.1:{catcher.server_address[1]}"
        adapter = channel(api_base_url=fake.twilio_base_url, public_base_url=public)
        sid = adapter.send(out(window_open=True))
        assert fake.post_twilio_status(sid, "failed", error_code=63016) == 204
    finally:
        catcher.shutdown()
        catcher.server_close()
    [(path, headers, body)] = caught
    # The app itself listens elsewhere (behind a proxy); public_base_url is what Twilio signed.
    received = WebhookRequest("POST", "http://10.0.0.5:8000" + path, headers, body,
                              tuple(parse_qsl(body.decode(), keep_blank_values=True)))
    [update] = adapter.parse(received)
    assert update == DeliveryUpdate(
        channel="whatsapp", provider_message_id=sid, status="failed",
        error="63016: outside the WhatsApp 24-hour window: use an approved template",
    )


# --- pacing ----------------------------------------------------------------------------------------


def test_sms_segments_for_gsm_and_indonesian_text_with_emoji() -> None:
    assert sms_segments("Halo, pesanan Anda sudah dikirim.") == 1
    assert sms_segments("a" * 160) == 1
    assert sms_segments("a" * 161) == 2
    assert sms_segments("a" * 306) == 2
    assert sms_segments("a" * 307) == 3
    assert sms_segments("€" * 80) == 1  # extension characters take two septets
    assert sms_segments("€" * 81) == 2
    assert sms_segments("Terima kasih, Bu Siti 🙏") == 1  # one emoji switches the whole text to UCS-2
    assert sms_segments("Terima kasih sudah berbelanja di toko kami. Poin Anda bertambah 🎉") == 1
    assert sms_segments("Terima kasih sudah berbelanja di toko kami. Poin loyalty Anda bertambah 50 🎉") == 2


def test_rate_keys_charge_sms_by_segment_and_whatsapp_by_message() -> None:
    sms = channel("sms")
    [key] = sms.rate_keys(out("sms", text="a" * 3500))
    # Parts of 1600, 1600 and 300 characters: 11 + 11 + 2 segments.
    assert (key.key, key.per_second, key.cost) == ("sms:sender:+14155238886", 1.0, 24.0)
    [key] = channel("whatsapp", messages_per_second=80).rate_keys(out(text="a" * 3500, window_open=True))
    assert (key.key, key.per_second, key.cost) == ("whatsapp:sender:+14155238886", 80, 3.0)


def test_acknowledge_does_nothing() -> None:
    [message] = channel().parse(request(*fixture("inbound_whatsapp")))
    assert isinstance(message, InboundMessage)
    channel().acknowledge(message)  # nothing to acknowledge: the webhook's 200 is enough
    assert channel().session_window is not None and channel("sms").session_window is None
