"""Hot-path indexes (issue 15, item 9): ix_messages_reply_to_id (replies_to() on every inbound message) and
ix_messages_provider_message_id (delivery status callbacks); both were full scans of messages

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 12:00:00
"""
from __future__ import annotations

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_reply_to_id', ['reply_to_id'], unique=False)
        batch_op.create_index('ix_messages_provider_message_id', ['provider_message_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_provider_message_id')
        batch_op.drop_index('ix_messages_reply_to_id')
