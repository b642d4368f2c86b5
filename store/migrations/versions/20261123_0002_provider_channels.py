"""provider channels

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 05:01:28.551501
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('channel_identities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('undeliverable_reason', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('undeliverable_at', store.types.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('edit_of_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('meta', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
        batch_op.create_foreign_key(batch_op.f('fk_messages_edit_of_id_messages'), 'messages', ['edit_of_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_messages_edit_of_id_messages'), type_='foreignkey')
        batch_op.drop_column('meta')
        batch_op.drop_column('edit_of_id')

    with op.batch_alter_table('channel_identities', schema=None) as batch_op:
        batch_op.drop_column('undeliverable_at')
        batch_op.drop_column('undeliverable_reason')

