"""Hostile but correctly signed Slack requests (issue 15): a 4xx that says why, or a 200 where Slack wants an
acknowledgement — never a 5xx, and nothing stored, on SQLite and PostgreSQL.

Each request is signed with the workspace's secret (tests/support/slack.py `signed`), so it passes the signature
check and reaches the parser, the desk and the database: what Slack itself would never send, but what anyone
holding a captured request (or the secret) could.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from sqlalchemy import func, select

from bot.app import Sapa
from store.models import AuditEntry, LoyaltyEntry, Message, OutboxItem, SlackRequest, Task
from tests.support.slack import SIGNING_SECRET, desk_sapa, desk_settings, handed_off, signed

FORM, JSON = "application/x-www-form-urlencoded", "application/json"


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from desk_sapa(desk_settings(db_url, fakes), clock, interpreter, database)


def post(client: Any, body: str | bytes, content_type: str) -> Any:
    if isinstance(body, bytes):  # not UTF-8: signed over the bytes, as a client holding the secret could
        timestamp = str(int(time.time()))
        digest = hmac.new(SIGNING_SECRET.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
        headers = {"content-type": content_type, "x-slack-request-timestamp": timestamp,
                   "x-slack-signature": "v0=" + digest.hexdigest()}
        return client.post("/slack/events", content=body, headers=headers)
    return client.post("/slack/events", content=body.encode(), headers=signed(body, content_type))


def stored(sapa: Sapa) -> tuple[int, ...]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return tuple(session.execute(select(func.count()).select_from(model)).scalar_one()
                     for model in (Task, Message, OutboxItem, AuditEntry, SlackRequest, LoyaltyEntry))


def press(**changes: Any) -> dict[str, Any]:
    """A claim on conversation 1's card, with `changes` (None deletes a field)."""
    payload: dict[str, Any] = {
        "type": "block_actions", "user": {"id": "U0RINA", "username": "rina", "team_id": "T0SAPA"},
        "api_app_id": "A0SAPA", "token": "x", "trigger_id": "trig-hostile", "team": {"id": "T0SAPA"},
        "channel": {"id": "C0QUEUE", "name": "cs-queue"},
        "container": {"type": "message", "message_ts": "1800000000.000100", "channel_id": "C0QUEUE"},
        "message": {"type": "message", "ts": "1800000000.000100", "text": "card"},
        "actions": [{"type": "button", "action_id": "sapa_claim", "block_id": "actions", "value": "1",
                     "action_ts": "1800000001.000001"}],
    }
    for key, value in changes.items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    return payload


def claim(**changes: Any) -> list[dict[str, Any]]:
    action = {"type": "button", "action_id": "sapa_claim", "block_id": "actions", "value": "1",
              "action_ts": "1800000001.000001", **changes}
    return [action]


def callback(event: Any, **changes: Any) -> str:
    return json.dumps({"token": "x", "team_id": "T0SAPA", "api_app_id": "A0SAPA", "type": "event_callback",
                       "event_id": "Ev0HOSTILE", "event_time": 1800000000, "event": event, **changes})


def reply(**changes: Any) -> dict[str, Any]:
    return {"type": "message", "channel": "C0QUEUE", "user": "U0RINA", "text": "halo", "ts": "1800000000.000200",
            "thread_ts": "1800000000.000100", "channel_type": "channel", **changes}


def command(text: str, user: str = "U0SUPER", **changes: str) -> str:
    return urlencode({"token": "x", "team_id": "T0SAPA", "channel_id": "C0QUEUE", "user_id": user,
                      "command": "/sapa", "text": text, "trigger_id": f"trig-{hashlib.md5(text.encode()).hexdigest()}",
                      "response_url": "https://hooks.slack.com/commands/1", **changes})


def interaction(payload: Any) -> str:
    return urlencode({"payload": payload if isinstance(payload, str) else json.dumps(payload)})


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# -- interactivity (buttons) ---------------------------------------------------------------------------------

