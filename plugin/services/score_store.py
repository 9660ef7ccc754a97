"""Write one run's scores and the crossings they caused; read stored scores back."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, bindparam, delete

from plugin.db.base import table_of
from plugin.db.models import HandRaise, MemberStats, Score, ScoreEvent
from plugin.db.models.score import REASON_COLUMNS
from plugin.db.sql import (
    execute_many,
    execute_raw,
    in_chunks,
    insert_columns,
    insert_rows,
    number_rows,
    raw_rows,
)
from plugin.services.score_inputs import Loaded, Since
from plugin.services.score_others import StoredCustomers, stored_reasons
from scoring.config import ScoringConfig
from scoring.pipeline import Pass, crossed
from scoring.result import Scored

Key = tuple[str, int]
HOT_EVENT = "lead_turned_hot"


def previous_labels(
    conn: Connection, workspace_id: int, kind: str, subject: str, ids: list[int]
) -> dict[Key, tuple[str, bool]]:
    """Stored (label, hot) of these subjects, by (subject, id)."""
    out: dict[Key, tuple[str, bool]] = {}
    for chunk, marks in in_chunks(ids):
        query = (
            "SELECT subject, subject_id, label, hot FROM scores WHERE workspace_id = ? AND kind = ? "  # noqa: S608
            "AND subject = ? AND subject_id IN (" + marks + ")"
        )
        for part in raw_rows(conn, query, (workspace_id, kind, subject, *chunk)):
            out.update(((r[0], r[1]), (r[2], bool(r[3]))) for r in part)
    return out


def _worthy(kind: str, labels: list[str], hot: list[bool], cfg: ScoringConfig) -> list[int]:
    """Rows whose new state is one an event announces (top level, hot, high risk): only these
    can have crossed, so only their previous labels are read."""
    top = cfg.levels[0].name if cfg.levels else None
    event_label = top if kind == "advocate" else "high" if kind == "churn" else None
    return [i for i, (label, h) in enumerate(zip(labels, hot, strict=True)) if h or label == event_label]


def _cells(a: NDArray[Any]) -> list[Any]:
    """Values for the database: rounded, with None where JSON or SQL cannot hold them (NaN, inf)."""
    out = np.round(a.astype(np.float64), 4).astype(object)
    out[~np.isfinite(a.astype(np.float64))] = None
    cells: list[Any] = out.tolist()
    return cells


def _reason_columns(scored: Scored) -> dict[str, list[Any]]:
    """Each row's top three reasons as the 12 reason columns, gathered with numpy (no per-row
    Python), ``None`` where a row has fewer reasons or a feature has no detail."""
    n = scored.rows.size
    names, top = scored.top_matrix(3)
    columns: dict[str, list[Any]] = {}
    if not names:
        return {name: [None] * n for name in REASON_COLUMNS}
    pick = np.maximum(top, 0)
    values = np.vstack([scored.values[f] for f in names]).T
    points = np.vstack([scored.points[f] for f in names]).T
    nan = np.full(n, np.nan)
    details = np.vstack([scored.details.get(f, nan) for f in names]).T
    label = np.array([*names, None], dtype=object)
    for k in range(3):
        j = top[:, k]
        missing = j < 0
        columns[f"reason{k + 1}"] = label[np.where(missing, len(names), j)].tolist()
        for part, matrix in (("value", values), ("points", points), ("detail", details)):
            got = np.take_along_axis(matrix, pick[:, k : k + 1], axis=1)[:, 0]
            columns[f"{part}{k + 1}"] = _cells(np.where(missing, np.nan, got))
    return columns


def write_scores(
    conn: Connection,
    workspace_id: int,
    run_id: int,
    kind: str,
    scored: Scored,
    loaded: Loaded,
    result: Pass,
    cfg: ScoringConfig,
    when: datetime,
    *,
    partial: bool,
    stored: StoredCustomers | None = None,
) -> Counter[str]:
    """Replace the stored scores of ``kind``: all of them, or with ``partial`` only those of the
    members (and their organizations) this run loaded. Returns the events it stored, by name."""
    common = {
        "workspace_id": workspace_id,
        "kind": kind,
        "computed_at": when,
        "as_of": when,
        "run_id": run_id,
    }
    subjects: list[int] = loaded.member_ids[scored.rows].tolist()
    count = len(subjects)
    hot: list[bool] = scored.hot.tolist() if scored.hot is not None else [False] * count
    scores: list[float] = np.round(scored.score, 4).tolist()
    reasons = _reason_columns(scored)
    columns: dict[str, list[Any]] = {
        "subject": ["member"] * count,
        "subject_id": subjects,
        "score": scores,
        "label": scored.label,
        "hot": hot,
        **{name: list(values) for name, values in reasons.items()},
        "triggers": [t if h else None for t, h in zip(scored.triggers, hot, strict=True)]
        if scored.triggers
        else [None] * count,
    }
    events: list[dict[str, Any]] = []
    worthy = _worthy(kind, scored.label, hot, cfg)
    before = previous_labels(conn, workspace_id, kind, "member", [subjects[i] for i in worthy])
    for i in worthy:
        subject_id = subjects[i]
        old = before.get(("member", subject_id))
        label = scored.label[i]
        event = crossed(kind, old[0] if old else None, label, cfg)
        if hot[i] and not (old and old[1]):
            event = HOT_EVENT
        if event:
            events.append(_event(common, "member", subject_id, event, old, label, scores[i]))
    if kind == "churn":
        for row in _accounts(conn, scored, reasons, loaded, result, common, cfg, events, stored):
            for name, values in columns.items():
                values.append(row[name])
    for name in ("workspace_id", "kind", "run_id"):
        columns[name] = [common[name]] * len(columns["subject"])
    # Rows are updated in place (their key is stable from run to run); then what this run did not
    # score (members merged away, accounts no longer customers) goes: cheaper than deleting a
    # million rows to insert them again.
    insert_columns(conn, table_of(Score), columns, upsert_on=SCORE_KEY)
    _drop_stale(conn, workspace_id, kind, loaded, partial, run_id, columns)
    insert_rows(conn, table_of(ScoreEvent), events)
    return Counter(e["event"] for e in events)


def _accounts(
    conn: Connection,
    scored: Scored,
    fresh_reasons: dict[str, list[Any]],
    loaded: Loaded,
    result: Pass,
    common: dict[str, Any],
    cfg: ScoringConfig,
    events: list[dict[str, Any]],
    stored: StoredCustomers | None,
) -> list[dict[str, Any]]:
    """Account churn: the activity-weighted risk of all its customers (fresh scores, plus stored
    ones of customers this run did not rescore), with the reasons of its most engaged customer."""
    org_all = loaded.inputs.churn.organization
    org = org_all[scored.rows]
    risk = scored.score
    # Weighted by lifetime activity (log), the same for fresh and stored customers.
    engagement = np.log1p(result.features["activities"][scored.rows]) + 0.05
    cells: list[tuple[Any, ...]] = list(zip(*(fresh_reasons[c] for c in REASON_COLUMNS), strict=True))
    fresh = len(cells)
    if stored is not None and stored.score.size:
        org = np.concatenate([org, stored.org_row])
        risk = np.concatenate([risk, stored.score])
        engagement = np.concatenate([engagement, np.log1p(stored.activities) + 0.05])
    sel = np.flatnonzero(org >= 0)
    if sel.size == 0:
        return []
    n_orgs = loaded.inputs.n_orgs
    num = np.bincount(org[sel], weights=engagement[sel] * risk[sel], minlength=n_orgs)
    den = np.bincount(org[sel], weights=engagement[sel], minlength=n_orgs)
    order = sel[np.lexsort((engagement[sel], org[sel]))]
    sorted_org = org[order]
    last_of_org = np.r_[sorted_org[1:] != sorted_org[:-1], True]
    top_of = dict(zip(sorted_org[last_of_org].tolist(), order[last_of_org].tolist(), strict=True))
    if stored is not None:  # the reasons of stored customers are read only where one leads an account
        leaders = {i: int(stored.member_id[i - fresh]) for i in top_of.values() if i >= fresh}
        kept = stored_reasons(conn, int(common["workspace_id"]), list(leaders.values()))
        cells += [kept.get(int(m), (None,) * len(REASON_COLUMNS)) for m in stored.member_id.tolist()]
    bands = cfg.section("churn", "bands")
    rows = []
    for o, i in sorted(top_of.items()):
        p = float(num[o] / den[o])
        label = "high" if p >= bands["high"] else "medium" if p >= bands["medium"] else "low"
        rows.append((int(loaded.org_ids[o]), p, label, i))
    high = [org_id for org_id, _, label, _ in rows if label == "high"]
    before = previous_labels(conn, int(common["workspace_id"]), "churn", "organization", high)
    out = []
    for org_id, p, label, i in rows:
        out.append(
            common
            | {
                "subject": "organization",
                "subject_id": org_id,
                "score": round(p, 4),
                "label": label,
                "hot": False,
                "triggers": None,
                **dict(zip(REASON_COLUMNS, cells[i], strict=True)),
            }
        )
        old = before.get(("organization", org_id))
        if label == "high" and crossed("churn", old[0] if old else None, label, cfg):
            events.append(_event(common, "organization", org_id, "churn_risk_high", old, label, p))
    return out


def write_stats(conn: Connection, workspace_id: int, loaded: Loaded, result: Pass, *, partial: bool) -> None:
    """Keep each scored member's activity summary, filed under their organization (0: none), for
    later incremental runs. A full run compares with what is stored and writes only the rows that
    changed (new activity, a new organization, a new customer status), and removes the rest."""
    f = result.features
    org_row = loaded.inputs.lead.organization
    orgs = np.where(org_row >= 0, loaded.org_ids[np.maximum(org_row, 0)] if loaded.org_ids.size else 0, 0)
    current = np.column_stack(
        [
            loaded.member_ids.astype(np.float64),
            orgs.astype(np.float64),
            f["activities"],
            f["last_at"],
            np.round(f["usual_gap_days"], 4),  # as stored, so unchanged rows compare equal
            loaded.customer.astype(np.float64),
            np.where(loaded.last_purchase >= 0, loaded.last_purchase, np.nan).astype(np.float64),
        ]
    )
    if partial:  # rows are upserted by key: nothing to delete first
        _insert_stats(conn, workspace_id, current)
        return
    stored = number_rows(
        conn,
        (
            "member_id",
            "organization_id",
            "activities",
            "last_at",
            "usual_gap_days",
            "customer",
            "last_purchase_at",
        ),
        "FROM member_stats WHERE workspace_id = ?",
        (workspace_id,),
        np.float64,
    )
    if stored.shape[0] == 0:
        _insert_stats(conn, workspace_id, current)
        return
    # Same (organization, member) key and the same values (NaN equal to NaN): nothing to write.
    key_now = current[:, 1].astype(np.int64) * (1 << 32) + current[:, 0].astype(np.int64)
    key_old = stored[:, 1].astype(np.int64) * (1 << 32) + stored[:, 0].astype(np.int64)
    order = np.argsort(key_old)
    pos = np.minimum(np.searchsorted(key_old[order], key_now), max(key_old.size - 1, 0))
    hit = key_old[order][pos] == key_now
    same = hit & np.all(
        (stored[order][pos] == current) | (np.isnan(stored[order][pos]) & np.isnan(current)), axis=1
    )
    gone = ~np.isin(key_old, key_now[hit])
    _delete_stats(conn, workspace_id, stored[gone, :2], current[hit & ~same, :2])
    _insert_stats(conn, workspace_id, current[~same])


def write_hand_raises(
    conn: Connection, workspace_id: int, loaded: Loaded, since: Since, *, drop_until: int | None
) -> None:
    """Keep the hand-raising posts this run matched from their text, in place of what was kept of
    the same activities (all of the workspace's when every text was matched again); with
    ``drop_until``, those that occurred no later than that (out of every later run's window) go.
    Each is filed under the member its activity belongs to now, and one erased meanwhile is not
    kept: a merge or an erasure may have committed while this run was reading."""
    t = HandRaise.__table__.c
    start = since.recheck_from
    if start is None:
        conn.execute(delete(HandRaise).where(t.workspace_id == workspace_id))
    else:
        conn.execute(
            delete(HandRaise).where(
                t.activity_id > start, t.activity_id <= since.upto, t.workspace_id == workspace_id
            )
        )
    if drop_until is not None:
        conn.execute(delete(HandRaise).where(t.workspace_id == workspace_id, t.occurred_at <= drop_until))
    if loaded.new_raises is None or not loaded.new_raises[0].size:
        return
    _, _, activity, topic = loaded.new_raises
    order = np.argsort(activity, kind="stable")
    execute_many(
        conn,
        "INSERT INTO hand_raises (member_id, occurred_at, activity_id, workspace_id, topic) "
        "SELECT member_id, occurred_at, id, workspace_id, CAST(? AS SMALLINT) FROM activities "
        "WHERE id = ? AND workspace_id = ? ON CONFLICT DO NOTHING",
        [(int(topic[i]), int(activity[i]), workspace_id) for i in order.tolist()],
    )


def _delete_stats(conn: Connection, workspace_id: int, *keys: NDArray[np.float64]) -> None:
    """Delete member_stats rows by their (member, organization) pairs."""
    t = MemberStats.__table__.c
    pairs = [{"o": int(o), "m": int(m)} for k in keys for m, o in k.tolist()]
    if pairs:
        conn.execute(
            delete(MemberStats).where(
                t.workspace_id == workspace_id,
                t.organization_id == bindparam("o"),
                t.member_id == bindparam("m"),
            ),
            pairs,
        )


def _insert_stats(conn: Connection, workspace_id: int, rows: NDArray[np.float64]) -> None:
    """Upsert rows (columns as written by :func:`write_stats`), in primary-key order: the rows go
    in page by page, not at random."""
    if rows.shape[0] == 0:
        return
    rows = rows[np.lexsort((rows[:, 0], rows[:, 1]))]

    def ints(col: int) -> list[Any]:
        return [None if v != v else int(v) for v in rows[:, col].tolist()]

    insert_columns(
        conn,
        table_of(MemberStats),
        {
            "workspace_id": [workspace_id] * rows.shape[0],
            "organization_id": ints(1),
            "member_id": ints(0),
            "activities": ints(2),
            "last_at": ints(3),
            "usual_gap_days": _cells(rows[:, 4]),
            "customer": [bool(v) for v in rows[:, 5].tolist()],
            "last_purchase_at": ints(6),
        },
        upsert_on=("workspace_id", "organization_id", "member_id"),
    )


def _event(
    common: dict[str, Any], subject: str, subject_id: int, event: str, old: Any, label: str, score: float
) -> dict[str, Any]:
    return {
        "workspace_id": common["workspace_id"],
        "run_id": common["run_id"],
        "kind": common["kind"],
        "subject": subject,
        "subject_id": subject_id,
        "event": event,
        "before": old[0] if old else None,
        "after": label,
        "score": round(score, 4),
        "occurred_at": common["computed_at"],
        "as_of": common["as_of"],
    }


SCORE_KEY = ("workspace_id", "kind", "subject", "subject_id")


def _drop_stale(
    conn: Connection,
    workspace_id: int,
    kind: str,
    loaded: Loaded,
    partial: bool,
    run_id: int,
    written: dict[str, list[Any]],
) -> None:
    """Remove this kind's stored rows within the run's scope that the run did not write: all older
    rows after a full run; after a partial one, those of its members and accounts it did not score
    this time (a lead who became a customer has no lead score any more)."""
    s = Score.__table__.c
    stale = delete(Score).where(s.workspace_id == workspace_id, s.kind == kind, s.run_id != run_id)
    if not partial:
        conn.execute(stale)
        return
    done = set(zip(written["subject"], written["subject_id"], strict=True))
    org = loaded.inputs.churn.organization
    orgs = loaded.org_ids[np.unique(org[org >= 0])].tolist()
    for subject, ids in (("member", loaded.member_ids.tolist()), ("organization", orgs)):
        gone = [i for i in ids if (subject, i) not in done]
        for chunk, marks in in_chunks(gone):
            execute_raw(
                conn,
                "DELETE FROM scores WHERE workspace_id = ? AND kind = ? AND subject = ? "  # noqa: S608
                f"AND run_id != ? AND subject_id IN ({marks})",
                (workspace_id, kind, subject, run_id, *chunk),
            )
