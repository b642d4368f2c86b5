"""The Slack agent desk: signed requests in (from fixtures in Slack's shapes), Web API calls out (to the fake)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier

from bot.devtools.fake_providers import FakeProviders
from bot.messages import OutboundMessage
from channels.base import BadPayload, Forbidden, RateKey, RetryLater, Undeliverable, WebhookRequest
from channels.slack import (
    AgentAction,
    AgentCommand,
    AgentReply,
    SharedFile,
    SlackDesk,
    UrlVerification,
    card_text,
    render_card,
)

FIXTURES = Path(__file__).parent / "fixtures" / "slack"
TOKEN = "xoxb-0000000000-1111111111-sapaTestToken"
SECRET = "sapa-signing-secret-0123456789abcdef"
NOW = 1_700_000_300
JSON, FORM = "application/json", "application/x-www-form-urlencoded"
CARD_TS = "1700000000.000100"


@functools.cache
def desk(now: float = NOW) -> SlackDesk:
    """A desk that only parses: it never sends, so one per clock serves every test."""
    return SlackDesk(TOKEN, SECRET, now=lambda: now)


def signed(raw: bytes, content_type: str = JSON, *, timestamp: float = NOW, secret: str = SECRET,
           extra: dict[str, str] | None = None) -> WebhookRequest:
    ts = str(int(timestamp))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=raw) or ""
    headers = {"content-type": content_type, "x-slack-request-timestamp": ts, "x-slack-signature": signature}
    return WebhookRequest("POST", "https://sapa.example.com/slack/events", {**headers, **(extra or {})}, raw)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def event(name: str, extra: dict[str, str] | None = None) -> WebhookRequest:
    return signed(fixture(f"{name}.json"), extra=extra)


def interaction(payload: dict[str, Any]) -> WebhookRequest:
    # Interactivity arrives as a form whose one field, `payload`, holds the JSON.
    return signed(urlencode({"payload": json.dumps(payload)}).encode(), FORM)


def button(action: str) -> dict[str, Any]:
    return dict(json.loads(fixture(f"block_actions_{action}.json")))


# -- parse: events -------------------------------------------------------------------------------


def test_an_agents_reply_in_a_cards_thread_reaches_the_core_as_plain_text() -> None:
    assert desk().parse(event("event_thread_reply")) == [AgentReply(
        event_id="Ev0SAPA0001", slack_user="U0AGENT1", channel="C0DESK", thread_ts=CARD_TS,
        ts="1700000123.000200",
        text="Halo Bu Siti, pesanan INV-2024-0042 sudah dikirim hari ini. "
             "Lacak di https://kurir.example/t/42 & kabari kami ya",
    )]


@pytest.mark.parametrize("name", [
    "event_thread_reply_bot",  # modern bot messages: bot_id and no subtype
    "event_message_changed",  # an edit is not a new reply
    "event_top_level",  # not in a card's thread: agents talking among themselves
    "event_app_mention",
])
def test_everything_else_in_the_desk_channel_is_ignored(name: str) -> None:
    assert desk().parse(event(name)) == []


def test_a_redelivered_event_parses_to_the_same_event_id_so_the_core_can_drop_it() -> None:
    first, retry = event("event_thread_reply"), event("event_thread_reply", {"x-slack-retry-num": "1"})
    assert desk().parse(retry) == desk().parse(first)
    assert (desk().retry_num(first), desk().retry_num(retry)) == (0, 1)


def test_parsing_never_calls_slack() -> None:
    # bolt would call auth.test on the first request if it held the token itself.
    with FakeProviders() as fake:
        fresh = SlackDesk(TOKEN, SECRET, api_base_url=fake.slack_base_url, now=lambda: NOW)
        assert fresh.parse(event("event_thread_reply"))
        assert fresh.parse(interaction(button("claim")))
        assert fake.requests("slack") == []


def test_the_url_check_gets_its_challenge() -> None:
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    assert desk().parse(event("url_verification")) == [UrlVerification(challenge)]


# -- parse: buttons and commands -----------------------------------------------------------------


@pytest.mark.parametrize("action", ["claim", "resolve", "escalate", "back_to_bot"])
def test_each_card_button_becomes_an_agent_action(action: str) -> None:
    payload = button(action)
    pressed = payload["actions"][0]
    assert desk().parse(interaction(payload)) == [AgentAction(
        dedupe_key=f"{payload['trigger_id']}:{pressed['action_ts']}", action=action, value="42",
        slack_user="U0AGENT1", channel="C0DESK", message_ts=CARD_TS,
    )]


def test_a_button_sapa_does_not_know_is_ignored() -> None:
    payload = button("claim")
    payload["actions"][0]["action_id"] = "sapa_snooze"
    assert desk().parse(interaction(payload)) == []


def test_the_slash_command_keeps_the_plus_of_a_phone_number() -> None:
    assert desk().parse(signed(fixture("slash_command.txt"), FORM)) == [AgentCommand(
        command="/sapa", text="customer +6281234567890", slack_user="U0AGENT1", channel="C0DESK",
        trigger_id="6283746599999.5021003.7e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b",
    )]


def test_a_slash_command_mentioning_payload_is_still_read() -> None:
    # bolt's own form parsing turns this body into {}: the desk must not depend on it.
    [command] = desk().parse(signed(fixture("slash_command_word_payload.txt"), FORM))
    assert isinstance(command, AgentCommand) and command.text == "ticket payload-42"


# -- parse: refusals -----------------------------------------------------------------------------


def test_a_request_signed_with_another_secret_is_forbidden() -> None:
    with pytest.raises(Forbidden, match="wrong X-Slack-Signature"):
        desk().parse(signed(fixture("event_thread_reply.json"), secret="not-our-secret"))


def test_a_body_changed_after_signing_is_forbidden() -> None:
    request = event("event_thread_reply")
    tampered = WebhookRequest(request.method, request.url, request.headers, request.body.replace(b"Halo", b"Hai!"))
    with pytest.raises(Forbidden):
        desk().parse(tampered)


@pytest.mark.parametrize("missing", ["x-slack-signature", "x-slack-request-timestamp"])
def test_a_request_without_slacks_headers_is_forbidden(missing: str) -> None:
    request = event("event_thread_reply")
    headers = {name: value for name, value in request.headers.items() if name != missing}
    with pytest.raises(Forbidden, match="missing"):
        desk().parse(WebhookRequest(request.method, request.url, headers, request.body))


def test_a_request_signed_301_seconds_ago_is_a_replay() -> None:
    raw = fixture("event_thread_reply.json")
    with pytest.raises(Forbidden, match="300 s"):
        desk().parse(signed(raw, timestamp=NOW - 301))
    with pytest.raises(Forbidden, match="300 s"):
        desk().parse(signed(raw, timestamp=NOW + 301))  # a clock far ahead is no better
    assert desk().parse(signed(raw, timestamp=NOW - 300))


def test_a_timestamp_that_is_not_a_number_is_forbidden() -> None:
    request = event("event_thread_reply")
    with pytest.raises(Forbidden, match="Unix time"):
        desk().verify({**request.headers, "x-slack-request-timestamp": "yesterday"}, request.body)


def test_slacks_documented_signature_validates_with_the_clock_frozen_at_its_time() -> None:
    body = fixture("signing_docs_vector.txt")
    headers = {"x-slack-request-timestamp": "1531420618",
               "x-slack-signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"}
    SlackDesk(TOKEN, "8f742231b10e8888abcd99yyyzzz85a5", now=lambda: 1531420618).verify(headers, body)
    with pytest.raises(Forbidden):
        SlackDesk(TOKEN, "8f742231b10e8888abcd99yyyzzz85a5", now=lambda: 1531420618 + 301).verify(headers, body)


@pytest.mark.parametrize("raw", [fixture("malformed.txt"), b"[1, 2]", b"\"event_callback\""])
def test_signed_json_that_is_not_a_slack_object_is_a_bad_payload(raw: bytes) -> None:
    with pytest.raises(BadPayload) as caught:
        desk().parse(signed(raw))
    assert caught.value.status == 400


def test_a_signed_interaction_with_broken_json_is_a_bad_payload() -> None:
    with pytest.raises(BadPayload):
        desk().parse(signed(b"payload=%7B%22type%22%3A", FORM))


def test_a_reply_without_an_event_id_is_a_bad_payload() -> None:
    body = json.loads(fixture("event_thread_reply.json"))
    del body["event_id"]
    with pytest.raises(BadPayload, match="event_id"):
        desk().parse(signed(json.dumps(body).encode()))


# -- render_card ---------------------------------------------------------------------------------


def card(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "conversation_id": 42, "title": "Customer needs an agent", "customer_name": "Siti Rahma",
        "vip": False, "channel": "whatsapp", "language": "id", "reason": "asked for a person",
        "status": "waiting", "owner": None, "sla_due": "2024-06-01T12:00:00+07:00",
        "tickets": [{"ref": "TKT-000007", "kind": "complaint", "status": "open", "due": "2024-06-02T09:00:00+07:00"}],
        "last_messages": [{"sender": "customer", "text": "Paket saya belum sampai"},
                          {"sender": "bot", "text": "Saya sambungkan ke petugas"}],
        "mention": None,
    }
    return {**base, **changes}


def buttons(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every text a reader sees, block by block."""
    found: list[str] = []
    for block in blocks:
        found += [block["text"]["text"]] if "text" in block else []
        found += [f["text"] for f in block.get("fields", [])]
        found += [e["text"]["text"] if e["type"] == "button" else e["text"] for e in block.get("elements", [])]
    return found


