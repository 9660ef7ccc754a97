"""insight panels

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('panels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('spec', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_panels_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_panels'))
    )
    with op.batch_alter_table('panels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_panels_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('panel_draws',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('panel_id', sa.Integer(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('manifest', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('drawn_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['panel_id'], ['panels.id'], name=op.f('fk_panel_draws_panel_id_panels'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_panel_draws'))
    )
    with op.batch_alter_table('panel_draws', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_panel_draws_panel_id'), ['panel_id'], unique=False)

    op.create_table('panel_members',
    sa.Column('panel_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('stratum', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=8), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=14), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_panel_members_member_id_members')),
    sa.ForeignKeyConstraint(['panel_id'], ['panels.id'], name=op.f('fk_panel_members_panel_id_panels'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('panel_id', 'member_id', name=op.f('pk_panel_members'))
    )
    with op.batch_alter_table('panel_members', schema=None) as batch_op:
        batch_op.create_index('ix_panel_members_member', ['member_id', 'status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('panel_members', schema=None) as batch_op:
        batch_op.drop_index('ix_panel_members_member')

    op.drop_table('panel_members')
    with op.batch_alter_table('panel_draws', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_panel_draws_panel_id'))

    op.drop_table('panel_draws')
    with op.batch_alter_table('panels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_panels_workspace_id'))

    op.drop_table('panels')
