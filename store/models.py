"""The data model of DESIGN.md, typed with SQLAlchemy 2 Mapped columns."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text  # "text" is also a column name below
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from store.types import UTCDateTime

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT ids on PostgreSQL; SQLite only auto-increments a plain INTEGER primary key.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        # The dashboard's VIP section (issue 17): `customer_id IN (the VIPs)` reads the few VIPs from here.
        Index("ix_customers_is_vip", "is_vip"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)  # E.164
    email: Mapped[str | None] = mapped_column(String(320), index=True)  # lower-cased
    language: Mapped[str | None] = mapped_column(String(8))
    is_vip: Mapped[bool] = mapped_column(Boolean, default=False)
    vip_tier: Mapped[str | None] = mapped_column(String(40))
    vip_reason: Mapped[str | None] = mapped_column(String(300))  # why the rules made them VIP (VIP-1.1)
    vip_since: Mapped[datetime | None]
    email_asked_at: Mapped[datetime | None]  # CRM-1.1: the optional email is asked for once, ever
    # IANA zone for quiet hours of broadcasts (CRM-4.3); None: the company's timezone.
    timezone: Mapped[str | None] = mapped_column(String(64))
    account_manager_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    source: Mapped[str] = mapped_column(String(40))  # the channel or "import" that created it
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    identities: Mapped[list[ChannelIdentity]] = relationship(back_populates="customer")


class ChannelIdentity(Base):
    """How a customer is addressed on one channel. Unique per channel + address."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(200))
    language_hint: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime]
    last_inbound_at: Mapped[datetime | None]
    # Set when the provider says this address can no longer be reached (blocked bot, invalid
    # number, unsubscribed); cleared when the customer writes again.
    undeliverable_reason: Mapped[str | None] = mapped_column(String(300))
    undeliverable_at: Mapped[datetime | None]

    customer: Mapped[Customer] = relationship(back_populates="identities")


class Agent(Base):
    """A member of staff: everyone who works in Sapa, from the web console, from Slack, or both (issue 16).

    The table keeps its first name, `agents`; "agent" in the code means any staff member acting on a conversation.
    """

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slack_user_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    # customer_service, account_manager, supervisor, management, marketing, admin (handlers/permissions.py)
    role: Mapped[str] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(String(320), unique=True)  # lower-cased; the console sign-in name
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # False: disabled, cannot sign in or act
    created_at: Mapped[datetime]
    password_hash: Mapped[str | None] = mapped_column(String(255))  # Argon2id; None: cannot sign in to the console
    password_changed_at: Mapped[datetime | None]
    availability: Mapped[str] = mapped_column(String(10), default="away", server_default="away")  # online, away
    availability_changed_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]  # the last console request