def test_a_waiting_card_shows_the_customer_and_all_four_buttons() -> None:
    blocks = render_card(card())
    assert buttons(blocks) == ["sapa_claim", "sapa_resolve", "sapa_escalate", "sapa_back_to_bot"]
    [actions] = [b for b in blocks if b["type"] == "actions"]
    assert {e["value"] for e in actions["elements"]} == {"42"}
    assert [e.get("style") for e in actions["elements"]] == ["primary", None, "danger", None]
    shown = "\n".join(texts(blocks))
    for expected in ("Customer needs an agent", "Siti Rahma", "whatsapp", "Waiting for an agent", "TKT-000007",
                     "*Customer:* Paket saya belum sampai", "*Bot:* Saya sambungkan ke petugas", "#42"):
        assert expected in shown
    assert "<!date^1717218000^" in shown and "|2024-06-01T12:00:00+07:00>" in shown  # each agent's own time zone


def test_a_claimed_card_names_the_owner_and_cannot_be_claimed_again() -> None:
    blocks = render_card(card(status="with_agent", owner="Budi"))
    assert buttons(blocks) == ["sapa_resolve", "sapa_escalate", "sapa_back_to_bot"]
    assert any("With an agent (Budi)" in text for text in texts(blocks))


@pytest.mark.parametrize("status", ["closed", "bot"])
def test_a_finished_card_has_no_buttons(status: str) -> None:
    assert buttons(render_card(card(status=status))) == []