REFUSED_PRESSES = {
    "actions empty": (press(actions=[]), "actions are not a non-empty list"),
    "actions an object": (press(actions={}), "actions are not a non-empty list"),
    "actions a string": (press(actions="x"), "actions are not a non-empty list"),
    "an action a string": (press(actions=["sapa_claim"]), "action that is not an object"),
    "action_id a number": (press(actions=[{"action_id": 5, "value": "1", "action_ts": "1"}]), "action_id"),
    "value a number": (press(actions=claim(value=1)), "value of button sapa_claim is not a string"),
    "value an object": (press(actions=claim(value={"id": 1})), "not a string"),
    "value null": (press(actions=claim(value=None)), "not a string"),
    "value superscript two": (press(actions=claim(value="²")), "not a conversation number"),
    "value past 64 bits": (press(actions=claim(value="9" * 30)), "not a conversation number"),
    "value Arabic-Indic digits": (press(actions=claim(value="١٢")), "not a conversation number"),
    "action_ts missing": (press(actions=claim(action_ts=None)), "action_ts"),
    "action_ts 10,000 characters": (press(actions=claim(action_ts="1" * 10_000)), "longer than 255"),
    "user missing": (press(user=None), "without id"),
    "user a string": (press(user="U0RINA"), "user is not an object"),
    "user id a list": (press(user={"id": ["U0RINA"]}), "without id"),
    "container a string": (press(container="C0QUEUE"), "container is not an object"),
    "container a list": (press(container=[1]), "container is not an object"),
    "channel a string": (press(channel="C0QUEUE"), "channel is not an object"),
    "message a number": (press(message=7), "message is not an object"),
    "team a string": (press(team="T0SAPA"), "team is not an object"),
    "trigger_id an object": (press(trigger_id={"a": 1}), "trigger_id"),
    "NUL in a value": (press(actions=claim(value="1\x00")), "NUL"),
    "NUL in a key": (press(**{"x\x00": 1}), "NUL"),
    "lone surrogate": (press(actions=claim(block_id="\ud800")), "unpaired surrogate"),
}


@pytest.mark.parametrize("name", list(REFUSED_PRESSES))
def test_a_malformed_button_press_is_a_400_that_says_why(client, sapa, name):
    payload, reason = REFUSED_PRESSES[name]
    before = stored(sapa)
    response = post(client, interaction(payload), FORM)
    assert response.status_code == 400, response.text
    assert reason in response.json()["error"]
    assert stored(sapa) == before


@pytest.mark.parametrize(("name", "body", "reason"), [
    ("payload not JSON", interaction("{not json"), "neither JSON nor a form"),
    ("payload JSON a list", interaction("[1, 2]"), "not a JSON object"),
    ("payload JSON a string", interaction('"block_actions"'), "not a JSON object"),
    ("payload JSON null", interaction("null"), "not a JSON object"),
    ("payload nested 100,000 deep", interaction(nested(100_000)), "nests deeper"),
    ("payload nested 500 deep", interaction({"type": "block_actions", "x": json.loads(nested(500))}), "nests deeper"),
    ("actions nested 60 deep", interaction(press(actions=[json.loads(nested(60))])), "nests deeper"),
    ("payload empty", "payload=", "neither JSON nor a form"),
])
def test_an_interaction_that_is_not_a_json_object_is_a_400(client, sapa, name, body, reason):
    before = stored(sapa)
    response = post(client, body, FORM)
    assert response.status_code == 400, response.text
    assert reason in response.json()["error"]
    assert stored(sapa) == before


@pytest.mark.parametrize("content_type", [FORM, JSON])
def test_a_signed_body_that_is_not_utf8_is_a_400(client, sapa, content_type):
    before = stored(sapa)
    response = post(client, b'{"type": "event_callback", "x": "\xed\xa0\x80\xff"}', content_type)
    assert response.status_code == 400 and "not UTF-8" in response.json()["error"]
    assert stored(sapa) == before


def test_a_body_that_is_not_utf8_with_a_wrong_signature_is_still_forbidden(client):
    forged = client.post("/slack/events", content=b'{"x": "\xff"}', headers={
        "content-type": JSON, "x-slack-request-timestamp": str(int(time.time())), "x-slack-signature": "v0=00"})
    assert forged.status_code == 403


