"""``/api/v1/members``: search and filter, a member's detail, timeline, consent and merge suggestions."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import marshmallow as ma
from flask import Response, request
from flask_smorest import abort
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugin.db.ids import MAX_ID
from plugin.db.models import Activity, Consent, Member, MergeSuggestion
from plugin.db.models.member import CONSENT_PURPOSES as PURPOSES
from plugin.services.member_search import KINDS, SORTS, MemberQuery, search, sort_key
from plugin.services.members import find_member, member_profile
from plugin.services.roles import allowed
from plugin.web.api.core import (
    PageArgs,
    blueprint,
    current,
    decode_cursor,
    guarded,
    if_match,
    page_schema,
    paged,
)
from plugin.web.api.query_args import aware_datetime, text
from plugin.web.context import engine, now

blp = blueprint("members", "/members", "Community members: search, profile, timeline, consent")
F = ma.fields


class ScoreBrief(ma.Schema):
    score = F.Float(required=True)
    label = F.String(required=True, metadata={"description": "advocate level, lead grade or churn band"})
    hot = F.Boolean(required=True)


class OrgBrief(ma.Schema):
    id = F.Integer(required=True)
    name = F.String(allow_none=True)
    domain = F.String(allow_none=True)


class MemberItem(ma.Schema):
    id = F.Integer(required=True)
    display_name = F.String(allow_none=True)
    primary_email = F.String(allow_none=True)
    lifecycle_stage = F.String(allow_none=True)
    title = F.String(allow_none=True)
    organization = F.Nested(OrgBrief, allow_none=True)
    scores = F.Dict(keys=F.String(), values=F.Nested(ScoreBrief), required=True)


class MemberArgs(PageArgs):
    sort = F.String(load_default="id", validate=ma.validate.OneOf(SORTS))
    q = text(200, metadata={"description": "part of a name or email"})
    min_score = F.Float(validate=ma.validate.Range(0, 100))
    max_score = F.Float(validate=ma.validate.Range(0, 100))
    level = text(24, metadata={"description": "advocate level"})
    grade = text(24, metadata={"description": "lead grade, e.g. A1"})
    band = text(24, metadata={"description": "churn band"})
    hot = F.Boolean()
    segment = F.String(validate=ma.validate.OneOf(("customer", "prospect")))
    organization_id = F.Integer(validate=ma.validate.Range(1, MAX_ID))
    activity_type = text(64)
    active_since = aware_datetime()


MemberPage = page_schema(MemberItem, "MemberPage")


@blp.get("")
@guarded(blp, "members:read", not_found=False)
@blp.arguments(MemberArgs, location="query")
@blp.response(200, MemberPage)
def list_members(args: dict[str, Any]) -> dict[str, Any]:
    """Members of the workspace, ranked by a score (``sort``) or by id, with filters."""
    limit, cursor = args.pop("limit"), args.pop("cursor")
    query = MemberQuery(**args)
    after = decode_cursor(cursor, [int] if query.sort == "id" else [float, int])
    with engine().connect() as conn:
        rows = search(conn, current().workspace_id, query, limit, after)
    return paged(rows, limit, sort_key(query.sort))


class IdentitySchema(ma.Schema):
    id = F.Integer()
    source = F.String()
    source_user_id = F.String()
    handle = F.String(allow_none=True)
    email = F.String(allow_none=True)
    verified = F.Boolean()
    name = F.String(allow_none=True)


class ScoreDetail(ScoreBrief):
    reasons = F.List(F.String(), required=True)
    triggers = F.List(F.Integer())
    as_of = F.String()
    model_version = F.String()


class ConsentState(ma.Schema):
    granted = F.Boolean(required=True)
    recorded_at = F.String(required=True)
    source = F.String(allow_none=True)


class ConsentMap(ma.Schema):
    """Consent in force by purpose (a purpose never recorded is absent)."""

    marketing = F.Nested(ConsentState)
    research = F.Nested(ConsentState)
    sales = F.Nested(ConsentState)


class MemberDetail(ma.Schema):
    id = F.Integer(required=True)
    display_name = F.String(allow_none=True)
    primary_email = F.String(allow_none=True)
    locale = F.String(allow_none=True)
    lifecycle_stage = F.String(allow_none=True)
    title = F.String(allow_none=True)
    organization = F.Nested(OrgBrief, allow_none=True)
    identities = F.List(F.Nested(IdentitySchema))
    activities = F.Dict()
    recent_activities = F.List(F.Dict())
    consents = F.Nested(ConsentMap)
    scores = F.Dict(keys=F.String(), values=F.Nested(ScoreDetail))
    merge_log = F.List(F.Dict())


class IdPath(ma.Schema):
    member_id = F.Integer()


def _visible_consents(consents: dict[str, Any]) -> dict[str, Any]:
    """Sales see no consent; researchers see research consent, marketers marketing; admins all."""
    role = current().role
    return {
        purpose: state
        for purpose, state in consents.items()
        if allowed(role, "consent:write")
        or (purpose in ("research", "marketing") and allowed(role, f"consent:{purpose}"))
    }


@blp.get("/<int:member_id>")
@guarded(blp, "members:read")
@blp.response(200, MemberDetail)
def get_member(member_id: int) -> dict[str, Any]:
    """A member with identities, organization, recent timeline, scores with reasons and consent.
    A member merged into another answers with the member it was merged into."""
    with Session(engine()) as session:
        member = find_member(session, current().workspace_id, str(member_id))
        profile = member_profile(session, member)
    profile["consents"] = _visible_consents(profile["consents"])
    return profile


class ActivityItem(ma.Schema):
    id = F.Integer(required=True)
    member_id = F.Integer(allow_none=True)
    source = F.String(required=True)
    type = F.String(required=True)
    occurred_at = F.AwareDateTime(required=True)
    title = F.String(allow_none=True)
    url = F.String(allow_none=True)


ActivityPage = page_schema(ActivityItem, "MemberTimelinePage")


@blp.get("/<int:member_id>/timeline")
@guarded(blp, "activities:read")
@blp.arguments(PageArgs, location="query")
@blp.response(200, ActivityPage)
def timeline(args: dict[str, Any], member_id: int) -> dict[str, Any]:
    """The member's activities, newest first."""
    after = decode_cursor(args["cursor"], [int])
    a = Activity
    with Session(engine()) as session:
        member = find_member(session, current().workspace_id, str(member_id))
        stmt = select(a.id, a.member_id, a.source, a.type, a.occurred_at, a.title, a.url).where(
            a.workspace_id == member.workspace_id, a.member_id == member.id
        )
        if after is not None:
            stmt = stmt.where(a.id < after[0])
        rows = [
            dict(r._mapping) for r in session.execute(stmt.order_by(a.id.desc()).limit(args["limit"] + 1))
        ]
    return paged(rows, args["limit"], lambda r: [r["id"]])


