"""knowledge base (issue 17): revisions of FAQ entries and reply templates edited in the console.

The current text of an entry is its latest revision; an entry without revisions is the `config.yml` seed, so a new
installation starts from config and nothing is copied here until someone edits.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 19:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('knowledge_revisions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('content', sa.JSON(), nullable=True),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=True),
    sa.Column('restored_from_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['restored_from_id'], ['knowledge_revisions.id'],
                            name=op.f('fk_knowledge_revisions_restored_from_id_knowledge_revisions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_knowledge_revisions'))
    )
    with op.batch_alter_table('knowledge_revisions', schema=None) as batch_op:
        batch_op.create_index('ix_knowledge_revisions_kind_key_id', ['kind', 'key', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('knowledge_revisions', schema=None) as batch_op:
        batch_op.drop_index('ix_knowledge_revisions_kind_key_id')

    op.drop_table('knowledge_revisions')
