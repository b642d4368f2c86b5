"""The Telegram adapter: webhook updates in (from fixtures), Bot API calls out (to a fake Bot API)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.cli import main
from bot.devtools.fake_providers import FakeProviders, Recorded
from bot.http.webhooks import mount
from bot.messages import Button, InboundMessage, Location, Media, OutboundMessage, ReachabilityUpdate, SharedContact
from channels.base import BadPayload, Forbidden, RateKey, RetryLater, Undeliverable, WebhookRequest
from channels.telegram import TelegramChannel, split_text

FIXTURES = Path(__file__).parent / "fixtures" / "telegram"
TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
SECRET = "sapa-webhook_secret-0123456789"
CUSTOMER = 111222333


def request(body: bytes, secret: str | None = SECRET) -> WebhookRequest:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-telegram-bot-api-secret-token"] = secret
    return WebhookRequest(method="POST", url="https://sapa.example/webhooks/telegram", headers=headers, body=body)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@functools.cache
def receiver(allow_groups: bool = False) -> TelegramChannel:
    """An adapter that only parses: it never starts its loop, so one per setting serves every test."""
    return TelegramChannel(TOKEN, SECRET, allow_groups=allow_groups)


def parse(name: str, allow_groups: bool = False) -> list[Any]:
    return receiver(allow_groups).parse(request(fixture(f"{name}.json")))


def only(name: str, allow_groups: bool = False) -> InboundMessage:
    return one_message(fixture(f"{name}.json"), allow_groups)


def one_message(body: bytes, allow_groups: bool = False) -> InboundMessage:
    [message] = receiver(allow_groups).parse(request(body))
    assert isinstance(message, InboundMessage)
    return message


# -- parse ---------------------------------------------------------------------------------------


def test_a_private_text_becomes_a_message_from_the_chat_in_indonesian() -> None:
    message = only("private_text")
    assert message == InboundMessage(
        channel="telegram",
        sender=str(CUSTOMER),
        provider_message_id=f"{CUSTOMER}:11",
        text="Halo, pesanan saya belum sampai",
        received_at=datetime(2024, 6, 1, 10, 0, tzinfo=UTC),
        display_name="Siti Rahma",
        language_hint="id",
    )
    assert message.received_at.utcoffset() is not None


def test_start_with_a_deep_link_asks_the_core_to_greet() -> None:
    message = only("start_with_payload")
    assert message.text == "/start"
    assert message.deep_link == "promo_ramadan"
    assert message.button_payload == "intent:greet"
    assert message.language_hint == "en"  # from "en-US"


@pytest.mark.parametrize(
    ("text", "deep_link"),
    [("/start", None), ("/start@sapa_cs_bot ref-42", "ref-42"), ("/start   ", None)],
)
def test_start_variants(text: str, deep_link: str | None) -> None:
    body = json.loads(fixture("start_with_payload.json"))
    body["message"]["text"] = text
    message = one_message(json.dumps(body).encode())
    assert (message.text, message.deep_link, message.button_payload) == ("/start", deep_link, "intent:greet")


def test_a_text_that_merely_starts_with_start_is_not_a_command() -> None:
    body = json.loads(fixture("private_text.json"))
    body["message"]["text"] = "/startup question"
    message = one_message(json.dumps(body).encode())
    assert (message.text, message.button_payload) == ("/startup question", None)


def test_an_edit_points_at_the_original_and_has_its_own_id() -> None:
    message = only("edited_message")
    assert message.text == "Halo, pesanan #4411 saya belum sampai"
    assert message.edit_of == f"{CUSTOMER}:11"
    assert message.provider_message_id == f"{CUSTOMER}:11:edit:1717236125"


def test_a_button_press_carries_its_payload_and_message_and_must_be_acknowledged() -> None:
    message = only("callback_query")
    assert message.sender == str(CUSTOMER)
    assert message.button_payload == "csat:5"
    assert message.text == "Puas sekali"  # the pressed button's title, from the message's keyboard
    assert message.button_of == f"{CUSTOMER}:20"  # the form send() returned for the message with the keyboard
    assert message.provider_message_id == "cb:4382bfdwdsb323b2d9"
    assert message.ack_token == "4382bfdwdsb323b2d9"
    assert message.display_name == "Siti Rahma"


def test_a_button_under_an_inaccessible_message_still_names_that_message() -> None:
    message = only("callback_query_inaccessible")  # Bot API 7.0: date 0, only chat and id
    assert (message.sender, message.button_of) == (str(CUSTOMER), f"{CUSTOMER}:5")
    assert message.text == message.button_payload == "consent:no"  # no keyboard to read a title from


def test_a_button_under_an_inline_mode_message_answers_the_user() -> None:
    message = only("callback_query_inline")
    assert (message.sender, message.button_of, message.button_payload) == (str(CUSTOMER), None, "csat:4")


def test_sharing_ones_own_contact_shares_the_phone() -> None:
    message = only("own_contact")
    assert message.shared_phone == "+6281234567890"
    assert message.contact == SharedContact(name="Siti Rahma", phone="6281234567890", own=True)
    assert message.text == "" and message.has_attachment


def test_forwarding_someone_elses_contact_shares_no_phone() -> None:
    message = only("other_contact")
    assert message.shared_phone is None
    assert message.contact == SharedContact(name="Budi", phone="+6289876543210", own=False)
    assert message.text == ""


def test_a_photo_keeps_the_largest_size_and_the_caption() -> None:
    message = only("photo_with_caption")
    assert message.text == "Paketnya rusak"
    assert message.media == (Media(url="telegram:file/AgACAgQAAxkBAAIBlarge", content_type="image/jpeg", kind="image"),)


def test_a_photo_without_file_unique_id_is_read(caplog: pytest.LogCaptureFixture) -> None:
    # Bot API < 4.5 shape: PTB alone refuses it, and a 400 makes Telegram redeliver it forever.
    message = only("photo_without_file_unique_id")
    assert message.media == (Media("telegram:file/AgACAgQAAxkBAAIColdlarge", "image/jpeg", "image"),)
    assert message.text == ""
    assert "could not build" not in caplog.text  # filled in, not dropped


@pytest.mark.parametrize(
    ("name", "text", "media"),
    [
        ("document", "", Media("telegram:file/BQACAgQAAxkBAAIBinvoice", "application/pdf", "document", "invoice.pdf")),
        ("voice", "", Media("telegram:file/AwACAgQAAxkBAAIBvoice", "audio/ogg", "voice")),
        ("audio", "", Media("telegram:file/CQACAgQAAxkBAAIBaudio", "audio/mpeg", "audio", "rekaman_telepon.mp3")),
        ("video", "Ini videonya waktu dibuka",
         Media("telegram:file/BAACAgQAAxkBAAIBvideo", "video/mp4", "video", "unboxing.mp4")),
        ("video_note", "", Media("telegram:file/DQACAgQAAxkBAAIBvideonote", "video/mp4", "video")),
        # Telegram sends an animation also as a document: it is read as what it is.
        ("animation", "", Media("telegram:file/CgACAgQAAxkBAAIBgif", "video/mp4", "video", "rusak.gif.mp4")),
        ("sticker", "", Media("telegram:file/CAACAgIAAxkBAAIBthumbsup", "image/webp", "sticker")),
        # Bot API 4.x: no file_unique_id, is_video or type.
        ("sticker_old_api", "", Media("telegram:file/CAADAgADoldsticker", "application/x-tgsticker", "sticker")),
    ],
)
def test_each_kind_of_file_becomes_media_with_the_caption_as_text(name: str, text: str, media: Media) -> None:
    message = only(name)
    assert (message.text, message.media) == (text, (media,))
    assert message.location is None and message.contact is None and message.forwarded_from is None


@pytest.mark.parametrize(
    ("flags", "content_type"),
    [({"is_animated": True}, "application/x-tgsticker"), ({"is_video": True}, "video/webm"), ({}, "image/webp")],
)
def test_a_stickers_content_type_follows_its_format(flags: dict[str, bool], content_type: str) -> None:
    body = json.loads(fixture("sticker.json"))
    body["message"]["sticker"].update({"is_animated": False, "is_video": False, **flags})
    [media] = one_message(json.dumps(body).encode()).media
    assert (media.kind, media.content_type) == ("sticker", content_type)


def test_a_location_and_a_venue_become_locations() -> None:
    message = only("location")
    assert message.location == Location(latitude=-6.200123, longitude=106.816666)
    assert message.text == "" and message.media == ()
    venue = only("venue")
    assert venue.location == Location(-6.224938, 106.809472, name="Senayan City",
                                      address="Jl. Asia Afrika No.19, Jakarta")


@pytest.mark.parametrize(
    ("name", "origin", "text"),
    [
        ("forward_origin_user", "Budi Santoso", "Mas, STOP aja langganannya kalau nggak mau"),
        ("forward_origin_hidden_user", "Ibu Ani", "Tolong hapus data saya"),
        ("forward_origin_channel", "Info Promo Toko", "Promo ini masih berlaku?"),
        # Bot API before 7.0: PTB no longer reads these fields, so they come from the JSON.
        ("forward_old_api_user", "Budi Santoso", "Berhenti"),
        ("forward_old_api_sender_name", "Ibu Ani", "hapus data saya"),
        ("forward_old_api_chat", "Info Promo Toko", "Diskon 50% hari ini saja"),
    ],
)
def test_a_forwarded_message_names_its_origin(name: str, origin: str, text: str) -> None:
    message = only(name)
    assert (message.forwarded_from, message.text) == (origin, text)


def test_a_forward_that_names_no_origin_is_still_forwarded() -> None:
    body = json.loads(fixture("forward_old_api_user.json"))
    del body["message"]["forward_from"]  # forward_date alone
    assert one_message(json.dumps(body).encode()).forwarded_from == ""
    body = json.loads(fixture("forward_origin_user.json"))
    body["message"]["forward_origin"] = {"type": "a_future_type", "date": 1717150000}
    assert one_message(json.dumps(body).encode()).forwarded_from == ""
    assert only("private_text").forwarded_from is None


def test_a_forwarded_start_is_not_a_command() -> None:
    body = json.loads(fixture("forward_origin_user.json"))
    body["message"]["text"] = "/start promo_ramadan"
    message = one_message(json.dumps(body).encode())
    assert (message.text, message.button_payload, message.deep_link) == ("/start promo_ramadan", None, None)


def test_fields_of_newer_bot_apis_are_ignored() -> None:
    assert only("private_text_unknown_fields").text == "Halo, masih buka?"


def test_fields_the_bot_api_examples_leave_out_are_filled_in() -> None:
    # The Bot API's own webhook examples have users without is_bot and callbacks without chat_instance.
    body = json.loads(fixture("callback_query_inline.json"))
    del body["callback_query"]["from"]["is_bot"], body["callback_query"]["chat_instance"]
    message = one_message(json.dumps(body).encode())
    assert (message.sender, message.display_name, message.button_payload) == (str(CUSTOMER), "Siti Rahma", "csat:4")
    body = json.loads(fixture("private_text.json"))
    del body["message"]["from"]["is_bot"]
    assert one_message(json.dumps(body).encode()).display_name == "Siti Rahma"


def test_a_sub_object_ptb_cannot_build_is_left_out_not_refused(caplog: pytest.LogCaptureFixture) -> None:
    body = json.loads(fixture("photo_with_caption.json"))
    body["message"]["from"] = {"id": CUSTOMER, "is_bot": False}  # PTB requires first_name
    body["message"]["photo"][1].pop("width")  # likewise
    with caplog.at_level("WARNING", logger="channels.telegram"):
        message = one_message(json.dumps(body).encode())
    assert message.text == "Paketnya rusak"
    assert message.media[0].url == "telegram:file/AgACAgQAAxkBAAIBmedium"  # the largest of those with sizes
    assert message.display_name is None  # the sender could not be read
    assert "read without from, photo" in caplog.text


def test_group_messages_are_ignored_unless_groups_are_allowed() -> None:
    assert parse("supergroup_message") == []
    message = only("supergroup_message", allow_groups=True)
    assert message.sender == "-1001234567890"  # replies go to the group, not to the user privately
    assert message.provider_message_id == "-1001234567890:17"


def test_a_user_blocking_and_unblocking_the_bot_changes_reachability() -> None:
    assert parse("my_chat_member") == [ReachabilityUpdate(
        channel="telegram", address=str(CUSTOMER), reachable=False, reason="blocked the bot",
        provider_event_id="mcm:900000010",
    )]
    assert parse("my_chat_member_unblocked") == [ReachabilityUpdate(
        channel="telegram", address=str(CUSTOMER), reachable=True, reason="unblocked the bot",
        provider_event_id="mcm:900000030",
    )]


def test_other_member_changes_are_ignored() -> None:
    body = json.loads(fixture("my_chat_member_unblocked.json"))
    body["my_chat_member"]["old_chat_member"] = {"user": body["my_chat_member"]["new_chat_member"]["user"],
                                                 "status": "member"}
    assert receiver().parse(request(json.dumps(body).encode())) == []
    body["my_chat_member"]["chat"] = {"id": -1001234567890, "title": "Komunitas Pelanggan", "type": "supergroup"}
    body["my_chat_member"]["new_chat_member"]["status"] = "kicked"
    assert receiver(allow_groups=True).parse(request(json.dumps(body).encode())) == []


IGNORED = [
    "channel_post", "edited_channel_post", "message_reaction", "poll", "chat_join_request",  # kinds we never read
    "pinned_message",  # a service message: nothing the customer said
    "edited_live_location",  # a live location moving: an edit without words
    "callback_query_game",  # a button without data
]


@pytest.mark.parametrize("name", IGNORED)
def test_updates_without_customer_content_are_ignored_with_a_log_line(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    kind = next(key for key in json.loads(fixture(f"{name}.json")) if key != "update_id")
    with caplog.at_level("INFO", logger="channels.telegram"):
        assert parse(name) == []
    assert f"telegram update {kind} ignored" in caplog.text


@pytest.mark.parametrize(("name", "kind"), [("dice", "dice"), ("poll_message", "poll")])
def test_what_a_customer_sends_that_sapa_cannot_read_is_passed_on_to_be_answered(name: str, kind: str) -> None:
    [message] = parse(name)
    assert isinstance(message, InboundMessage)
    assert (message.unsupported, message.text, message.has_attachment) == (kind, "", True)


def test_an_update_of_a_kind_no_bot_api_has_yet_is_ignored() -> None:
    assert receiver().parse(request(b'{"update_id": 5, "guest_message": {"id": 1}}')) == []
    assert receiver().parse(request(b'{"update_id": 5}')) == []


def test_the_webhook_answers_200_to_ignored_updates_and_routes_reachability() -> None:
    calls: list[tuple[str, Any]] = []
    pipeline = SimpleNamespace(
        # The route reads whether the message was a repeat (bot/http/webhooks.py counts each message once).
        handle=lambda item: calls.append(("handle", item)) or SimpleNamespace(duplicate=False),
        record_delivery=lambda item: calls.append(("delivery", item)),
        record_reachability=lambda item: calls.append(("reachability", item)),
    )
    app = FastAPI()
    mount(app, SimpleNamespace(channels={"telegram": receiver()}, pipeline=pipeline))
    headers = {"content-type": "application/json", "x-telegram-bot-api-secret-token": SECRET}
    with TestClient(app) as client:
        def post(name: str) -> int:
            return client.post("/webhooks/telegram", content=fixture(name), headers=headers).status_code

        for name in [*IGNORED, "photo_without_file_unique_id", "sticker_old_api", "my_chat_member"]:
            assert post(f"{name}.json") == 200
        assert post("malformed.txt") == 400
    assert [kind for kind, _ in calls] == ["handle", "handle", "reachability"]


def test_malformed_json_is_a_bad_payload() -> None:
    with pytest.raises(BadPayload) as error:
        receiver().parse(request(fixture("malformed.txt")))
    assert error.value.status == 400


@pytest.mark.parametrize(
    "body",
    [
        fixture("not_an_update.json"),
        b"[1, 2]",
        b'{"update_id": "5", "message": {"message_id": 1, "date": 1, "chat": {"id": 1, "type": "private"}}}',
        b'{"update_id": 5, "message": {"message_id": 1, "date": 1, "text": "no chat"}}',
        b'{"update_id": 5, "message": {"message_id": 1, "date": "yesterday", "chat": {"id": 1, "type": "private"}}}',
        b'{"update_id": 5, "message": {"message_id": 1, "date": 1, "chat": {"id": 1}}}',
        b'{"update_id": 5, "message": "halo"}',
    ],
)
def test_json_that_is_not_an_update_is_a_bad_payload(body: bytes) -> None:
    with pytest.raises(BadPayload) as error:
        receiver().parse(request(body))
    assert error.value.status == 400


@pytest.mark.parametrize("secret", [None, "", "forged-secret", SECRET + "x"])
def test_a_missing_or_forged_secret_is_forbidden(secret: str | None) -> None:
    with pytest.raises(Forbidden):
        receiver().parse(request(fixture("private_text.json"), secret=secret))


def test_the_secret_is_checked_before_the_body_is_read() -> None:
    with pytest.raises(Forbidden):
        receiver().parse(request(fixture("malformed.txt"), secret="forged"))


# -- splitting and rate keys ---------------------------------------------------------------------


def test_long_text_splits_at_paragraphs_then_words() -> None:
    paragraph = ("kata " * 500).strip()  # 2499 characters
    parts = split_text(f"{paragraph}\n\n{paragraph}\n\n{paragraph}")
    assert parts == [paragraph] * 3
    words = split_text(("word " * 1800).strip())
    assert len(words) == 3 and all(len(part) <= 4096 for part in words)
    assert all(not part.startswith(" ") and not part.endswith(" ") for part in words)
    assert split_text("x" * 5000) == ["x" * 4096, "x" * 904]
    assert split_text("short") == ["short"]


def test_rate_keys_cost_one_token_per_part() -> None:
    channel = TelegramChannel(TOKEN, SECRET, per_chat_per_second=1.0, global_per_second=30.0)
    keys = channel.rate_keys(OutboundMessage(channel="telegram", recipient="42", text="a " * 4500))
    assert keys == [RateKey("telegram:global", 30.0, 3.0), RateKey("telegram:chat:42", 1.0, 3.0)]


# -- send, against the shared fake Bot API -------------------------------------------------------


@pytest.fixture
def api() -> Iterator[FakeProviders]:
    with FakeProviders() as fake:
        yield fake


@pytest.fixture
def channel(api: FakeProviders) -> Iterator[TelegramChannel]:
    adapter = TelegramChannel(TOKEN, SECRET, api_base_url=api.telegram_base_url)
    yield adapter
    adapter.close()


def reply(text: str, *buttons: Button, recipient: str = str(CUSTOMER)) -> OutboundMessage:
    return OutboundMessage(channel="telegram", recipient=recipient, text=text, buttons=buttons)


def sent(api: FakeProviders) -> list[dict[str, Any]]:
    return [request.params for request in api.sent("telegram")]


def test_a_reply_with_buttons_reaches_the_chat_as_an_inline_keyboard(
    api: FakeProviders, channel: TelegramChannel
) -> None:
    provider_id = channel.send(reply("Seberapa puas Anda?", Button("Puas", "csat:5"), Button("Kurang", "csat:2")))

    [message] = sent(api)
    assert message["chat_id"] == str(CUSTOMER)
    assert message["text"] == "Seberapa puas Anda?"
    assert message["reply_markup"] == {"inline_keyboard": [
        [{"text": "Puas", "callback_data": "csat:5"}],
        [{"text": "Kurang", "callback_data": "csat:2"}],
    ]}
    assert provider_id == f"{CUSTOMER}:1"


def test_a_long_reply_arrives_in_three_parts_with_buttons_on_the_last(
    api: FakeProviders, channel: TelegramChannel
) -> None:
    provider_id = channel.send(reply("kata " * 1800, Button("Selesai", "done")))

    parts = sent(api)
    assert len(parts) == 3
    assert all(len(part["text"]) <= 4096 for part in parts)
    assert ["reply_markup" in part for part in parts] == [False, False, True]
    assert provider_id == f"{CUSTOMER}:1"  # the first part's id


def test_a_split_reply_that_fails_midway_keeps_what_was_delivered(
    api: FakeProviders, channel: TelegramChannel
) -> None:
    def fail_after_the_first_part(request: Recorded, status: int) -> None:
        if request.method == "sendMessage" and status == 200:
            api.on_record = None
            api.fail_next("telegram", 500, method="sendMessage")

    api.on_record = fail_after_the_first_part
    assert channel.send(reply("kata " * 1800)) == f"{CUSTOMER}:1"
    assert len(api.requests("telegram", "sendMessage")) == 2  # no third part: a retry would repeat the first


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PTB 22 warns about its own retry_after type
def test_flood_control_asks_to_retry_after_the_seconds_telegram_gives(
    api: FakeProviders, channel: TelegramChannel
) -> None:
    api.fail_next("telegram", 429, method="sendMessage", retry_after=7)
    with pytest.raises(RetryLater) as error:
        channel.send(reply("Halo"))
    assert error.value.after_s == 7.0


def test_a_customer_who_blocked_the_bot_is_undeliverable(api: FakeProviders, channel: TelegramChannel) -> None:
    api.fail_next("telegram", 403, method="sendMessage", description="Forbidden: bot was blocked by the user")
    with pytest.raises(Undeliverable) as error:
        channel.send(reply("Halo"))
    assert "blocked" in error.value.reason


def test_an_unknown_chat_is_undeliverable(api: FakeProviders, channel: TelegramChannel) -> None:
    api.fail_next("telegram", 400, method="sendMessage", description="Bad Request: chat not found")
    with pytest.raises(Undeliverable) as error:
        channel.send(reply("Halo"))
    assert error.value.reason.startswith("rejected:")
    assert "chat not found" in error.value.reason.lower()


def test_a_server_error_is_retried_later(api: FakeProviders, channel: TelegramChannel) -> None:
    api.fail_next("telegram", 500, method="sendMessage")
    with pytest.raises(RetryLater) as error:
        channel.send(reply("Halo"))
    assert error.value.after_s is None
    assert channel.send(reply("Halo lagi")) == f"{CUSTOMER}:1"  # the loop and client survive errors


def test_a_rejected_token_is_undeliverable_and_never_quoted(api: FakeProviders) -> None:
    adapter = TelegramChannel(TOKEN, SECRET, api_base_url=api.telegram_base_url)
    api.fail_next("telegram", 401, method="getMe")
    try:
        with pytest.raises(Undeliverable) as error:
            adapter.send(reply("Halo"))
    finally:
        adapter.close()
    assert "token" in error.value.reason
    assert TOKEN not in str(error.value) and TOKEN.split(":")[1] not in str(error.value)


def test_a_button_payload_over_64_bytes_is_undeliverable(api: FakeProviders, channel: TelegramChannel) -> None:
    with pytest.raises(Undeliverable):
        channel.send(reply("Pilih", Button("Terlalu panjang", "x" * 65)))
    assert api.requests("telegram", "sendMessage") == []


def test_an_unreachable_api_is_retried_later() -> None:
    adapter = TelegramChannel(TOKEN, SECRET, api_base_url="http://127.0.0.1:9/bot")  # discard port: refused
    try:
        with pytest.raises(RetryLater):
            adapter.send(reply("Halo"))
    finally:
        adapter.close()


def test_acknowledging_a_button_press_answers_the_callback_query(api: FakeProviders, channel: TelegramChannel) -> None:
    channel.acknowledge(only("callback_query"))
    [call] = api.requests("telegram", "answerCallbackQuery")
    assert call.params == {"callback_query_id": "4382bfdwdsb323b2d9"}


def test_acknowledging_never_raises() -> None:
    adapter = TelegramChannel(TOKEN, SECRET, api_base_url="http://127.0.0.1:9/bot")
    try:
        adapter.acknowledge(only("callback_query"))  # nothing listens there: logged, not raised
    finally:
        adapter.close()


def test_set_webhook_registers_the_url_and_secret(api: FakeProviders, channel: TelegramChannel) -> None:
    channel.set_webhook("https://sapa.example/webhooks/telegram")
    [call] = api.requests("telegram", "setWebhook")
    assert call.params["url"] == "https://sapa.example/webhooks/telegram"
    assert call.params["secret_token"] == SECRET
    # my_chat_member: Telegram sends it only when asked, and it says the user blocked or unblocked the bot.
    assert call.params["allowed_updates"] == ["message", "edited_message", "callback_query", "my_chat_member"]


def test_the_set_webhook_command_subscribes_to_member_updates(api: FakeProviders, tmp_path: Path) -> None:
    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "config.yml").read_text())
    raw["channels"]["telegram"] = {"enabled": True, "api_base_url": api.telegram_base_url}
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True))
    result = CliRunner().invoke(
        main, ["--config", str(config), "telegram", "set-webhook", "--url", "https://sapa.example/webhooks/telegram"],
        env={"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET},
    )
    assert result.exit_code == 0, result.output
    [call] = api.requests("telegram", "setWebhook")
    assert "my_chat_member" in call.params["allowed_updates"]