class StaffSession(Base):
    """A signed-in browser. Only the SHA-256 of the cookie's token is kept: a copy of the table signs nobody in."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))


class StaffToken(Base):
    """A one-time link: the first admin's set-up link, or a password reset (`sapa staff reset-password`)."""

    __tablename__ = "staff_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(10))  # setup, reset
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class LoginFailure(Base):
    """Failed sign-ins per account ("account:<email>") and per address ("address:<ip>"), in the database so that
    every replica counts the same attempts."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_customer_status", "customer_id", "status"),
        # The console's queue: the open human-held conversations, oldest handoff first (store/inbox.py).
        Index("ix_conversations_status_handed_off_at", "status", "handed_off_at"),
        Index("ix_conversations_owner_agent_id_status", "owner_agent_id", "status"),
        # The dashboard's conversations per channel per day (issue 17): a covering range scan.
        Index("ix_conversations_opened_at_channel", "opened_at", "channel", "customer_id"),
        Index("ix_conversations_customer_id_opened_at", "customer_id", "opened_at", "channel"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    identity_id: Mapped[int] = mapped_column(ForeignKey("channel_identities.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20))  # bot, waiting, with_agent, closed
    owner_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    language: Mapped[str] = mapped_column(String(8))
    pending_question: Mapped[str | None] = mapped_column(String(60))  # e.g. "ask_name"
    pending_data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Messages in a row the bot could not understand; the second one hands the conversation to a human.
    misunderstood: Mapped[int] = mapped_column(Integer, default=0, server_default=sql_text("0"))
    opened_at: Mapped[datetime]
    last_message_at: Mapped[datetime]
    last_inbound_at: Mapped[datetime | None]  # the WhatsApp 24-hour window starts here
    closed_at: Mapped[datetime | None]
    # The agent-desk card for this conversation: Slack channel and the card's ts (its thread).
    desk_channel: Mapped[str | None] = mapped_column(String(40))
    desk_ts: Mapped[str | None] = mapped_column(String(40), index=True)
    handed_off_at: Mapped[datetime | None]


class Message(Base):
    """The interaction log: every inbound and outbound message, bot, agent or broadcast."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_message_id"),
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        Index("ix_messages_customer_id_id", "customer_id", "id"),  # a customer's transcript across channels, paged
        # store.messages.replies_to() on every inbound message (issue 15, item 9: it was a full scan).
        Index("ix_messages_reply_to_id", "reply_to_id"),
        # Delivery status callbacks name only the provider's id (store.messages.apply_delivery).
        Index("ix_messages_provider_message_id", "provider_message_id"),
        # The report's and dashboard's message counts per channel, direction and day (issue 17): covering.
        Index("ix_messages_created_at_channel_direction", "created_at", "channel", "direction", "customer_id"),
        # The VIPs' share of those counts, counted live per VIP (bot/reports/daily_counts.py): covering.
        Index("ix_messages_customer_id_created_at", "customer_id", "created_at", "channel", "direction"),
        # Agents' replies in a period (the dashboard's workload): few rows among the customers' and the bot's.
        Index("ix_messages_sender_created_at", "sender", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))  # indexed by the composites above
    channel: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(8))  # in, out, note (an agent's internal note)
    sender: Mapped[str] = mapped_column(String(10))  # customer, bot, agent, system
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    text: Mapped[str] = mapped_column(Text)
    buttons: Mapped[list[Any]] = mapped_column(default=list)
    media: Mapped[list[Any]] = mapped_column(default=list)
    button_payload: Mapped[str | None] = mapped_column(String(200))
    intent: Mapped[str | None] = mapped_column(String(40))
    confidence: Mapped[float | None] = mapped_column(Float)
    language: Mapped[str | None] = mapped_column(String(8))
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    delivery_status: Mapped[str | None] = mapped_column(String(12))  # queued, sent, delivered, read, failed
    delivery_error: Mapped[str | None] = mapped_column(String(300))
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))  # the inbound it answers
    edit_of_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))  # a customer's edit of that message
    # Channel extras (deep link, shared contact); the server default fills rows older than the column.
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=sql_text("'{}'"))
    created_at: Mapped[datetime]


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        # The report's cohort (opened in a period) and its "tickets resolved" (issue 17's dashboard).
        Index("ix_tickets_created_at", "created_at"),
        Index("ix_tickets_resolved_at", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    kind: Mapped[str] = mapped_column(String(20))  # complaint, request
    status: Mapped[str] = mapped_column(String(20), index=True)  # open, in_progress, resolved, closed
    priority: Mapped[int] = mapped_column(Integer, default=0)
    category: Mapped[str | None] = mapped_column(String(60))
    root_cause: Mapped[str | None] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    assigned_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    first_response_due_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    first_responded_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    # How often the customer said "not solved" after a resolution; each round gets its own SLA checks.
    reopened_count: Mapped[int] = mapped_column(Integer, default=0, server_default=sql_text("0"))
    resolution: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TicketEvent(Base):
    """The escalation log: every change to a ticket, who made it and when."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_kind_created_at", "kind", "created_at"),)  # escalations in a period

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # opened, escalated, assigned, resolved, reopened, ...
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class Survey(Base):
    """A satisfaction question put to a customer and their answer: CSAT (1-5) after a ticket, NPS (0-10)."""

    __tablename__ = "surveys"
    __table_args__ = (  # the report's answers and questions in a period (issue 17's dashboard)
        Index("ix_surveys_kind_answered_at", "kind", "answered_at"),
        Index("ix_surveys_kind_asked_at", "kind", "asked_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # csat, nps
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    # Copied when asked, so reports per agent, channel, category and tier need no joins and survive edits.
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    channel: Mapped[str] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(60))
    tier: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12), index=True)  # asked, answered
    score: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    asked_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]


class Transaction(Base):
    """A purchase, imported from CSV or posted to the API; the VIP rules sum them (VIP-1.1)."""

    __tablename__ = "transactions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(120), unique=True)  # the sender's id: imports are idempotent
    amount: Mapped[int] = mapped_column(BigInteger)  # whole rupiah
    occurred_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(20))  # csv, api
    created_at: Mapped[datetime]


class DuplicateDismissal(Base):
    """An agent said two customers flagged as possible duplicates are different people: never flag them again.

    Stored with the lower id first, so one pair has one row."""

    __tablename__ = "duplicate_dismissals"
    __table_args__ = (UniqueConstraint("customer_a_id", "customer_b_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_a_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    customer_b_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    dismissed_by: Mapped[str] = mapped_column(String(120))
    dismissed_at: Mapped[datetime]


class Task(Base):
    """A durable scheduled job. The row is the truth; APScheduler only makes processes look for due rows."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_status_due_at", "status", "due_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(60))
    due_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(12))  # pending, running, done, failed, cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class OutboxItem(Base):
    """Every outbound message is a row here first and a send second."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        # Per-customer ordering looks for older unfinished rows to the same address (store.messages.waiting_behind).
        Index("ix_outbox_recipient_status", "recipient", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # None for agent-desk posts (Slack cards, relays): they are not part of a customer's history.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), unique=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    channel: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)  # text, buttons, template, variables
    status: Mapped[str] = mapped_column(String(12))  # pending, sending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_at: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # Committed just before an at-most-once row (a broadcast) goes to the provider: a row found `sending` with
    # this set was interrupted mid-send and is reconciled with the provider, not blindly sent again.
    send_started_at: Mapped[datetime | None]


class Consent(Base):
    """What a customer agreed to (or withdrew), when and through which channel. Append-only."""

    __tablename__ = "consents"
    # A customer's latest consent for a purpose (ORDER BY recorded_at DESC, id DESC LIMIT 1) read from the index
    # (migration 0014: every broadcast recipient and consent check sorted them before).
    __table_args__ = (
        Index("ix_consents_customer_id_purpose_recorded_at", "customer_id", "purpose", "recorded_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    purpose: Mapped[str] = mapped_column(String(40))  # data_processing, marketing
    granted: Mapped[bool] = mapped_column(Boolean)
    channel: Mapped[str] = mapped_column(String(32))
    evidence: Mapped[str | None] = mapped_column(Text)  # the words or button that gave it
    recorded_at: Mapped[datetime]


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    actor: Mapped[str] = mapped_column(String(80))  # "system", "cli", "agent:12", ...
    action: Mapped[str] = mapped_column(String(60))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str | None] = mapped_column(String(60))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class WebchatSession(Base):
    """A browser session the web chat issued; its token becomes the channel address on first message."""

    __tablename__ = "webchat_sessions"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime]


# --- CRM-4: analysis, loyalty programme, broadcasts ---------------------------------------------------------


class CustomerScore(Base):
    """CRM-4.1: a customer's recency / frequency / monetary scores (1..5) and segment, recomputed periodically."""

    __tablename__ = "customer_scores"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    recency: Mapped[int] = mapped_column(Integer)
    frequency: Mapped[int] = mapped_column(Integer)
    monetary: Mapped[int] = mapped_column(Integer)
    segment: Mapped[str] = mapped_column(String(30), index=True)  # champions, loyal, potential, at_risk, new, ...
    last_purchase_at: Mapped[datetime | None]
    purchases: Mapped[int] = mapped_column(Integer)
    spent: Mapped[int] = mapped_column(BigInteger)  # rupiah in the scoring window
    interactions: Mapped[int] = mapped_column(Integer)  # inbound messages in the scoring window
    computed_at: Mapped[datetime]