def test_a_vip_escalation_is_marked_and_pings_the_account_manager() -> None:
    the_card = card(title="Escalation level 2", vip=True, vip_tier="Gold", mention="<@U0AMGR>")
    blocks = render_card(the_card)
    assert blocks[0] == {"type": "header",
                         "text": {"type": "plain_text", "text": "⭐ VIP Gold · Escalation level 2", "emoji": True}}
    assert any("<@U0AMGR>" in text for text in texts(blocks))
    assert card_text(the_card).startswith("⭐ VIP Gold · Escalation level 2: Siti Rahma via whatsapp")
    assert card_text(the_card).endswith("<@U0AMGR>")
    assert "VIP" not in card_text(card())


def test_what_customers_wrote_cannot_ping_or_link_in_slack() -> None:
    blocks = render_card(card(customer_name="<!channel> Joko", last_messages=[
        {"sender": "customer", "text": "tolong <!here> & <https://evil.example|klik>"}]))
    shown = "\n".join(texts(blocks))
    assert "<!channel>" not in shown and "<!here>" not in shown and "<https://evil" not in shown
    assert "&lt;!channel&gt; Joko" in shown and "&amp;" in shown


def test_long_texts_stay_within_slacks_limits() -> None:
    long = "sangat panjang " * 600
    blocks = render_card(card(
        title=long, customer_name=long, reason=long, vip=True, vip_tier="Platinum",
        tickets=[{"ref": f"TKT-{n:06d}", "kind": "complaint", "status": "open", "due": None} for n in range(200)],
        last_messages=[{"sender": "customer", "text": long} for _ in range(20)],
    ))
    assert len(blocks[0]["text"]["text"]) <= 150
    for block in blocks:
        if block["type"] == "section":
            assert len(block.get("text", {}).get("text", "")) <= 3000
            assert all(len(field["text"]) <= 2000 for field in block.get("fields", []))
        for element in block.get("elements", []):
            assert len(element["text"]["text"]) <= 75 if element["type"] == "button" else len(element["text"]) <= 3000
    quoted = [line for text in texts(blocks) for line in text.splitlines() if line.startswith("> *Customer:*")]
    assert quoted and all(len(line) <= len("> *Customer:* ") + 300 for line in quoted)
    assert any("more_" in text for text in texts(blocks))  # what does not fit is counted, not cut


