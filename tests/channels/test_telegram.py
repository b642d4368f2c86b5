"""The Telegram adapter: webhook updates in (from fixtures), Bot API calls out (to a fake Bot API)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.fake_providers import FakeProviders, Recorded
from bot.messages import Button, InboundMessage, Media, OutboundMessage
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


def test_a_button_press_carries_its_payload_and_must_be_acknowledged() -> None:
    message = only("callback_query")
    assert message.sender == str(CUSTOMER)
    assert message.text == message.button_payload == "csat:5"
    assert message.provider_message_id == "cb:4382bfdwdsb323b2d9"
    assert message.ack_token == "4382bfdwdsb323b2d9"
    assert message.display_name == "Siti Rahma"


def test_sharing_ones_own_contact_shares_the_phone() -> None:
    message = only("own_contact")
    assert message.shared_phone == "+6281234567890"
    assert message.text == "[contact]"


def test_forwarding_someone_elses_contact_shares_no_phone() -> None:
    message = only("other_contact")
    assert message.shared_phone is None
    assert message.text == "[contact]"


def test_a_photo_keeps_the_largest_size_and_the_caption() -> None:
    message = only("photo_with_caption")
    assert message.text == "Paketnya rusak"
    assert message.media == (Media(url="telegram:file/AgACAgQAAxkBAAIBlarge", content_type="image/jpeg"),)


def test_a_document_without_caption_gets_a_placeholder_text() -> None:
    message = only("document")
    assert message.text == "[document]"
    assert message.media == (Media(url="telegram:file/BQACAgQAAxkBAAIBinvoice", content_type="application/pdf"),)


def test_group_messages_are_ignored_unless_groups_are_allowed() -> None:
    assert parse("supergroup_message") == []
    message = only("supergroup_message", allow_groups=True)
    assert message.sender == "-1001234567890"  # replies go to the group, not to the user privately
    assert message.provider_message_id == "-1001234567890:17"


def test_updates_without_customer_content_are_ignored() -> None:
    assert parse("my_chat_member") == []


def test_malformed_json_is_a_bad_payload() -> None:
    with pytest.raises(BadPayload) as error:
        receiver().parse(request(fixture("malformed.txt")))
    assert error.value.status == 400


@pytest.mark.parametrize(
    "body",
    [
        fixture("not_an_update.json"),
        b"[1, 2]",
        b'{"update_id": 5, "message": {"message_id": 1, "date": 1, "chat": {"id": 1, "type": "private"},'
        b' "from": {"id": 1, "first_name": "No is_bot"}}}',
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
    assert call.params["allowed_updates"] == ["message", "edited_message", "callback_query"]