class Segment(Base):
    """CRM-4.1: a named list marketing saved, defined by filters (evaluated when used, so it stays current)."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class LoyaltyAccount(Base):
    """CRM-4.2: the running balance and tier. The balance is checked (never negative) and always equals the
    sum of the customer's ledger rows; every change writes a ledger row in the same transaction."""

    __tablename__ = "loyalty_accounts"
    __table_args__ = (CheckConstraint("balance >= 0", name="balance_not_negative"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_points: Mapped[int] = mapped_column(BigInteger, default=0)  # earned, ever (tiers may use it)
    tier: Mapped[str] = mapped_column(String(40))
    tier_since: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class LoyaltyEntry(Base):
    """CRM-4.2: the append-only points ledger. Earn rows carry `remaining` and `expires_at`; redemptions and
    expiry consume the oldest earn rows first (FIFO), so expiring points can be told exactly."""

    __tablename__ = "loyalty_ledger"
    __table_args__ = (
        Index("ix_loyalty_ledger_customer_id_id", "customer_id", "id"),
        Index("ix_loyalty_ledger_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(12))  # earn, redeem, expire, adjust
    points: Mapped[int] = mapped_column(BigInteger)  # signed: + earn / positive adjust, - redeem / expire
    balance_after: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger, default=0)  # of a positive row: not yet spent or expired
    expires_at: Mapped[datetime | None]
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"), unique=True)  # earn once
    redemption_id: Mapped[int | None] = mapped_column(ForeignKey("redemptions.id"))
    reason: Mapped[str] = mapped_column(String(300))
    actor: Mapped[str] = mapped_column(String(80))  # "system", "cli", "agent:12", "customer"
    created_at: Mapped[datetime]


class Reward(Base):
    """CRM-4.2: the rewards catalogue. `stock` None means unlimited; otherwise it never goes below zero."""

    __tablename__ = "rewards"
    __table_args__ = (CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    names: Mapped[dict[str, Any]] = mapped_column(default=dict)  # language -> name
    points_cost: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int | None] = mapped_column(Integer)
    min_tier: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Redemption(Base):
    """CRM-4.2: points exchanged for a reward; the voucher code is what the customer shows."""

    __tablename__ = "redemptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id"), index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    voucher_code: Mapped[str] = mapped_column(String(40), unique=True)
    status: Mapped[str] = mapped_column(String(12))  # issued, used, cancelled
    channel: Mapped[str] = mapped_column(String(32))  # the chat channel, "slack" or "cli"
    actor: Mapped[str] = mapped_column(String(80))
    # CRM-4.4: the broadcast this redemption is attributed to (the customer redeemed within the window after it).
    broadcast_id: Mapped[int | None] = mapped_column(ForeignKey("broadcasts.id"), index=True)
    created_at: Mapped[datetime]


class Broadcast(Base):
    """CRM-4.3: a segment + a message per language + channels in preference order + a schedule."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id"))
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the segment's filters, as used
    messages: Mapped[dict[str, Any]] = mapped_column(default=dict)  # language -> template text
    channels: Mapped[list[Any]] = mapped_column(default=list)  # preference order, e.g. ["whatsapp", "sms"]
    # draft, scheduled, selecting, sending, paused, cancelled, done
    status: Mapped[str] = mapped_column(String(12), index=True)
    scheduled_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class BroadcastRecipient(Base):
    """One customer of one broadcast: chosen once (unique), queued into the outbox once (outbox_id)."""

    __tablename__ = "broadcast_recipients"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "customer_id"),
        Index("ix_broadcast_recipients_broadcast_id_status", "broadcast_id", "status"),
        Index("ix_broadcast_recipients_customer_id_queued_at", "customer_id", "queued_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(12))  # pending, queued, skipped
    skip_reason: Mapped[str | None] = mapped_column(String(120))
    not_before: Mapped[datetime | None]  # quiet hours in the customer's timezone
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"), unique=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), unique=True)
    queued_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class SlackRequest(Base):
    """A slash command Sapa ran, by its request (issue 15): a replay of the same signed request within Slack's
    5-minute window finds its row, gets `answer` again and changes nothing (store/slack_requests.py)."""

    __tablename__ = "slack_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # trigger:<Slack's trigger_id>, else body:<sha256 of the signed timestamp and body>; hashed when long.
    request_key: Mapped[str] = mapped_column(String(200), unique=True)
    slack_user: Mapped[str] = mapped_column(String(255))
    command: Mapped[str] = mapped_column(Text)  # what was typed after /sapa
    answer: Mapped[str] = mapped_column(Text)  # what Slack showed the agent
    created_at: Mapped[datetime] = mapped_column(index=True)  # rows past the replay window are pruned


class KnowledgeRevision(Base):
    """One saved version of a FAQ entry or a reply template (issue 17), written by the console.

    The current text of an entry is its latest revision (highest id for its kind + key); an entry with no revision
    is still the `config.yml` seed. `content` is the whole FAQ entry (id, question, answer, examples, terms) or a
    template's {language: text}; None when the entry was deleted. History is never rewritten: a rollback is a new
    revision with `restored_from_id` naming the revision it copied."""

    __tablename__ = "knowledge_revisions"
    __table_args__ = (Index("ix_knowledge_revisions_kind_key_id", "kind", "key", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # faq, template
    key: Mapped[str] = mapped_column(String(120))  # the FAQ entry's id or the template's name
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(String(300))
    restored_from_id: Mapped[int | None] = mapped_column(ForeignKey("knowledge_revisions.id"))
    created_at: Mapped[datetime]


class DailyCount(Base):
    """A completed local day's messages or conversations opened per channel (and direction), for everyone: the
    dashboard's charts read these instead of scanning a year (bot/reports/daily_counts.py says why they stay right).
    A row with channel "" marks a day as computed, so a day with nothing is not counted again."""

    __tablename__ = "daily_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)  # the company's local day
    what: Mapped[str] = mapped_column(String(16), primary_key=True)  # messages, conversations
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    direction: Mapped[str] = mapped_column(String(8), primary_key=True)  # in, out; "" for conversations
    count: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime]


class RateBucket(Base):
    """A provider rate limit's token bucket, shared by every replica on PostgreSQL (issue 18): `tokens` left as of
    `as_of`, refilled at the rate the sender asks for (store/rate_buckets.py). SQLite keeps its buckets in the
    process (bot/ratelimit.py): it runs one."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # e.g. telegram:global, sms:sender:<sender>
    tokens: Mapped[float] = mapped_column(Float)
    as_of: Mapped[datetime]
