"""crm deals: when each deal last changed as `crm pull` read it, so incremental scoring rescores
the members a changed deal involves

Additive: a new nullable column; a running older version neither reads nor writes it.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 14:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("crm_deals", sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crm_deals") as batch:
        batch.drop_column("changed_at")
