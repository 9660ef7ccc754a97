"""``/api/v1/scores`` and ``/api/v1/signals``: ranked scores with their reasons in words, the runs
that computed them, and the crossings they raised (champions, hot leads, high churn risks)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from plugin.services.score_lists import (
    EVENTS,
    KINDS,
    ScoreQuery,
    SignalQuery,
    cursor_types,
    rank_key,
    ranked,
    runs,
    signals,
)
from plugin.web.api.core import PageArgs, blueprint, current, decode_cursor, guarded, page_schema, paged
from plugin.web.api.query_args import aware_datetime, text
from plugin.web.context import engine

blp = blueprint(
    "scores", "", "Scores: ranked with reasons, the runs behind them, and the signals they raised"
)
F = ma.fields
SUBJECTS = ("member", "organization")


class ScoreOrg(ma.Schema):
    id = F.Integer(required=True)
    name = F.String(required=True)
    domain = F.String(required=True)


class RankedScore(ma.Schema):
    subject = F.String(required=True, metadata={"description": "member or organization"})
    subject_id = F.Integer(required=True, metadata={"description": "the member's or organization's id"})
    kind = F.String(required=True)
    name = F.String(
        allow_none=True, required=True, metadata={"description": "the member's or organization's"}
    )
    email = F.String(allow_none=True, required=True, metadata={"description": "a member's; null for an org"})
    domain = F.String(allow_none=True, required=True, metadata={"description": "an organization's"})
    organization = F.Nested(
        ScoreOrg, allow_none=True, required=True, metadata={"description": "a member's organization"}
    )
    score = F.Float(required=True, metadata={"description": "advocate and lead 0-100, churn risk 0-1"})
    label = F.String(required=True, metadata={"description": "advocate level, lead grade or churn band"})
    hot = F.Boolean(required=True, metadata={"description": "a lead showing buying intent now"})
    reasons = F.List(F.String(), required=True, metadata={"description": "the largest reasons, in sentences"})
    triggers = F.List(
        F.Integer(), required=True, metadata={"description": "activity ids that made a lead hot"}
    )
    as_of = F.AwareDateTime(required=True)
    model_version = F.String(required=True)


class ScoreArgs(PageArgs):
    subject = F.String(load_default="member", validate=ma.validate.OneOf(SUBJECTS))
    label = text(24, metadata={"description": "level, grade or band"})
    hot = F.Boolean()
    min_score = F.Float(validate=ma.validate.Range(0, 100))


RankedScorePage = page_schema(RankedScore, "RankedScorePage")


class ScoringRun(ma.Schema):
    id = F.Integer(required=True)
    kinds = F.List(F.String(), required=True)
    mode = F.String(required=True, metadata={"description": "full, incremental or as_of"})
    as_of = F.AwareDateTime(required=True, metadata={"description": "the date scored as of"})
    started_at = F.AwareDateTime(required=True)
    finished_at = F.AwareDateTime(allow_none=True, required=True, metadata={"description": "null: running"})
    members_scored = F.Integer(required=True)
    model_version = F.String(required=True)
    weights_hash = F.String(required=True)
    signals = F.Dict(
        keys=F.String(),
        values=F.Integer(),
        required=True,
        metadata={"description": "signals raised, by event"},
    )


ScoringRunPage = page_schema(ScoringRun, "ScoringRunPage")


@blp.get("/scores/runs")
@guarded(blp, "scores:read", not_found=False)
@blp.arguments(PageArgs, location="query")
@blp.response(200, ScoringRunPage)
def list_runs(args: dict[str, Any]) -> dict[str, Any]:
    """Scoring runs, newest first: model version, weights hash, as-of date, mode, counts, times."""
    after = decode_cursor(args["cursor"], [int])
    with engine().connect() as conn:
        rows = runs(conn, current().workspace_id, args["limit"], after)
    return paged(rows, args["limit"], lambda r: [r["id"]])


@blp.get(f"/scores/<any({', '.join(KINDS)}):kind>")
@guarded(blp, "scores:read", not_found=False)
@blp.arguments(ScoreArgs, location="query")
@blp.response(200, RankedScorePage)
def list_scores(args: dict[str, Any], kind: str) -> dict[str, Any]:
    """Members (or, for churn, organizations with ``subject=organization``) ranked by a score,
    highest first (hot leads before the others), with label, reasons in words, and filters."""
    limit, cursor = args.pop("limit"), args.pop("cursor")
    after = decode_cursor(cursor, cursor_types(kind))
    with engine().connect() as conn:
        rows = ranked(conn, current().workspace_id, ScoreQuery(kind=kind, **args), limit, after)
    return paged(rows, limit, rank_key(kind))


class Signal(ma.Schema):
    id = F.Integer(required=True)
    event = F.String(required=True, metadata={"description": ", ".join(EVENTS)})
    kind = F.String(required=True)
    subject = F.String(required=True, metadata={"description": "member or organization"})
    subject_id = F.Integer(required=True)
    name = F.String(allow_none=True, required=True)
    email = F.String(allow_none=True, required=True, metadata={"description": "a member's; null for an org"})
    domain = F.String(allow_none=True, required=True, metadata={"description": "an organization's"})
    before = F.String(allow_none=True, required=True, metadata={"description": "label before; null: new"})
    after = F.String(required=True, metadata={"description": "label after"})
    score = F.Float(required=True)
    occurred_at = F.AwareDateTime(required=True)
    as_of = F.AwareDateTime(required=True)
    run_id = F.Integer(required=True)


class SignalArgs(PageArgs):
    event = F.String(validate=ma.validate.OneOf(EVENTS))
    kind = F.String(validate=ma.validate.OneOf(KINDS))
    subject = F.String(validate=ma.validate.OneOf(SUBJECTS))
    since = aware_datetime(metadata={"description": "raised at or after"})


SignalPage = page_schema(Signal, "SignalPage")


@blp.get("/signals")
@guarded(blp, "scores:read", not_found=False)
@blp.arguments(SignalArgs, location="query")
@blp.response(200, SignalPage)
def list_signals(args: dict[str, Any]) -> dict[str, Any]:
    """Score crossings, newest first: a member became a champion, a lead turned hot, a churn risk
    (a member's or an account's) turned high; each with the member's or organization's name."""
    limit, cursor = args.pop("limit"), args.pop("cursor")
    after = decode_cursor(cursor, [int], wide=True)
    with engine().connect() as conn:
        rows = signals(conn, current().workspace_id, SignalQuery(**args), limit, after)
    return paged(rows, limit, lambda r: [r["id"]])
