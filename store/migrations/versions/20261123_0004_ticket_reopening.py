"""ticket reopening, misunderstandings, surveys: tickets.reopened_count, conversations.misunderstood, surveys

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 07:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
    op.create_table(
        'surveys',
        sa.Column('id', big_id, autoincrement=True, nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('customer_id', big_id, nullable=False),
        sa.Column('ticket_id', big_id, nullable=True),
        sa.Column('conversation_id', big_id, nullable=True),
        sa.Column('agent_id', big_id, nullable=True),
        sa.Column('channel', sa.String(length=32), nullable=False),
        sa.Column('category', sa.String(length=60), nullable=True),
        sa.Column('tier', sa.String(length=20), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('score', sa.Integer(), nullable=True),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('asked_at', store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('answered_at', store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_surveys_agent_id_agents')),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'],
                                name=op.f('fk_surveys_conversation_id_conversations')),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_surveys_customer_id_customers')),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_surveys_ticket_id_tickets')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_surveys')),
    )
    with op.batch_alter_table('surveys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_surveys_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_surveys_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_surveys_ticket_id'), ['ticket_id'], unique=False)

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('misunderstood', sa.Integer(), server_default=sa.text('0'), nullable=False))

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reopened_count', sa.Integer(), server_default=sa.text('0'), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('reopened_count')

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_column('misunderstood')

    op.drop_table('surveys')
