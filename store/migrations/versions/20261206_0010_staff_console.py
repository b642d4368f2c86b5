"""staff console (issue 16): the agents table becomes the staff table (sign-in email, Argon2 password hash,
availability), signed-in sessions, one-time set-up and reset links, failed sign-ins; indexes for the console's queue
and a customer's transcript across channels.

The Slack desk's agents (synced from `slack.agents`) are already rows of `agents`: they stay, with no password until
an admin gives them one. Emails become unique and lower-cased; of two agents with the same email, the older keeps it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 17:50:41
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_failures',
    sa.Column('key', sa.String(length=400), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_started_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('locked_until', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_login_failures'))
    )
    op.create_table('staff_sessions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['agents.id'], name=op.f('fk_staff_sessions_staff_id_agents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_sessions_token_hash'))
    )
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_sessions_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_sessions_staff_id'), ['staff_id'], unique=False)

    op.create_table('staff_tokens',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=10), nullable=False),
    sa.Column('staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['agents.id'], name=op.f('fk_staff_tokens_staff_id_agents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_tokens_token_hash'))
    )
    agents = sa.table('agents', sa.column('id', sa.BigInteger()), sa.column('email', sa.String()))
    bind = op.get_bind()
    seen: set[str] = set()
    for agent_id, email in bind.execute(sa.select(agents.c.id, agents.c.email).order_by(agents.c.id)).all():
        normalised = email.strip().lower() if email and email.strip() else None
        if normalised in seen:
            normalised = None
        if normalised is not None:
            seen.add(normalised)
        if normalised != email:
            bind.execute(agents.update().where(agents.c.id == agent_id).values(email=normalised))
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_hash', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('password_changed_at', store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('availability', sa.String(length=10), server_default='away', nullable=False))
        batch_op.add_column(sa.Column('availability_changed_at', store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_seen_at', store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_agents_email'), ['email'])

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index('ix_conversations_owner_agent_id_status', ['owner_agent_id', 'status'], unique=False)
        batch_op.create_index('ix_conversations_status_handed_off_at', ['status', 'handed_off_at'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_customer_id_id', ['customer_id', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_customer_id_id')

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_status_handed_off_at')
        batch_op.drop_index('ix_conversations_owner_agent_id_status')

    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_agents_email'), type_='unique')
        batch_op.drop_column('last_seen_at')
        batch_op.drop_column('availability_changed_at')
        batch_op.drop_column('availability')
        batch_op.drop_column('password_changed_at')
        batch_op.drop_column('password_hash')

    op.drop_table('staff_tokens')
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_sessions_staff_id'))
        batch_op.drop_index(batch_op.f('ix_staff_sessions_expires_at'))

    op.drop_table('staff_sessions')
    op.drop_table('login_failures')
