"""The Slack face of the desk: a Slack user's button press or thread reply goes through the desk service
(handlers/desk.py) as the member of staff behind that Slack user, and the outcome is said in Slack (an ephemeral
note, a Take over offer, a note in the card's thread). No rule lives here: who may act and what follows are the
service's."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.config import Settings
from handlers.desk import (
    DeskResult,
    act,
    add_note,
    agent_for,
    card_of_thread,
    may_act,
    press_channels,
    reply,
    thread_post,
)
from handlers.permissions import ROLE_NAMES, can
from handlers.slack_text import escape_slack
from store.messages import add_desk_post
from store.models import Agent, Conversation, Message

log = logging.getLogger(__name__)


def agent_action(session: Session, settings: Settings, *, action: str, conversation_id: int, slack_user: str,
                 now: datetime, channel: str | None = None) -> DeskResult:
    """A button pressed in Slack (or a claim made for a takeover). `channel` is where it was pressed: a press
    outside the channels where Sapa posts this conversation's buttons (press_channels) changes nothing."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        return DeskResult(False, "no such conversation", "not_found")
    if channel is not None and channel not in press_channels(settings, conversation):
        log.warning("Slack press %s for conversation %s in channel %s, where Sapa posts no buttons for it: ignored",
                    action, conversation.id, channel)
        return DeskResult(False, "not pressed on a Sapa message about this conversation", "invalid")
    agent = agent_for(session, slack_user)
    if agent is None or not may_act(agent):
        thread_post(session, conversation, f"⚠️ <@{slack_user}> {_who_cannot(agent)} and cannot "
                     f"{action.replace('_', ' ')} this conversation.", now=now)
        return DeskResult(False, "unknown agent" if agent is None else "not allowed", "forbidden")
    if action == "takeover":
        result = take_over(session, settings, conversation, agent, now=now)
        tell_agent(session, conversation, slack_user, result.note, now=now)
        return result
    result = act(session, settings, action=action, conversation_id=conversation.id, agent=agent, now=now,
                 face="slack")
    if result.code == "already_yours":
        tell_agent(session, conversation, slack_user, f"You already hold conversation #{conversation.id}.", now=now)
    elif result.code == "held_by_other":
        _say_held(session, conversation, agent, result.holder or "someone", now=now)
    return result


def _say_held(session: Session, conversation: Conversation, agent: Agent, holder: str, *, now: datetime) -> None:
    """A claim refused: the presser hears who holds it; a supervisor gets the explicit way (Take over)."""
    takes_over = can(agent.role, "conversation.reassign")
    advice = (f"To take it over, press Take over or use `/sapa takeover {conversation.id}`; "
              f"{escape_slack(holder)} will be told." if takes_over else
              f"Leave a note in the thread, or ask a supervisor to take it over (`/sapa takeover "
              f"{conversation.id}`).")
    tell_agent(session, conversation, agent.slack_user_id or "", f"{escape_slack(holder)} already holds conversation "
               f"#{conversation.id}; it was not claimed. {advice}", now=now, takeover=takes_over)


def take_over(session: Session, settings: Settings, conversation: Conversation, agent: Agent, *,
              now: datetime) -> DeskResult:
    """A takeover from Slack (the Take over button, `/sapa takeover`): the service's, said the Slack way."""
    result = act(session, settings, action="takeover", conversation_id=conversation.id, agent=agent, now=now,
                 face="slack")
    number = f"#{conversation.id}"
    words = {
        "forbidden": "Only supervisors and management can take over a conversation another agent holds; ask one of "
                     "them.",
        "closed": f"Conversation {number} is closed.",
        "claimed": f"Nobody held conversation {number}: you have claimed it.",
        "already_yours": f"You already hold conversation {number}.",
        "done": f"You now hold conversation {number}; {escape_slack(result.holder or '')} was told in its thread.",
    }
    return DeskResult(result.ok, words.get(result.code, result.note), result.code, result.holder)


def agent_reply(session: Session, settings: Settings, *, slack_user: str, thread_ts: str, text: str,
                now: datetime, files: Sequence[Mapping[str, Any]] = (), channel: str | None = None) -> DeskResult:
    """An agent wrote in a card's thread: to the customer, or an internal note if it starts with note:.

    The thread is the card's when `channel` and `thread_ts` are the card's channel and ts (card_of_thread).
    `files` (channels.slack.SharedFile.as_dict) go with the text as the channel's media (Telegram, WhatsApp,
    MMS) or as links (web chat); a file that cannot go is named in the thread with the reason.
    """
    conversation = card_of_thread(session, channel, thread_ts)
    if conversation is None:
        return DeskResult(False, "this thread is not a Sapa conversation", "not_found")
    agent = agent_for(session, slack_user)
    if agent is None or not may_act(agent):
        thread_post(session, conversation, f"⚠️ <@{slack_user}> {_who_cannot(agent)}: nothing was sent to the "
                     "customer.", now=now)
        return DeskResult(False, "unknown agent" if agent is None else "not allowed", "forbidden")
    if text.strip().lower().startswith("note:"):
        return add_note(session, settings, conversation_id=conversation.id, agent=agent, text=text.strip()[5:],
                        now=now, face="slack")
    result = reply(session, settings, conversation_id=conversation.id, agent=agent, text=text, now=now, files=files,
                   face="slack")
    if result.code == "closed":
        thread_post(session, conversation, "⚠️ This conversation is closed; the customer was not messaged.",
                     now=now)
    elif result.code == "empty":
        thread_post(session, conversation, "⚠️ The message was empty; nothing was sent to the customer.", now=now)
    return result


def _who_cannot(agent: Agent | None) -> str:
    """Why a Slack user's request was refused, for the thread."""
    if agent is None:
        return "is not a registered Sapa agent"
    return f"({ROLE_NAMES.get(agent.role, {}).get('en', agent.role)}) may not work on conversations"


def tell_agent(session: Session, conversation: Conversation, slack_user: str, text: str, *, now: datetime,
               takeover: bool = False) -> None:
    """A note only `slack_user` sees (Slack ephemeral), in the card's channel; `takeover` adds a Take over button."""
    channel = conversation.desk_channel
    if channel is None:
        return
    options: dict[str, Any] = {"ephemeral_user": slack_user}
    if takeover:
        options["takeover_of"] = conversation.id
    add_desk_post(session, recipient=channel, text=text, now=now, conversation_id=conversation.id, options=options)


def file_not_delivered(session: Session, message_id: int, file_name: str | None, reason: str, *,
                       now: datetime) -> None:
    """An agent's file could not be fetched from Slack for the customer: say so in the card's thread."""
    message = session.get(Message, message_id)
    if message is None:
        return
    conversation = session.get_one(Conversation, message.conversation_id)
    agent = session.get(Agent, message.agent_id) if message.agent_id else None
    who = f"<@{agent.slack_user_id}> " if agent is not None and agent.slack_user_id else ""
    names = file_name or ", ".join(str(m.get("file_name") or "a file") for m in message.media or []) or "a file"
    thread_post(session, conversation, f"⚠️ {who}{escape_slack(names)} did not reach the customer: "
                 f"{escape_slack(reason)}. Share it again, or send a link.", now=now)
