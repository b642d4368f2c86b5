"""VIP identification: transactions, customers.vip_reason and customers.vip_since

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 09:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
    op.create_table(
        'transactions',
        sa.Column('id', big_id, autoincrement=True, nullable=False),
        sa.Column('customer_id', big_id, nullable=False),
        sa.Column('external_id', sa.String(length=120), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('occurred_at', store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('source', sa.String(length=20), nullable=False),
        sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_transactions_customer_id_customers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_transactions')),
        sa.UniqueConstraint('external_id', name=op.f('uq_transactions_external_id')),
    )
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transactions_customer_id'), ['customer_id'], unique=False)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('vip_reason', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('vip_since', store.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('vip_since')
        batch_op.drop_column('vip_reason')

    op.drop_table('transactions')
