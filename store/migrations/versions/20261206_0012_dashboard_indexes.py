"""dashboard indexes (issue 17): the period queries of `sapa report` and the console's dashboard.

Every number of the report is a range over one timestamp (messages and conversations by creation, tickets by
creation and resolution, escalations, survey answers and questions); without these each was a full table scan,
several per page (bench/dashboard.py: 4.4 s for a week on SQLite with a million messages). The two wide ones
cover their queries, so counting a period reads the index alone.

`daily_counts` keeps the messages and conversations of each completed local day for everyone, so a year's charts
read 365 small rows instead of a million index entries; the VIPs' share is counted live from the two
`customer_id, ...` indexes (bot/reports/daily_counts.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 21:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

INDEXES = (
    ('customers', 'ix_customers_is_vip', ['is_vip']),
    ('conversations', 'ix_conversations_opened_at_channel', ['opened_at', 'channel', 'customer_id']),
    ('messages', 'ix_messages_created_at_channel_direction', ['created_at', 'channel', 'direction', 'customer_id']),
    ('messages', 'ix_messages_sender_created_at', ['sender', 'created_at']),
    ('messages', 'ix_messages_customer_id_created_at', ['customer_id', 'created_at', 'channel', 'direction']),
    ('conversations', 'ix_conversations_customer_id_opened_at', ['customer_id', 'opened_at', 'channel']),
    ('tickets', 'ix_tickets_created_at', ['created_at']),
    ('tickets', 'ix_tickets_resolved_at', ['resolved_at']),
    ('ticket_events', 'ix_ticket_events_kind_created_at', ['kind', 'created_at']),
    ('surveys', 'ix_surveys_kind_answered_at', ['kind', 'answered_at']),
    ('surveys', 'ix_surveys_kind_asked_at', ['kind', 'asked_at']),
)


def upgrade() -> None:
    for table, name, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)
    op.create_table('daily_counts',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('what', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('computed_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('day', 'what', 'channel', 'direction', name=op.f('pk_daily_counts'))
    )


def downgrade() -> None:
    op.drop_table('daily_counts')
    for table, name, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
