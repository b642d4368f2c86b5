"""agent desk

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 05:23:32.009493
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('desk_channel', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('desk_ts', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('handed_off_at', store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_conversations_desk_ts'), ['desk_ts'], unique=False)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_manager_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_customers_account_manager_id_agents'), 'agents', ['account_manager_id'], ['id'])

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.alter_column('direction', existing_type=sa.String(length=3), type_=sa.String(length=8),
                              existing_nullable=False)

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('conversation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.alter_column('message_id',
               existing_type=sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
               nullable=True)
        batch_op.create_foreign_key(batch_op.f('fk_outbox_conversation_id_conversations'), 'conversations', ['conversation_id'], ['id'])


def downgrade() -> None:
    # Desk posts have no message row; the older schema cannot hold them.
    op.execute("DELETE FROM outbox WHERE message_id IS NULL")
    op.execute("DELETE FROM messages WHERE direction = 'note'")
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.alter_column('direction', existing_type=sa.String(length=8), type_=sa.String(length=3),
                              existing_nullable=False)
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_conversation_id_conversations'), type_='foreignkey')
        batch_op.alter_column('message_id',
               existing_type=sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
               nullable=False)
        batch_op.drop_column('conversation_id')

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_customers_account_manager_id_agents'), type_='foreignkey')
        batch_op.drop_column('account_manager_id')

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversations_desk_ts'))
        batch_op.drop_column('handed_off_at')
        batch_op.drop_column('desk_ts')
        batch_op.drop_column('desk_channel')

