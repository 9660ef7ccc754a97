"""referrals and contact log

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 10:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outreach_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_outreach_log_member_id_members')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_outreach_log_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outreach_log'))
    )
    with op.batch_alter_table('outreach_log', schema=None) as batch_op:
        batch_op.create_index('ix_outreach_member_at', ['workspace_id', 'member_id', 'at'], unique=False)

    op.create_table('referral_invites',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('campaign', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_referral_invites_member_id_members')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_referral_invites_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_invites')),
    sa.UniqueConstraint('code', name=op.f('uq_referral_invites_code'))
    )
    with op.batch_alter_table('referral_invites', schema=None) as batch_op:
        batch_op.create_index('ix_referral_invites_member', ['workspace_id', 'member_id', 'campaign'], unique=False)

    op.create_table('referrals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('invite_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('prospect_name', sa.String(length=255), nullable=False),
    sa.Column('prospect_email', sa.String(length=255), nullable=False),
    sa.Column('prospect_company', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('held_reason', sa.String(length=300), nullable=True),
    sa.Column('deal_crm_id', sa.String(length=64), nullable=True),
    sa.Column('reward_grant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('converted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['invite_id'], ['referral_invites.id'], name=op.f('fk_referrals_invite_id_referral_invites')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_referrals_member_id_members')),
    sa.ForeignKeyConstraint(['reward_grant_id'], ['reward_grants.id'], name=op.f('fk_referrals_reward_grant_id_reward_grants')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_referrals_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referrals'))
    )
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.create_index('ix_referrals_advocate', ['workspace_id', 'member_id', 'created_at'], unique=False)
        batch_op.create_index('ix_referrals_workspace_email', ['workspace_id', 'prospect_email'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index('ix_referrals_workspace_email')
        batch_op.drop_index('ix_referrals_advocate')

    op.drop_table('referrals')
    with op.batch_alter_table('referral_invites', schema=None) as batch_op:
        batch_op.drop_index('ix_referral_invites_member')

    op.drop_table('referral_invites')
    with op.batch_alter_table('outreach_log', schema=None) as batch_op:
        batch_op.drop_index('ix_outreach_member_at')

    op.drop_table('outreach_log')
