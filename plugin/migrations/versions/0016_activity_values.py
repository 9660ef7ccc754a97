"""activity values: the number a survey, review or purchase carries, in its own column and in the
member index scoring reads

Scoring read a survey's NPS, a review's rating and a purchase's amount out of each row's JSON, one
random table read per row; with the number in ``ix_activities_member_time`` (with the sentiment) a
member's activities come from one index range.

Downtime: the member index of activities is rebuilt and the new column filled for existing
surveys, reviews and purchases; rows an older version inserts meanwhile would have no value. Stop
web and workers while it runs (on SQLite about a minute per 10 million activities).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

VALUED = {"survey_response": "nps", "review": "rating", "purchase": "amount"}  # as of this revision


def _value_sql(pg: bool) -> str:
    """The number under the type's key in ``properties``, when it is a JSON number."""
    cases = []
    for kind, key in VALUED.items():
        if pg:
            number = f"jsonb_typeof(properties->'{key}') = 'number'"
            cases.append(f"WHEN '{kind}' THEN CASE WHEN {number} THEN (properties->>'{key}')::float END")
        else:
            number = f"json_type(properties, '$.{key}') IN ('integer', 'real')"
            cases.append(f"WHEN '{kind}' THEN CASE WHEN {number} THEN json_extract(properties, '$.{key}') END")
    return "CASE type " + " ".join(cases) + " END"


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    op.add_column("activities", sa.Column("value", sa.Float(), nullable=True))
    kinds = ", ".join(f"'{k}'" for k in VALUED)
    op.execute(f"UPDATE activities SET value = {_value_sql(pg)} WHERE type IN ({kinds})")  # noqa: S608
    with op.batch_alter_table("activities") as batch:
        batch.drop_index("ix_activities_member_time")
        batch.create_index(
            "ix_activities_member_time", ["member_id", "occurred_at", "type", "value", "sentiment"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("activities") as batch:
        batch.drop_index("ix_activities_member_time")
        batch.create_index("ix_activities_member_time", ["member_id", "occurred_at", "type"], unique=False)
    with op.batch_alter_table("activities") as batch:
        batch.drop_column("value")
