"""What an incremental run needs about the people it does not rescore.

Account signals (who at a company is active, whether its champion went quiet) and account churn
(the weighted risk of all its customers) depend on every person of the account. An incremental run
uses the stored summaries (``member_stats``) of the other people at the accounts it touches,
aggregated per account by the database (:func:`plugin.services.score_inputs.read_colleagues`), and
the stored churn scores of those at customer accounts (here), instead of re-reading their
activities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from plugin.db.models.score import REASON_COLUMNS
from plugin.db.sql import id_set, in_chunks, number_rows, raw_rows
from plugin.services.score_inputs import Loaded

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class StoredCustomers:
    """Stored churn scores of customers at the touched accounts who are not being rescored."""

    member_id: Ints
    org_row: Ints
    score: Floats
    activities: Floats  # lifetime count: the weight of each customer in the account's risk


def stored_customers(conn: Any, workspace_id: int, loaded: Loaded) -> StoredCustomers:
    """The stored churn scores of the people not reloaded at the customer accounts the loaded
    members belong to (through a colleague too: :func:`load_inputs` marks those)."""
    churn = loaded.inputs.churn
    rows = np.unique(churn.organization[churn.customer & (churn.organization >= 0)])
    data = np.zeros((0, 3))
    if rows.size:
        data = _people_at(conn, workspace_id, loaded.org_ids[rows].tolist(), loaded.member_ids)
    org_row = np.searchsorted(loaded.org_ids, data[:, 1].astype(np.int64)).astype(np.int64)
    return _stored_customers(conn, workspace_id, data, org_row)


def _people_at(conn: Any, workspace_id: int, org_ids: list[int], exclude: Ints) -> Floats:
    """(member, organization, lifetime activities) of everyone at these organizations but
    ``exclude``, from their stored summaries."""
    orgs, org_param = id_set(conn, "organization_id", org_ids)
    others, others_param = id_set(conn, "member_id", exclude.tolist(), negate=True)
    where = f"FROM member_stats WHERE workspace_id = ? AND {orgs} AND {others}"
    columns = ("member_id", "organization_id", "activities")
    data: Floats = number_rows(conn, columns, where, (workspace_id, org_param, others_param), np.float64)
    return data


def _stored_customers(conn: Any, workspace_id: int, data: Floats, org_row: Ints) -> StoredCustomers:
    """The stored churn scores of these people (rows of ``data``), where they have one."""
    ids = data[:, 0].astype(np.int64)
    parts = []
    for part, marks in in_chunks(np.unique(ids).tolist()):
        where = (
            "FROM scores WHERE workspace_id = ? AND kind = 'churn' AND subject = 'member' "
            f"AND subject_id IN ({marks})"
        )
        parts.append(number_rows(conn, ("subject_id", "score"), where, (workspace_id, *part), np.float64))
    got = np.concatenate(parts) if parts else np.zeros((0, 2))
    got = got[np.argsort(got[:, 0], kind="stable")]  # by member id, as the rows were read before
    order = np.argsort(ids, kind="stable")
    # A member filed under two organizations (moved since the last full pass) counts once, under
    # the row read last, as before.
    pick = order[np.searchsorted(ids[order], got[:, 0].astype(np.int64), side="right") - 1]
    return StoredCustomers(
        member_id=got[:, 0].astype(np.int64),
        org_row=org_row[pick],
        score=got[:, 1],
        activities=data[pick, 2] if pick.size else np.zeros(0),
    )


def stored_reasons(conn: Any, workspace_id: int, member_ids: list[int]) -> dict[int, tuple[Any, ...]]:
    """The 12 stored reason cells of these members' churn scores, by member id."""
    out: dict[int, tuple[Any, ...]] = {}
    cols = ", ".join(REASON_COLUMNS)
    for part, marks in in_chunks(sorted(member_ids)):
        sql = (
            "SELECT subject_id, " + cols + " FROM scores WHERE workspace_id = ? "  # noqa: S608
            "AND kind = 'churn' AND subject = 'member' AND subject_id IN (" + marks + ")"
        )
        for chunk in raw_rows(conn, sql, (workspace_id, *part)):
            out.update((r[0], tuple(r[1:])) for r in chunk)
    return out
