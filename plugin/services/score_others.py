"""What an incremental run needs about the people it does not rescore.

Account signals (who at a company is active, whether its champion went quiet) and account churn
(the weighted risk of all its customers) depend on every person of the account. An incremental run
reads the stored summaries (``member_stats``) and stored churn scores of the other people at the
accounts it touches, instead of re-reading their activities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from plugin.db.models.score import REASON_COLUMNS
from plugin.db.sql import in_chunks, raw_rows
from plugin.services.score_inputs import Loaded
from scoring.accounts import People
from scoring.features import DAY_US

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class StoredCustomers:
    """Stored churn scores of customers at the touched accounts who are not being rescored."""

    org_row: Ints
    score: Floats
    activities: Floats  # lifetime count: the weight of each customer in the account's risk
    reasons: list[tuple[Any, ...]]  # the 12 stored reason cells of each


def other_people(
    conn: Any, workspace_id: int, loaded: Loaded, now: int, recent_days: float
) -> tuple[People, StoredCustomers]:
    """The colleagues' summaries that :func:`load_inputs` read (``loaded.mates``) as people, and
    the stored churn scores of the customers among them."""
    data = loaded.mates if loaded.mates is not None else np.zeros((0, 7))
    org_row = np.searchsorted(loaded.org_ids, data[:, 1].astype(np.int64)).astype(np.int64)
    last = data[:, 3]
    recency = np.where(np.isnan(last), np.inf, (now - last) / DAY_US)
    people = People(
        organization=org_row,
        activities=data[:, 2],
        recency_days=recency,
        usual_gap_days=data[:, 4],
        recent=(recency < recent_days).astype(np.float64),
    )
    # Only customers have stored churn scores: people at an account where someone is a customer.
    own = loaded.inputs.churn.organization[loaded.inputs.churn.customer]
    customer_orgs = np.union1d(own[own >= 0], org_row[data[:, 5] > 0])
    at_customer = np.isin(org_row, customer_orgs)
    return people, _stored_customers(conn, workspace_id, data[at_customer], org_row[at_customer])


def _stored_customers(conn: Any, workspace_id: int, data: Floats, org_row: Ints) -> StoredCustomers:
    ids = data[:, 0].astype(np.int64)
    where = {int(m): i for i, m in enumerate(ids.tolist())}
    got_rows, got_score, got_reasons = [], [], []
    id_list = sorted(where)
    cols = ", ".join(REASON_COLUMNS)
    for part, marks in in_chunks(id_list):
        sql = (
            "SELECT subject_id, score, " + cols + " FROM scores WHERE workspace_id = ? "  # noqa: S608
            "AND kind = 'churn' AND subject = 'member' AND subject_id IN (" + marks + ")"
        )
        for chunk in raw_rows(conn, sql, (workspace_id, *part)):
            for r in chunk:
                got_rows.append(where[r[0]])
                got_score.append(r[1])
                got_reasons.append(tuple(r[2:]))
    pick = np.array(got_rows, dtype=np.int64)
    return StoredCustomers(
        org_row=org_row[pick],
        score=np.array(got_score, dtype=np.float64),
        activities=data[pick, 2] if pick.size else np.zeros(0),
        reasons=got_reasons,
    )
