"""rewards ledger

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reward_grants',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('hold_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('needs_approval', sa.Boolean(), nullable=False),
    sa.Column('corrects_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['corrects_id'], ['reward_grants.id'], name=op.f('fk_reward_grants_corrects_id_reward_grants')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_reward_grants_member_id_members')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_reward_grants_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reward_grants')),
    sa.UniqueConstraint('workspace_id', 'idempotency_key', name=op.f('uq_reward_grants_workspace_id_idempotency_key'))
    )
    with op.batch_alter_table('reward_grants', schema=None) as batch_op:
        batch_op.create_index('ix_reward_grants_member', ['workspace_id', 'member_id'], unique=False)

    op.create_table('reward_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('grant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('by', sa.String(length=120), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['grant_id'], ['reward_grants.id'], name=op.f('fk_reward_lines_grant_id_reward_grants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reward_lines'))
    )
    with op.batch_alter_table('reward_lines', schema=None) as batch_op:
        batch_op.create_index('ix_reward_lines_grant', ['grant_id', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('reward_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_reward_lines_grant')

    op.drop_table('reward_lines')
    with op.batch_alter_table('reward_grants', schema=None) as batch_op:
        batch_op.drop_index('ix_reward_grants_member')

    op.drop_table('reward_grants')
