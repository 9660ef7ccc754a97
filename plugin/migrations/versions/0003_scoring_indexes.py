"""indexes that let scoring read activities from indexes alone (by type, by member, sentiments)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index('ix_activities_member_time')
        batch_op.create_index('ix_activities_member_time', ['member_id', 'occurred_at', 'type'], unique=False)
        batch_op.drop_index('ix_activities_type_time')
        batch_op.create_index(
            'ix_activities_type_time', ['workspace_id', 'type', 'occurred_at', 'member_id'], unique=False
        )
        batch_op.create_index(
            'ix_activities_sentiment', ['workspace_id', 'member_id', 'occurred_at', 'sentiment'], unique=False,
            sqlite_where=sa.text('sentiment IS NOT NULL'), postgresql_where=sa.text('sentiment IS NOT NULL'),
        )


def downgrade() -> None:
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index('ix_activities_member_time')
        batch_op.create_index('ix_activities_member_time', ['member_id', 'occurred_at'], unique=False)
        batch_op.drop_index('ix_activities_sentiment')
        batch_op.drop_index('ix_activities_type_time')
        batch_op.create_index('ix_activities_type_time', ['workspace_id', 'type', 'occurred_at'], unique=False)