@pytest.mark.parametrize("payload", [
    press(type="view_submission", actions=None, view={"id": "V1"}),
    press(type="shortcut", actions=None),
    press(actions=claim(action_id="other_app_button")),
    press(actions=claim(action_id="sapa_snooze")),
    {"type": "block_suggestion", "action_id": "x", "value": "1"},
    {"type": "something_new"},
])
def test_an_interaction_the_desk_does_not_handle_is_acknowledged_and_ignored(client, sapa, payload):
    before = stored(sapa)
    assert post(client, interaction(payload), FORM).status_code == 200
    assert stored(sapa) == before


def test_a_press_with_a_very_long_trigger_id_is_queued_once(client, sapa):
    payload = press(trigger_id="t" * 255, actions=claim(action_ts="1" * 255))
    assert post(client, interaction(payload), FORM).status_code == 200
    assert post(client, interaction(payload), FORM).status_code == 200
    with sapa.database.unit_of_work(read_only=True) as session:
        [key] = session.execute(select(Task.dedupe_key)).scalars().all()
    assert key.startswith("slack:action-sha256:") and len(key) <= 200


# -- Events API ----------------------------------------------------------------------------------------------

REFUSED_EVENTS = {
    "event a string": (callback("type"), "event is not an object"),
    "event a list": (callback(["type"]), "event is not an object"),
    "event null": (callback(None), "event is not an object"),
    "event a number": (callback(5), "event is not an object"),
    "event without a type": (callback({"channel": "C0QUEUE"}), "event without a type"),
    "event type a list": (callback({"type": ["message"]}), "event without a type"),
    "files a string": (callback(reply(files="F1")), "files are not a list"),
    "files an object": (callback(reply(files={"id": "F1"})), "files are not a list"),
    "files a list of strings": (callback(reply(files=["F1"])), "files are not a list of objects"),
    "text an object": (callback(reply(text={"t": "halo"})), "text is not a string"),
    "text a number": (callback(reply(text=5)), "text is not a string"),
    "thread_ts a number": (callback(reply(thread_ts=1800000000.0001)), "thread_ts"),
    "user a list": (callback(reply(user=["U0RINA"])), "user"),
    "channel missing": (callback(reply(channel=None)), "channel"),
    "event_id an object": (callback(reply(), event_id={"id": 1}), "event_id"),
    "event_id 300 characters": (callback(reply(), event_id="E" * 300), "longer than 255"),
    "NUL in the text": (callback(reply(text="halo\x00")), "NUL"),
    "lone surrogate in the text": (callback(reply(text="halo \udc00")), "unpaired surrogate"),
    "nested 900 deep": (callback(reply(), extra=json.loads(nested(900))), "nests deeper"),
}


@pytest.mark.parametrize("name", list(REFUSED_EVENTS))
def test_a_malformed_event_is_a_400_that_says_why(client, sapa, name):
    body, reason = REFUSED_EVENTS[name]
    before = stored(sapa)
    response = post(client, body, JSON)
    assert response.status_code == 400, response.text
    assert reason in response.json()["error"]
    assert stored(sapa) == before


def test_json_nested_past_pythons_own_limit_is_a_400(client, sapa):
    response = post(client, '{"type": "event_callback", "event": ' + nested(100_000) + "}", JSON)
    assert response.status_code == 400 and "nests deeper" in response.json()["error"]


@pytest.mark.parametrize("event", [
    {"type": "reaction_added", "user": "U0RINA", "reaction": "+1", "item": "not an object"},
    {"type": "app_home_opened", "user": 5, "tab": ["home"]},
    {"type": "message", "subtype": "message_deleted", "channel": "C0QUEUE", "previous_message": "x"},
    reply(bot_id="B1", files="not a list"),  # a bot's message: never for a customer, whatever it carries
    reply(thread_ts=None),  # not in a thread
    {"type": "sapa_unknown_future_event"},
])
def test_an_event_the_desk_does_not_handle_is_acknowledged_and_ignored(client, sapa, event):
    before = stored(sapa)
    assert post(client, callback(event), JSON).status_code == 200
    assert stored(sapa) == before


