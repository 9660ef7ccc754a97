"""Write one run's scores and the crossings they caused; read stored scores back."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, delete, select

from plugin.db.base import table_of
from plugin.db.models import Score, ScoreEvent
from plugin.db.sql import in_values, insert_rows
from plugin.services.score_inputs import Loaded
from scoring.churn import account_risk
from scoring.config import ScoringConfig
from scoring.pipeline import Pass, crossed
from scoring.result import Scored

Key = tuple[str, int]
HOT_EVENT = "lead_turned_hot"


def previous_labels(
    conn: Connection, workspace_id: int, kind: str, member_ids: NDArray[np.int64] | None
) -> dict[Key, tuple[str, bool]]:
    s = Score.__table__.c
    query = select(s.subject, s.subject_id, s.label, s.hot).where(
        s.workspace_id == workspace_id, s.kind == kind
    )
    if member_ids is not None:
        query = query.where(s.subject == "member", in_values(conn, Score.subject_id, member_ids.tolist()))
    return {(r[0], r[1]): (r[2], bool(r[3])) for r in conn.execute(query)}


def stored_scores(
    conn: Connection, workspace_id: int, kind: str, exclude: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Stored scores of active members outside ``exclude`` (score above 0)."""
    s = Score.__table__.c
    rows = conn.execute(
        select(s.subject_id, s.score).where(
            s.workspace_id == workspace_id, s.kind == kind, s.subject == "member", s.score > 0
        )
    ).all()
    if not rows:
        return np.zeros(0)
    data = np.array(rows, dtype=np.float64)
    keep = ~np.isin(data[:, 0].astype(np.int64), exclude)
    out: NDArray[np.float64] = data[keep, 1]
    return out


def _finite_or_none(a: NDArray[np.float64]) -> list[list[Any]]:
    rounded = np.round(a, 4).astype(object)
    rounded[~np.isfinite(a)] = None
    out: list[list[Any]] = rounded.tolist()
    return out


def _reasons(scored: Scored) -> list[list[list[Any]]]:
    """Each row's top reasons as ``[feature, value, points]`` (plus a detail where the feature has
    one), gathered with numpy; values JSON cannot hold (NaN, infinity) become null."""
    names, top = scored.top_matrix()
    if not names or top.shape[1] == 0:
        return [[] for _ in range(scored.rows.size)]
    pick = np.maximum(top, 0)
    values = np.vstack([scored.values[n] for n in names]).T
    points = np.vstack([scored.points[n] for n in names]).T
    nan = np.full(scored.rows.size, np.nan)
    details = np.vstack([scored.details.get(n, nan) for n in names]).T
    has_detail = [n in scored.details for n in names]
    v = _finite_or_none(np.take_along_axis(values, pick, axis=1))
    p = np.round(np.take_along_axis(points, pick, axis=1), 4).tolist()
    d = _finite_or_none(np.take_along_axis(details, pick, axis=1))
    out = []
    for i, picks in enumerate(top.tolist()):
        row = []
        for j, f in enumerate(picks):
            if f < 0:
                break
            row.append(
                [names[f], v[i][j], p[i][j], d[i][j]] if has_detail[f] else [names[f], v[i][j], p[i][j]]
            )
        out.append(row)
    return out


def write_scores(
    conn: Connection,
    workspace_id: int,
    run_id: int,
    kind: str,
    scored: Scored,
    loaded: Loaded,
    result: Pass,
    cfg: ScoringConfig,
    before: dict[Key, tuple[str, bool]],
    when: datetime,
    *,
    partial: bool,
) -> Counter[str]:
    """Replace the stored scores of ``kind``: all of them, or with ``partial`` only those of the
    members (and their organizations) this run loaded. Returns the events it stored, by name."""
    member_ids = loaded.member_ids
    rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    common = {
        "workspace_id": workspace_id,
        "kind": kind,
        "model_version": cfg.version,
        "weights_hash": cfg.weights_hash,
        "computed_at": when,
        "as_of": when,
        "run_id": run_id,
    }
    subjects = member_ids[scored.rows].tolist()
    reasons = _reasons(scored)
    hot = scored.hot.tolist() if scored.hot is not None else [False] * len(subjects)
    for i, subject_id in enumerate(subjects):
        label = scored.label[i]
        score = float(scored.score[i])
        rows.append(
            common
            | {
                "subject": "member",
                "subject_id": subject_id,
                "score": round(score, 4),
                "label": label,
                "hot": bool(hot[i]),
                "reasons": reasons[i],
                "triggers": scored.triggers[i] if scored.triggers and hot[i] else None,
            }
        )
        old = before.get(("member", subject_id))
        event = crossed(kind, old[0] if old else None, label, cfg)
        if hot[i] and not (old and old[1]):
            event = HOT_EVENT
        if event:
            events.append(_event(common, "member", subject_id, event, old, label, score))
    if kind == "churn":
        rows.extend(_accounts(scored, loaded, result, common, before, cfg, events))
    _replace(conn, workspace_id, kind, loaded, partial)
    insert_rows(conn, table_of(Score), rows)
    insert_rows(conn, table_of(ScoreEvent), events)
    return Counter(e["event"] for e in events)


def _accounts(
    scored: Scored,
    loaded: Loaded,
    result: Pass,
    common: dict[str, Any],
    before: dict[Key, tuple[str, bool]],
    cfg: ScoringConfig,
    events: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Account churn: the engagement-weighted risk of its customers, with the reasons of its most
    engaged person."""
    if scored.rows.size == 0:  # e.g. an incremental run that touched no customer
        return []
    org = loaded.inputs.churn.organization
    n_orgs = loaded.inputs.n_orgs
    engagement = result.features["engagement"]
    risk = account_risk(scored, org, engagement, n_orgs)
    bands = cfg.section("churn", "bands")
    member_org = org[scored.rows]
    order = np.lexsort((engagement[scored.rows], member_org))
    last_of_org = np.r_[member_org[order][1:] != member_org[order][:-1], True]
    lead_row = {int(member_org[order][k]): int(order[k]) for k in np.flatnonzero(last_of_org)}
    reasons = _reasons(scored)
    out = []
    for o in np.flatnonzero(~np.isnan(risk)).tolist():
        p = float(risk[o])
        label = "high" if p >= bands["high"] else "medium" if p >= bands["medium"] else "low"
        org_id = int(loaded.org_ids[o])
        out.append(
            common
            | {
                "subject": "organization",
                "subject_id": org_id,
                "score": round(p, 4),
                "label": label,
                "hot": False,
                "reasons": reasons[lead_row[o]] if o in lead_row else [],
                "triggers": None,
            }
        )
        old = before.get(("organization", org_id))
        if crossed("churn", old[0] if old else None, label, cfg):
            events.append(_event(common, "organization", org_id, "churn_risk_high", old, label, p))
    return out


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


def _replace(conn: Connection, workspace_id: int, kind: str, loaded: Loaded, partial: bool) -> None:
    s = Score.__table__.c
    scope = delete(Score).where(s.workspace_id == workspace_id, s.kind == kind)
    if not partial:
        conn.execute(scope)
        return
    conn.execute(
        scope.where(s.subject == "member", in_values(conn, Score.subject_id, loaded.member_ids.tolist()))
    )
    org = loaded.inputs.churn.organization
    orgs = np.unique(org[org >= 0])
    if orgs.size:
        conn.execute(
            scope.where(
                s.subject == "organization", in_values(conn, Score.subject_id, loaded.org_ids[orgs].tolist())
            )
        )