# -- send ----------------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeProviders]:
    with FakeProviders() as fake:
        yield fake


@pytest.fixture
def sender(fake: FakeProviders) -> SlackDesk:
    return SlackDesk(TOKEN, SECRET, api_base_url=fake.slack_base_url.rstrip("/"))  # the slash is added back


def outbound(text: str, **options: Any) -> OutboundMessage:
    return OutboundMessage(channel="slack", recipient="C0DESK", text=text, conversation_id=42, options=options)


def test_a_card_is_posted_with_its_blocks_and_its_ts_is_returned(sender: SlackDesk, fake: FakeProviders) -> None:
    assert sender.send(outbound("", card=card())) == "1700000000.000100"  # the fake's first ts
    [post] = fake.sent("slack")
    assert post.params["channel"] == "C0DESK" and post.params["unfurl_links"] is False
    assert post.params["text"] == card_text(card()) and post.params["blocks"] == render_card(card())
    assert "thread_ts" not in post.params
    assert post.headers["authorization"] == f"Bearer {TOKEN}"


def test_a_reply_goes_into_the_cards_thread_as_text(sender: SlackDesk, fake: FakeProviders) -> None:
    first = sender.send(outbound("Paket saya belum sampai", thread_ts=CARD_TS))
    second = sender.send(outbound("Halo?", thread_ts=CARD_TS))
    posts = [p.params for p in fake.sent("slack")]
    assert [(p["text"], p["thread_ts"], "blocks" in p) for p in posts] == [
        ("Paket saya belum sampai", CARD_TS, False), ("Halo?", CARD_TS, False)]
    assert first != second and first.replace(".", "").isdigit()


def test_updating_a_card_uses_chat_update_on_the_same_ts(sender: SlackDesk, fake: FakeProviders) -> None:
    claimed = card(status="with_agent", owner="Budi")
    assert sender.send(outbound("Claimed by Budi", card=claimed, update_ts=CARD_TS)) == CARD_TS
    [update] = fake.requests("slack", "chat.update")
    assert (update.params["channel"], update.params["ts"], update.params["text"]) == ("C0DESK", CARD_TS,
                                                                                        "Claimed by Budi")
    assert update.params["blocks"] == render_card(claimed)
    assert fake.sent("slack") == []


