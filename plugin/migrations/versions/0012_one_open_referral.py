"""one open referral per prospect

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 11:12:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

WHERE = "status IN ('pending', 'converted')"


def upgrade() -> None:
    op.create_index(
        'uq_referrals_open_prospect', 'referrals', ['workspace_id', 'prospect_email'], unique=True,
        sqlite_where=sa.text(WHERE), postgresql_where=sa.text(WHERE),
    )


def downgrade() -> None:
    op.drop_index('uq_referrals_open_prospect', table_name='referrals')