class ConsentBody(ma.Schema):
    granted = F.Boolean(required=True)
    source = F.String(load_default="api", validate=ma.validate.Length(1, 64))


def _consent_state(session: Session, member_id: int) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for row in session.scalars(
        select(Consent).where(Consent.member_id == member_id).order_by(Consent.recorded_at, Consent.id)
    ):
        state[row.purpose] = {
            "granted": row.granted,
            "recorded_at": row.recorded_at.isoformat(),
            "source": row.source,
        }
    return state


def _etag(state: dict[str, Any]) -> str:
    return '"' + hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:32] + '"'


@blp.get("/<int:member_id>/consent")
@guarded(blp, "members:read")
@blp.response(200, ConsentMap)
def get_consent(member_id: int) -> Response:
    """The member's consent in force, by purpose, with an ``ETag`` to send back as ``If-Match``."""
    with Session(engine()) as session:
        member = find_member(session, current().workspace_id, str(member_id))
        state = _consent_state(session, member.id)
    visible = _visible_consents(state)
    response = Response(json.dumps(visible), mimetype="application/json")
    response.headers["ETag"] = _etag(state)
    return response


@blp.put("/<int:member_id>/consent/<string:purpose>")
@guarded(blp, "consent:write")
@blp.arguments(ConsentBody)
@blp.response(200, ConsentMap)
@blp.alt_response(412, response="PRECONDITION_FAILED")
@blp.alt_response(428, response="PRECONDITION_REQUIRED")
def put_consent(body: dict[str, Any], member_id: int, purpose: str) -> Response:
    """Record a consent change. Send ``If-Match`` with the ETag you read: if someone changed the
    member's consent since, the answer is 412 and nothing is recorded."""
    if purpose not in PURPOSES:
        abort(422, message="unknown purpose", errors={"purpose": f"one of {', '.join(PURPOSES)}"})
    expected = request.headers.get("If-Match")
    if not expected:
        abort(428, message="send If-Match with the ETag of GET .../consent, so a concurrent edit is not lost")
    with Session(engine()) as session:
        member = find_member(session, current().workspace_id, str(member_id))
        # Touch the member first: it takes the row's write lock, so two edits with the same ETag
        # cannot both pass the check below.
        session.execute(update(Member).where(Member.id == member.id).values(updated_at=now()))
        state = _consent_state(session, member.id)
        if not if_match(expected, _etag(state)):
            abort(412, message="the consent changed since you read it; read it again and retry")
        session.add(
            Consent(
                workspace_id=member.workspace_id,
                member_id=member.id,
                purpose=purpose,
                granted=body["granted"],
                source=body["source"],
                recorded_at=now(),
            )
        )
        session.commit()
        state = _consent_state(session, member.id)
    response = Response(json.dumps(state), mimetype="application/json")
    response.headers["ETag"] = _etag(state)
    return response


class SuggestionItem(ma.Schema):
    other_member_id = F.Integer(required=True)
    confidence = F.Float(required=True)
    evidence = F.List(F.String())
    status = F.String()


@blp.get("/<int:member_id>/merge-suggestions")
@guarded(blp, "members:read")
@blp.response(200, SuggestionItem(many=True))
def merge_suggestions(member_id: int) -> list[dict[str, Any]]:
    """Other members who may be the same person, with the evidence, most likely first."""
    s = MergeSuggestion
    with Session(engine()) as session:
        member = find_member(session, current().workspace_id, str(member_id))
        rows = session.scalars(
            select(s).where(
                s.workspace_id == member.workspace_id,
                (s.member_a_id == member.id) | (s.member_b_id == member.id),
            )
        ).all()
        return sorted(
            (
                {
                    "other_member_id": r.member_b_id if r.member_a_id == member.id else r.member_a_id,
                    "confidence": r.confidence,
                    "evidence": list(r.evidence or []),
                    "status": r.status,
                }
                for r in rows
            ),
            key=lambda x: -x["confidence"],
        )


__all__ = ["KINDS", "blp"]
