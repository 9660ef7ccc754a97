"""hand raises: intent-topic matches kept between scoring runs

Additive: a new table and two nullable columns; a running older version never reads either. The first
scoring run after the upgrade is a full pass (the last run kept no matches), which fills the table.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 08:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hand_raises",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False),
        sa.Column("activity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_hand_raises_member_id_members"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_hand_raises_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", "occurred_at", "activity_id", name=op.f("pk_hand_raises")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_hand_raises_activity_id", "hand_raises", ["activity_id"], unique=False)
    op.add_column("score_runs", sa.Column("hand_raises_since", sa.BigInteger(), nullable=True))
    op.add_column("score_runs", sa.Column("hand_raises_key", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("score_runs") as batch:
        batch.drop_column("hand_raises_key")
        batch.drop_column("hand_raises_since")
    op.drop_index("ix_hand_raises_activity_id", table_name="hand_raises")
    op.drop_table("hand_raises")
