"""Replays and look-alikes on the Slack desk (issue 15).

A signed Slack request stays valid for five minutes, so a captured one can be sent again: a slash command runs
once per request (its trigger_id), a reply or a press once per event id / action. A card is found by its channel
AND its ts: a ts is unique only within a channel, so a message in another channel whose thread_ts equals a card's
ts never reaches that card's customer, and a button pressed where Sapa posts no buttons for a conversation changes
nothing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from bot.app import Sapa
from store.models import AuditEntry, Conversation, LoyaltyEntry, SlackRequest, Task, Ticket, TicketEvent
from tests.support.slack import complained, conversation_of, desk_sapa, desk_settings, handed_off, signed

FORM, JSON = "application/x-www-form-urlencoded", "application/json"


@pytest.fixture
def sapa(db_url, fakes, clock, interpreter, database) -> Iterator[Sapa]:
    yield from desk_sapa(desk_settings(db_url, fakes), clock, interpreter, database)


def adjust_body(customer_id: int, *, trigger_id: str | None = "trig-adjust-1", text: str | None = None) -> str:
    fields = {"token": "x", "team_id": "T0SAPA", "channel_id": "C0QUEUE", "user_id": "U0SUPER", "command": "/sapa",
              "text": text or f"points adjust #{customer_id} +100 goodwill",
              "response_url": "https://hooks.slack.com/commands/1"}
    if trigger_id is not None:
        fields["trigger_id"] = trigger_id
    return urlencode(fields)


def send(client: Any, body: str, content_type: str = FORM, headers: dict[str, str] | None = None) -> Any:
    return client.post("/slack/events", content=body, headers=headers or signed(body, content_type))


def ledger(sapa: Sapa, customer_id: int) -> list[int]:
    with sapa.database.unit_of_work(read_only=True) as session:
        return list(session.execute(select(LoyaltyEntry.points).where(LoyaltyEntry.customer_id == customer_id)
                                    .order_by(LoyaltyEntry.id)).scalars())


def count(sapa: Sapa, model: Any, *where: Any) -> int:
    with sapa.database.unit_of_work(read_only=True) as session:
        return int(session.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def press_body(conversation_id: int, *, action: str = "claim", channel: str = "C0QUEUE", ts: str,
               trigger_id: str = "trig-press-1", action_ts: str = "1800000001.000001", user: str = "U0RINA") -> str:
    payload = {"type": "block_actions", "user": {"id": user, "username": user, "team_id": "T0SAPA"},
               "api_app_id": "A0SAPA", "token": "x", "trigger_id": trigger_id, "team": {"id": "T0SAPA"},
               "channel": {"id": channel, "name": "somewhere"},
               "container": {"type": "message", "message_ts": ts, "channel_id": channel},
               "message": {"type": "message", "ts": ts, "text": "card"},
               "actions": [{"type": "button", "action_id": f"sapa_{action}", "block_id": "actions",
                            "value": str(conversation_id), "action_ts": action_ts}]}
    return urlencode({"payload": json.dumps(payload)})


def reply_body(channel: str, thread_ts: str, text: str, *, event_id: str = "EvREPLY1",
               ts: str = "1800000002.000001", user: str = "U0RINA") -> str:
    return json.dumps({"token": "x", "team_id": "T0SAPA", "api_app_id": "A0SAPA", "type": "event_callback",
                       "event_id": event_id, "event_time": int(time.time()),
                       "event": {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts,
                                 "thread_ts": thread_ts, "event_ts": ts, "channel_type": "channel"}})


def agent_words(customer: Any) -> list[str]:
    return [m["text"] for m in customer.history() if m["sender"] == "agent"]


# -- slash commands ------------------------------------------------------------------------------------------


def test_a_replayed_points_adjustment_gives_the_points_once(client, customer, slack, sapa):
    conversation, _ = handed_off(customer, slack)
    body = adjust_body(conversation.customer_id)
    headers = signed(body, FORM)  # one signed request, captured and sent three times inside the window
    answers = [send(client, body, headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json()["text"].startswith(f"#{conversation.customer_id} Budi: +100 points (goodwill)")
    assert answers[1].json() == answers[0].json() == answers[2].json()  # the replay is told what the first was
    assert ledger(sapa, conversation.customer_id) == [100]
    assert count(sapa, AuditEntry, AuditEntry.action == "loyalty.adjust") == 1
    with sapa.database.unit_of_work(read_only=True) as session:
        [receipt] = session.execute(select(SlackRequest)).scalars().all()
    assert (receipt.request_key, receipt.slack_user) == ("trigger:trig-adjust-1", "U0SUPER")
    assert receipt.command.startswith("points adjust") and receipt.answer == answers[0].json()["text"]


def test_the_same_trigger_id_signed_again_later_is_still_the_same_request(client, customer, slack, sapa):
    conversation, _ = handed_off(customer, slack)
    body = adjust_body(conversation.customer_id)
    assert send(client, body).status_code == 200
    assert send(client, body, headers=signed(body, FORM, age_s=200)).status_code == 200
    assert ledger(sapa, conversation.customer_id) == [100]


def test_each_new_invocation_runs(client, customer, slack, sapa):
    conversation, _ = handed_off(customer, slack)
    for number in range(3):  # Slack gives every invocation its own trigger_id
        assert send(client, adjust_body(conversation.customer_id, trigger_id=f"trig-{number}")).status_code == 200
    assert ledger(sapa, conversation.customer_id) == [100, 100, 100]


def test_without_a_trigger_id_the_signed_body_and_timestamp_name_the_request(client, customer, slack, sapa):
    conversation, _ = handed_off(customer, slack)
    body = adjust_body(conversation.customer_id, trigger_id=None)
    headers = signed(body, FORM)
    assert send(client, body, headers=headers).status_code == 200
    assert send(client, body, headers=headers).status_code == 200  # the replay
    assert ledger(sapa, conversation.customer_id) == [100]
    other = adjust_body(conversation.customer_id, trigger_id=None, text=f"points adjust #{conversation.customer_id} "
                        "+100 second goodwill")
    assert send(client, other).status_code == 200  # another request: it runs
    assert ledger(sapa, conversation.customer_id) == [100, 100]
    with sapa.database.unit_of_work(read_only=True) as session:
        keys = session.execute(select(SlackRequest.request_key)).scalars().all()
    assert len(keys) == 2 and all(key.startswith("body-sha256:") for key in keys)


def test_a_command_that_failed_can_be_sent_again(client, customer, slack, sapa, monkeypatch):
    # Nothing of a command that raised is kept, its receipt neither: Slack's own retry (or the agent) may try again.
    conversation, _ = handed_off(customer, slack)
    import handlers.desk_commands as desk_commands

    real, calls = desk_commands.run_command, []

    def flaky(*args: Any, **kwargs: Any) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr("bot.http.slack_events.run_command", flaky)
    body = adjust_body(conversation.customer_id)
    headers = signed(body, FORM)
    with pytest.raises(RuntimeError):
        send(client, body, headers=headers)
    assert count(sapa, SlackRequest) == 0
    assert send(client, body, headers=headers).status_code == 200
    assert ledger(sapa, conversation.customer_id) == [100]


def test_a_replay_racing_the_original_runs_once(client, customer, slack, sapa):
    conversation, _ = handed_off(customer, slack)
    body = adjust_body(conversation.customer_id)
    headers = signed(body, FORM)
    statuses: list[int] = []
    start = threading.Barrier(4)

    def fire() -> None:
        start.wait()
        statuses.append(send(client, body, headers=headers).status_code)

    threads = [threading.Thread(target=fire) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 4
    assert ledger(sapa, conversation.customer_id) == [100]


def test_receipts_past_a_day_are_pruned(client, customer, slack, sapa, clock):
    conversation, _ = handed_off(customer, slack)
    assert send(client, adjust_body(conversation.customer_id, trigger_id="old")).status_code == 200
    clock.advance(timedelta(days=2))
    assert send(client, adjust_body(conversation.customer_id, trigger_id="new")).status_code == 200
    with sapa.database.unit_of_work(read_only=True) as session:
        assert session.execute(select(SlackRequest.request_key)).scalars().all() == ["trigger:new"]


# -- Events API and buttons ----------------------------------------------------------------------------------


def test_a_replayed_reply_without_a_retry_header_is_relayed_once(client, customer, slack, sapa, fakes):
    _, card_ts = handed_off(customer, slack)
    body = reply_body("C0QUEUE", card_ts, "Halo Budi, saya Rina.")
    headers = signed(body, JSON)
    for _ in range(3):  # no X-Slack-Retry-Num: not Slack retrying, someone replaying
        assert send(client, body, JSON, headers=headers).status_code == 200
        slack.settle()
    assert agent_words(customer) == ["Halo Budi, saya Rina."]
    assert count(sapa, Task, Task.kind == "slack.desk") == 1


def test_a_replayed_escalate_press_escalates_once(client, customer, slack, sapa):
    conversation = complained(customer, slack, "barang yang saya terima rusak, saya mau komplain")
    body = press_body(conversation.id, action="escalate", ts=conversation.desk_ts or "")
    headers = signed(body, FORM)
    for _ in range(3):
        assert send(client, body, headers=headers).status_code == 200
        slack.settle()
    with sapa.database.unit_of_work(read_only=True) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
    assert ticket.escalation_level == 1
    assert count(sapa, TicketEvent, TicketEvent.kind == "escalated") == 1
    assert len([p for p in slack.posts("C0ESC") if p.get("blocks")]) == 1


# -- a card is its channel and its ts ------------------------------------------------------------------------


def test_a_reply_in_another_channel_with_the_cards_ts_does_not_reach_the_customer(client, customer, slack, sapa):
    conversation, card_ts = handed_off(customer, slack)
    assert conversation.desk_channel == "C0QUEUE"
    for number, channel in enumerate(("C0OTHER", "C0ESC", "C0VIP", "D0DIRECT")):
        assert send(client, reply_body(channel, card_ts, f"bocor {channel}", event_id=f"EvOther{number}"),
                    JSON).status_code == 200
        slack.settle()
    assert agent_words(customer) == []
    assert conversation_of(sapa).status == "waiting"  # nobody took it by writing elsewhere
    assert send(client, reply_body("C0QUEUE", card_ts, "Halo Budi, saya Rina.", event_id="EvCard"),
                JSON).status_code == 200
    slack.settle()
    assert agent_words(customer) == ["Halo Budi, saya Rina."]


def test_two_cards_with_the_same_ts_in_two_channels_each_reach_their_own_customer(client, customer, slack, sapa):
    first, card_ts = handed_off(customer, slack)
    from tests.support.webchat import WebchatUser

    other = WebchatUser(client, sapa)
    handed_off(other, slack)
    second = conversation_of(sapa)
    with sapa.database.unit_of_work() as session:  # Slack could give a card in C0VIP the same ts
        moved = session.get_one(Conversation, second.id)
        moved.desk_channel, moved.desk_ts = "C0VIP", card_ts
    assert send(client, reply_body("C0VIP", card_ts, "Untuk pelanggan kedua", event_id="EvVip"),
                JSON).status_code == 200
    assert send(client, reply_body("C0QUEUE", card_ts, "Untuk pelanggan pertama", event_id="EvQueue"),
                JSON).status_code == 200
    slack.settle()
    assert agent_words(other) == ["Untuk pelanggan kedua"]
    assert agent_words(customer) == ["Untuk pelanggan pertama"]
    assert first.id != second.id


def test_a_vip_card_thread_in_the_vip_channel_still_reaches_the_customer(client, customer, slack, sapa):
    conversation, card_ts = handed_off(customer, slack)
    with sapa.database.unit_of_work() as session:  # as if the card had gone to the VIP channel
        session.get_one(Conversation, conversation.id).desk_channel = "C0VIP"
    assert send(client, reply_body("C0VIP", card_ts, "Halo Bu, saya Andi.", user="U0AMGR"), JSON).status_code == 200
    slack.settle()
    assert agent_words(customer) == ["Halo Bu, saya Andi."]


def test_a_press_in_a_channel_without_the_conversations_buttons_changes_nothing(client, customer, slack, sapa):
    conversation, card_ts = handed_off(customer, slack)
    for number, channel in enumerate(("C0OTHER", "D0DIRECT", "C0OPS")):
        body = press_body(conversation.id, channel=channel, ts=card_ts, trigger_id=f"trig-{number}",
                          action_ts=f"1800000001.00000{number}")
        assert send(client, body).status_code == 200
        slack.settle()
    assert conversation_of(sapa).status == "waiting" and agent_words(customer) == []
    assert count(sapa, AuditEntry, AuditEntry.action.like("conversation.%")) == 0


def test_the_escalation_cards_buttons_still_work_in_the_escalation_channel(client, customer, slack, sapa):
    conversation = complained(customer, slack, "saya kecewa, pesanan saya rusak dan belum diganti")
    slack.press("U0RINA", "escalate", conversation.id, conversation.desk_ts)
    slack.settle()
    assert slack.card("C0ESC")  # a card of its own, with its own ts, in the escalation channel
    body = press_body(conversation.id, action="claim", channel="C0ESC", ts="1800000099.000001", user="U0SUPER",
                      trigger_id="trig-esc")
    assert send(client, body).status_code == 200
    slack.settle()
    assert conversation_of(sapa).status == "with_agent"
