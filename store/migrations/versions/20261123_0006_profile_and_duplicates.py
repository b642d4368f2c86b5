"""Intake, duplicates, outbox order: customers.email_asked_at, duplicate_dismissals, ix_outbox_recipient_status

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_asked_at', store.types.UTCDateTime(timezone=True), nullable=True))

    op.create_table(
        'duplicate_dismissals',
        sa.Column('id', big_id, autoincrement=True, nullable=False),
        sa.Column('customer_a_id', big_id, nullable=False),
        sa.Column('customer_b_id', big_id, nullable=False),
        sa.Column('dismissed_by', sa.String(length=120), nullable=False),
        sa.Column('dismissed_at', store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['customer_a_id'], ['customers.id'],
                                name=op.f('fk_duplicate_dismissals_customer_a_id_customers')),
        sa.ForeignKeyConstraint(['customer_b_id'], ['customers.id'],
                                name=op.f('fk_duplicate_dismissals_customer_b_id_customers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_duplicate_dismissals')),
        sa.UniqueConstraint('customer_a_id', 'customer_b_id',
                            name=op.f('uq_duplicate_dismissals_customer_a_id_customer_b_id')),
    )


    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_recipient_status', ['recipient', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_recipient_status')
    op.drop_table('duplicate_dismissals')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('email_asked_at')