def test_slacks_rate_limit_asks_the_outbox_to_wait_as_told(sender: SlackDesk, fake: FakeProviders) -> None:
    fake.fail_next("slack", 429, retry_after=2)
    with pytest.raises(RetryLater) as caught:
        sender.send(outbound("Halo", thread_ts=CARD_TS))
    assert caught.value.after_s == 2.0


def test_a_missing_channel_is_undeliverable_without_blaming_a_customer(sender: SlackDesk, fake: FakeProviders) -> None:
    fake.fail_next("slack", 200, description="channel_not_found")
    with pytest.raises(Undeliverable) as caught:
        sender.send(outbound("Halo"))
    assert caught.value.reason == "slack channel_not_found" and caught.value.address_dead is False


def test_a_slack_outage_is_retried_later(sender: SlackDesk, fake: FakeProviders) -> None:
    fake.fail_next("slack", 500)
    with pytest.raises(RetryLater):
        sender.send(outbound("Halo"))


def test_an_unreachable_slack_is_retried_later() -> None:
    with FakeProviders() as gone:
        url = gone.slack_base_url
    with pytest.raises(RetryLater, match="unreachable"):
        SlackDesk(TOKEN, SECRET, api_base_url=url).send(outbound("Halo"))


def test_posts_draw_from_the_channels_one_per_second_bucket() -> None:
    assert desk().rate_keys(outbound("Halo")) == [RateKey("slack:channel:C0DESK", 1.0)]


def test_a_thread_reply_also_sent_to_the_channel_is_still_a_reply():
    """Ticking "also send to channel" must not silently drop the agent's answer to the customer."""
    (event,) = desk().parse(signed(fixture("event_thread_broadcast.json")))
    assert isinstance(event, AgentReply)


# -- files agents share (issue 14, point 5) --------------------------------------------------------


def test_a_file_shared_in_a_cards_thread_comes_with_the_reply() -> None:
    [reply] = desk().parse(event("event_file_share"))
    assert isinstance(reply, AgentReply)
    assert (reply.thread_ts, reply.slack_user, reply.event_id) == (CARD_TS, "U0AGENT1", "Ev0SAPA0FILE1")
    assert reply.text == "Ini bukti pengembalian dana & nomor resinya, Bu"
    assert reply.files == (SharedFile(
        id="F0SAPAREFUND", name="bukti-refund.pdf", mimetype="application/pdf", size=48213,
        url="https://files.slack.com/files-pri/T0SAPA-F0SAPAREFUND/download/bukti-refund.pdf", mode="hosted"),)


def test_newer_clients_share_files_on_a_plain_reply_without_text() -> None:
    [reply] = desk().parse(event("event_file_share_no_subtype"))
    assert isinstance(reply, AgentReply) and reply.text == ""
    [shared] = reply.files
    assert (shared.name, shared.mimetype, shared.size) == ("IMG_2041.jpg", "image/jpeg", 183442)
    assert shared.url and shared.url.endswith("/download/img_2041.jpg")


def test_a_file_from_another_organisation_comes_without_a_url_but_with_its_id() -> None:
    [reply] = desk().parse(event("event_file_share_slack_connect"))
    assert isinstance(reply, AgentReply)
    [shared] = reply.files
    assert (shared.id, shared.url, shared.mode, shared.name) == ("F0SAPACONNECT", None, "file_access", "file")


def test_a_file_shared_outside_any_thread_is_not_for_a_customer() -> None:
    body = json.loads(fixture("event_file_share.json"))
    del body["event"]["thread_ts"]
    assert desk().parse(signed(json.dumps(body).encode())) == []


def test_the_take_over_button_of_an_ephemeral_note_is_an_action() -> None:
    payload = dict(json.loads(fixture("block_actions_takeover.json")))
    [action] = desk().parse(interaction(payload))
    assert action == AgentAction(dedupe_key=f"{payload['trigger_id']}:1700000410.654321", action="takeover",
                                 value="42", slack_user="U0SUPER1", channel="C0DESK", message_ts="1700000400.000700")


