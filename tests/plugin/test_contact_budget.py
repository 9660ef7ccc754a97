"""The contact budget is never exceeded, whatever the history of asks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session

from plugin.db.models import Member, Outreach
from plugin.services import contact_budget
from plugin.services.program_rules import Programs

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=st.lists(st.lists(st.floats(0.0, 60.0), max_size=6), min_size=1, max_size=8),
    policy=st.builds(
        Programs,
        max_contacts=st.integers(1, 4),
        window_days=st.integers(7, 40),
        min_gap_days=st.integers(0, 10),
    ),
)
def test_a_member_allowed_has_room_in_the_window_and_the_gap(
    engine: Engine, workspace_id: int, history: list[list[float]], policy: Programs
) -> None:
    with Session(engine) as session:
        session.execute(delete(Outreach))
        ids = []
        for days_ago in history:
            member = Member(workspace_id=workspace_id, display_name="m")
            session.add(member)
            session.flush()
            ids.append(member.id)
            for d in days_ago:
                session.add(
                    Outreach(
                        workspace_id=workspace_id, member_id=member.id, kind="x", at=NOW - timedelta(days=d)
                    )
                )
        session.commit()
    with engine.connect() as conn:
        allowed = contact_budget.within_budget(conn, workspace_id, ids, NOW, policy)
    for member_id, days_ago in zip(ids, history, strict=True):
        in_window = [d for d in days_ago if d < policy.window_days]
        ok = len(in_window) < policy.max_contacts and all(d >= policy.min_gap_days for d in in_window)
        assert (member_id in allowed) == ok