def test_a_reply_with_a_very_long_event_id_is_queued_once(client, sapa):
    body = callback(reply(), event_id="E" * 255)
    assert post(client, body, JSON).status_code == 200
    assert post(client, body, JSON).status_code == 200
    with sapa.database.unit_of_work(read_only=True) as session:
        [key] = session.execute(select(Task.dedupe_key)).scalars().all()
    assert key.startswith("slack:event-sha256:") and len(key) <= 200


@pytest.mark.parametrize("body", [
    json.dumps({"type": "url_verification", "challenge": 5}),
    json.dumps({"type": "url_verification", "challenge": ""}),
    json.dumps({"type": "url_verification", "challenge": {"x": 1}}),
])
def test_a_url_check_without_a_usable_challenge_is_a_400(client, body):
    response = post(client, body, JSON)
    assert response.status_code == 400 and "challenge" in response.json()["error"]


# -- slash commands ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "body", "reason"), [
    ("NUL in the text", command("points adjust #1 +100 \x00"), "NUL"),
    ("NUL in the user", command("help", user="U0SUPER\x00"), "NUL"),
    ("user_id missing", urlencode({"command": "/sapa", "text": "help", "channel_id": "C0QUEUE"}), "user_id"),
    ("command empty", command("help", command=""), "command"),
    ("user_id 1,000 characters", command("help", user="U" * 1000), "longer than 255"),
])
def test_a_slash_command_slack_could_not_have_sent_is_a_400(client, sapa, name, body, reason):
    before = stored(sapa)
    response = post(client, body, FORM)
    assert response.status_code == 400, response.text
    assert reason in response.json()["error"]
    assert stored(sapa) == before


def test_a_lone_surrogate_typed_into_a_form_arrives_as_a_replacement_character(client, sapa):
    # Form fields are percent-encoded UTF-8: a lone surrogate (ED A0 80) decodes to U+FFFD, which is harmless.
    body = command("customer x").replace("customer+x", "customer+" + quote(b"\xed\xa0\x80"))
    response = post(client, body, FORM)
    assert response.status_code == 200, response.text
    assert response.json()["text"].startswith("No customer matches")


def test_a_100k_character_command_is_answered_and_not_run(client, sapa):
    before = stored(sapa)
    response = post(client, command("points adjust #1 +100 " + "x" * 100_000), FORM)
    assert response.status_code == 200
    assert "at most 4,000" in response.json()["text"] and "Nothing was done" in response.json()["text"]
    assert stored(sapa) == before


ODD = ["²", "#²", "TKT-²", "²³", "9" * 30, "#" + "9" * 30, "TKT-" + "9" * 30, "-" + "9" * 30, "١٢", "#١٢", "%_",
       "<!channel>", "`", "y" * 250, "x" * 1900]  # longer than every name column, and within the 4,000 limit
VERBS = ["customer {}", "ticket {}", "ticket {} take", "ticket {} done ok", "ticket {} category courier_delay",
         "ticket {} rootcause x", "takeover {}", "merge {} {}", "merge #1 {}", "duplicates dismiss {} {}",
         "vip add {} reason", "vip remove {} reason", "points {}", "points adjust {} +100 goodwill",
         "points adjust #1 {} goodwill", "redeem {} VOUCHER", "redeem #1 {}", "broadcast preview {}",
         "broadcast status {}", "broadcast schedule {}", "broadcast pause {}", "broadcast cancel {}",
         "broadcast test {} --to {} --channel telegram", "broadcast test 1 --to {} --channel sms",
         "broadcast create {} --filter tier={} --message-id hai --channels sms", "segment create {} tier={}",
         "segment show {}", "segment delete {}", "queue {}", "{}", "help {}"]


@pytest.mark.parametrize("verb", VERBS)
def test_odd_arguments_to_every_command_get_an_answer_never_a_5xx(client, sapa, customer, slack, verb):
    handed_off(customer, slack)  # a customer, a conversation and a card to aim at
    for odd in ODD:
        text = verb.format(odd, odd)
        response = post(client, command(text), FORM)
        assert response.status_code == 200, (text[:80], response.text[:500])
        answer = response.json()["text"]
        assert answer and len(answer) < 40_000, text[:80]