def test_an_ephemeral_note_goes_only_to_its_agent_with_a_take_over_button(sender: SlackDesk,
                                                                        fake: FakeProviders) -> None:
    sender.send(outbound("Rina already holds conversation #42", ephemeral_user="U0SUPER1", takeover_of=42))
    [post] = fake.requests("slack", "chat.postEphemeral")
    assert (post.params["channel"], post.params["user"]) == ("C0DESK", "U0SUPER1")
    assert post.params["text"] == "Rina already holds conversation #42"
    assert buttons(post.params["blocks"]) == ["sapa_takeover"]
    assert post.params["blocks"][1]["elements"][0]["value"] == "42"
    assert fake.requests("slack", "chat.postMessage") == []  # nobody else sees it


def test_a_shared_file_is_downloaded_with_the_bot_token(sender: SlackDesk, fake: FakeProviders) -> None:
    shown = fake.add_slack_file(b"%PDF-1.7 refund", name="bukti-refund.pdf")
    assert sender.fetch_media("slack:" + shown["url_private_download"]) == (b"%PDF-1.7 refund", "application/pdf")
    [download] = fake.requests("slack", "files.download")
    assert download.headers["authorization"] == f"Bearer {TOKEN}"
    # A file shared from another organisation: files.info gives its URL first.
    assert sender.fetch_media(f"slack:file/{shown['id']}")[0] == b"%PDF-1.7 refund"
    assert sender.fetch_data_url("slack:" + shown["url_private"]) == "data:application/pdf;base64,JVBERi0xLjcgcmVmdW5k"


def test_slacks_sign_in_page_is_not_taken_for_the_file(fake: FakeProviders) -> None:
    shown = fake.add_slack_file(b"GIF89a", name="x.gif", mimetype="image/gif")
    tokenless = SlackDesk("not-a-bot-token", SECRET, api_base_url=fake.slack_base_url)
    with pytest.raises(Undeliverable, match="sign-in page.*files:read"):
        tokenless.fetch_media("slack:" + shown["url_private_download"])


def test_a_deleted_file_or_a_slack_outage_is_said_so(sender: SlackDesk, fake: FakeProviders) -> None:
    with pytest.raises(Undeliverable, match="file_not_found"):
        sender.fetch_media("slack:file/F0GONE")
    shown = fake.add_slack_file(b"data")
    fake.fail_next("slack", 503, method="files.download")
    with pytest.raises(RetryLater, match="503"):
        sender.fetch_media("slack:" + shown["url_private_download"])
    with pytest.raises(Undeliverable, match="refused"):
        sender.fetch_media("slack:" + shown["url_private_download"].replace(shown["id"], "F0OTHER"))


def test_the_bot_token_never_goes_to_a_host_that_is_not_slacks(sender: SlackDesk, fake: FakeProviders) -> None:
    with pytest.raises(Undeliverable, match="not a Slack file URL"):
        sender.fetch_media("slack:https://files.slack.com.evil.example/files-pri/T-F/download/x.pdf")
    with pytest.raises(Undeliverable, match="not a Slack file"):
        sender.fetch_media("telegram:file/AgAC")
    assert fake.requests("slack") == []


def test_the_card_shows_what_came_with_a_message_as_the_desk_wrote_it() -> None:
    link = "<https://sapa.example/media/7/0?exp=1&amp;sig=x|photo · image/jpeg>"
    said = {"sender": "customer", "text": "<!here> lihat", "extras": [f"📎 {link}"]}
    blocks = render_card(card(last_messages=[said]))
    shown = "\n".join(texts(blocks))
    assert f"> *Customer:* &lt;!here&gt; lihat 📎 {link}" in shown


def test_what_is_not_for_the_desk_is_logged_as_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="channels.slack"):
        assert desk().parse(event("event_thread_reply_bot")) == []
    assert any("event message from a bot ignored" in record.getMessage() for record in caplog.records)
