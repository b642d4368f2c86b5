"""hot-path indexes (issue 18): one index fewer written per message, one that answers the latest consent.

`ix_messages_customer_id` (customer_id) repeats the first column of `ix_messages_customer_id_id` (customer_id, id)
and of `ix_messages_customer_id_created_at`: every message, inbound, reply or broadcast, paid for it and no query
needed it. The latest consent of a customer for a purpose (`ORDER BY recorded_at DESC, id DESC LIMIT 1`, for every
broadcast recipient and consent check) sorted that customer's consents each time; (customer_id, purpose,
recorded_at, id) reads it from the index, and replaces `ix_consents_customer_id`.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 04:50:00
"""
from __future__ import annotations

from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_messages_customer_id', table_name='messages')
    op.create_index('ix_consents_customer_id_purpose_recorded_at', 'consents',
                    ['customer_id', 'purpose', 'recorded_at', 'id'], unique=False)
    op.drop_index('ix_consents_customer_id', table_name='consents')


def downgrade() -> None:
    op.create_index('ix_consents_customer_id', 'consents', ['customer_id'], unique=False)
    op.drop_index('ix_consents_customer_id_purpose_recorded_at', table_name='consents')
    op.create_index('ix_messages_customer_id', 'messages', ['customer_id'], unique=False)
