"""Read scores back: ranked lists with their reasons in words, and exports."""

from __future__ import annotations

import csv
from typing import IO, Any

import numpy as np
import orjson
from sqlalchemy import Engine, select

from plugin.db.models import Member, Score, ScoreRun
from plugin.db.models.score import REASON_COLUMNS, reasons_of
from plugin.services.score_run import ScoreReport
from scoring.explain import sentence
from scoring.result import Reason

EXPORT_COLUMNS = (
    "member_id", "email", "name", "score", "label", "hot", "reasons",
    "model_version", "weights_hash", "as_of",
)  # fmt: skip


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _reason_cols() -> list[Any]:
    return [Score.__table__.c[name] for name in REASON_COLUMNS]


def words(reasons: list[Any]) -> list[str]:
    """Stored reasons ``[feature, value, points(, detail)]`` in words. JSON keeps an unknown or
    infinite value ("company size unknown", "never active") as null; it reads back as unknown."""
    out = []
    for r in reasons:
        detail = None if len(r) < 4 or r[3] is None else float(r[3])
        out.append(sentence(Reason(str(r[0]), _num(r[1]), float(r[2]), detail)))
    return out


def _ranked_stored(engine: Engine, workspace_id: int, kind: str, limit: int) -> list[dict[str, Any]]:
    s, m = Score.__table__.c, Member.__table__.c
    order = [s.hot.desc(), s.score.desc()] if kind == "lead" else [s.score.desc()]
    query = (
        select(
            s.subject_id,
            m.display_name,
            m.primary_email,
            s.score,
            s.label,
            s.hot,
            s.triggers,
            *_reason_cols(),
        )
        .join(Member, Member.id == s.subject_id)
        .where(s.workspace_id == workspace_id, s.kind == kind, s.subject == "member")
        .order_by(*order, s.subject_id)
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "member_id": r[0], "name": r[1], "email": r[2], "score": r[3], "label": r[4], "hot": bool(r[5]),
            "reasons": words(reasons_of(r[7:])), "triggers": r[6] or [],
        }
        for r in rows
    ]  # fmt: skip


def _ranked_memory(report: ScoreReport, kind: str, limit: int) -> list[dict[str, Any]]:
    assert report.result is not None and report.loaded is not None
    scored = report.result.scored[kind]
    hot = scored.hot if scored.hot is not None else np.zeros(scored.rows.size, bool)
    order = np.lexsort((-scored.score, ~hot) if kind == "lead" else (-scored.score,))[:limit]
    out = []
    for i in order.tolist():
        row = int(scored.rows[i])
        out.append(
            {
                "member_id": int(report.loaded.member_ids[row]),
                "name": None,
                "email": report.loaded.emails[row],
                "score": round(float(scored.score[i]), 4),
                "label": scored.label[i],
                "hot": bool(hot[i]),
                "reasons": [sentence(r) for r in scored.reasons(i)],
                "triggers": scored.triggers[i] if scored.triggers else [],
            }
        )
    return out


def top_scores(
    engine: Engine, workspace_id: int, report: ScoreReport, limit: int
) -> dict[str, list[dict[str, Any]]]:
    """The top ``limit`` of each kind: from the store, or from memory for a backtest."""
    if limit <= 0:
        return {}
    if report.mode == "as_of":
        return {kind: _ranked_memory(report, kind, limit) for kind in report.kinds}
    return {kind: _ranked_stored(engine, workspace_id, kind, limit) for kind in report.kinds}


def export_rows(engine: Engine, workspace_id: int, kind: str, fmt: str, out: IO[str]) -> int:
    """Write every stored member score of ``kind``, highest first; returns how many."""
    s, m, r = Score.__table__.c, Member.__table__.c, ScoreRun.__table__.c
    query = (
        select(s.subject_id, m.primary_email, m.display_name, s.score, s.label, s.hot,
               r.model_version, r.weights_hash, r.as_of, *_reason_cols())
        .join(Member, Member.id == s.subject_id)
        .join(ScoreRun, ScoreRun.id == s.run_id)
        .where(s.workspace_id == workspace_id, s.kind == kind, s.subject == "member")
        .order_by(s.score.desc(), s.subject_id)
    )  # fmt: skip
    writer = csv.writer(out) if fmt == "csv" else None
    if writer:
        writer.writerow(EXPORT_COLUMNS)
    count = 0
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=10_000).execute(query):
            reasons = words(reasons_of(row[9:]))
            values = [*row[:5], bool(row[5]), reasons, row[6], row[7], row[8].isoformat()]
            if writer:
                writer.writerow([*values[:6], " | ".join(reasons), *values[7:]])
            else:
                out.write(orjson.dumps(dict(zip(EXPORT_COLUMNS, values, strict=True))).decode() + "\n")
            count += 1
    return count
