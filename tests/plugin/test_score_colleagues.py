"""The database's per-account summary of colleagues (incremental runs) against the same arithmetic
in numpy (`scoring.accounts.summarise`), on the stored summaries of random people: on SQLite and on
PostgreSQL alike, with ties, single active days, people never active and people left out."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert

from plugin.db.models import Member, MemberStats
from plugin.services.score_inputs import read_colleagues
from scoring.accounts import People, summarise
from scoring.features import DAY_US

NOW = 1_790_000_000 * 1_000_000
RECENT_DAYS = 30.0
ORGS = [11, 12, 13]

stats = st.tuples(
    st.sampled_from(ORGS),
    st.integers(0, 5),  # lifetime activities (ties are common)
    st.one_of(st.none(), st.integers(0, 400 * DAY_US)),  # microseconds since last active
    st.one_of(st.none(), st.floats(0.5, 60).map(lambda g: round(g, 4))),  # usual gap, as stored
    st.booleans(),  # customer
    st.one_of(st.none(), st.integers(0, 800 * DAY_US)),  # microseconds since last purchase
    st.booleans(),  # in the pass (left out of the summary)
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(stats, min_size=1, max_size=25))
def test_the_database_summarises_colleagues_as_scoring_does(
    engine: Engine, workspace_id: int, rows: list[tuple]
) -> None:
    with engine.begin() as conn:
        conn.execute(MemberStats.__table__.delete())
        conn.execute(Member.__table__.delete())
        ids = (
            conn.execute(insert(Member).returning(Member.id), [{"workspace_id": workspace_id} for _ in rows])
            .scalars()
            .all()
        )
        conn.execute(
            insert(MemberStats),
            [
                {
                    "workspace_id": workspace_id,
                    "organization_id": org,
                    "member_id": member,
                    "activities": acts,
                    "last_at": None if ago is None else NOW - ago,
                    "usual_gap_days": gap,
                    "customer": customer,
                    "last_purchase_at": None if bought is None else NOW - bought,
                }
                for member, (org, acts, ago, gap, customer, bought, _) in zip(ids, rows, strict=True)
            ],
        )
    passed = np.array([m for m, r in zip(ids, rows, strict=True) if r[6]], dtype=np.int64)
    with engine.connect() as conn:
        got = read_colleagues(conn, workspace_id, np.array(ORGS), passed, NOW, RECENT_DAYS)

    rest = [r for r in rows if not r[6]]
    org = np.array([ORGS.index(r[0]) for r in rest], dtype=np.int64)
    recency = np.array([np.inf if r[2] is None else float(r[2]) / DAY_US for r in rest])
    expected = summarise(
        People(
            organization=org,
            activities=np.array([r[1] for r in rest], dtype=np.float64),
            recency_days=recency,
            usual_gap_days=np.array([np.nan if r[3] is None else r[3] for r in rest]),
            recent=(recency < RECENT_DAYS).astype(np.float64),
        ),
        len(ORGS),
    )
    # By organization row; an account with nobody else reads as nobody active, no champion.
    assert got.others.active.tolist() == expected.active.tolist()
    assert got.others.top_activities.tolist() == expected.top_activities.tolist()
    assert got.others.top_quiet.tolist() == expected.top_quiet.tolist()
    for o, customer, last in zip(ORGS, got.customer.tolist(), got.last_purchase.tolist(), strict=True):
        mine = [r for r in rest if r[0] == o]
        assert customer == any(r[4] for r in mine)
        bought = [NOW - r[5] for r in mine if r[5] is not None]
        assert last == (max(bought) if bought else -1)
