"""rate buckets (issue 18): provider rate limits shared by every replica on PostgreSQL.

One row per token bucket (a Telegram chat, a Twilio sender, a channel's broadcasts...), taken from with one
atomic upsert per send (store/rate_buckets.py), so N replicas together keep the configured rate instead of N times
it. SQLite runs one process and keeps its buckets in memory; the table exists there too, unused, so both backends
have one schema.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 00:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rate_buckets',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('tokens', sa.Float(), nullable=False),
    sa.Column('as_of', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_buckets'))
    )


def downgrade() -> None:
    op.drop_table('rate_buckets')
