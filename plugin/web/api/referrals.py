"""``/api/v1/referrals``: the referral program: invite advocates, record referrals (a company's own
forms), the review queue of held referrals and the list of every referral with its status."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from sqlalchemy import Connection, select

from plugin.db.ids import MAX_ID
from plugin.db.models import Referral, ReferralInvite
from plugin.errors import NotFound
from plugin.services.program_rules import load_programs
from plugin.services.referrals import capture, invite, review
from plugin.web.api.core import PageArgs, blueprint, current, decode_cursor, guarded, page_schema, paged
from plugin.web.context import engine, now, settings

blp = blueprint("referrals", "/referrals", "Referral program: invitations, referrals, the review queue")
F = ma.fields
STATUSES = ("pending", "held", "converted", "rejected")


class ReferralItem(ma.Schema):
    id = F.Integer(required=True)
    advocate_id = F.Integer(required=True, metadata={"description": "the member who referred"})
    campaign = F.String(required=True)
    prospect_name = F.String(required=True)
    prospect_email = F.String(required=True)
    prospect_company = F.String(required=True, allow_none=True)
    status = F.String(required=True, validate=ma.validate.OneOf(STATUSES))
    held_reason = F.String(required=True, allow_none=True, metadata={"description": "why a check held it"})
    deal_crm_id = F.String(required=True, allow_none=True, metadata={"description": "the won deal"})
    reward_id = F.Integer(required=True, allow_none=True, metadata={"description": "the advocate's reward"})
    created_at = F.AwareDateTime(required=True)
    converted_at = F.AwareDateTime(required=True, allow_none=True)


ReferralPage = page_schema(ReferralItem, "ReferralPage")


class ReferralArgs(PageArgs):
    status = F.String(validate=ma.validate.OneOf(STATUSES), metadata={"description": "`held`: review queue"})
    advocate_id = F.Integer(validate=ma.validate.Range(1, MAX_ID))


def _query(workspace_id: int) -> Any:
    r = Referral
    return (
        select(
            r.id,
            r.member_id.label("advocate_id"),
            ReferralInvite.campaign,
            r.prospect_name,
            r.prospect_email,
            r.prospect_company,
            r.status,
            r.held_reason,
            r.deal_crm_id,
            r.reward_grant_id.label("reward_id"),
            r.created_at,
            r.converted_at,
        )
        .join(ReferralInvite, ReferralInvite.id == r.invite_id)
        .where(r.workspace_id == workspace_id)
    )


def _one(conn: Connection, workspace_id: int, referral_id: int) -> dict[str, Any]:
    row = conn.execute(_query(workspace_id).where(Referral.id == referral_id)).first()
    if row is None:
        raise NotFound(f"no referral {referral_id} in this workspace")
    return dict(row._mapping)


@blp.get("")
@guarded(blp, "referrals:read", not_found=False)
@blp.arguments(ReferralArgs, location="query")
@blp.response(200, ReferralPage)
def list_referrals(args: dict[str, Any]) -> dict[str, Any]:
    """Referrals, newest first; ``status=held`` is the review queue."""
    after = decode_cursor(args["cursor"], [int])
    query = _query(current().workspace_id)
    if args.get("status"):
        query = query.where(Referral.status == args["status"])
    if args.get("advocate_id"):
        query = query.where(Referral.member_id == args["advocate_id"])
    if after is not None:
        query = query.where(Referral.id < after[0])
    with engine().connect() as conn:
        rows = [
            dict(r._mapping)
            for r in conn.execute(query.order_by(Referral.id.desc()).limit(args["limit"] + 1))
        ]
    return paged(rows, args["limit"], lambda r: [r["id"]])


@blp.get("/<int:referral_id>")
@guarded(blp, "referrals:read")
@blp.response(200, ReferralItem)
def get_referral(referral_id: int) -> dict[str, Any]:
    """One referral: who referred whom, its status, why it is held, the deal and reward."""
    with engine().connect() as conn:
        return _one(conn, current().workspace_id, referral_id)


class ReferralCaptureBody(ma.Schema):
    code = F.String(
        required=True, validate=ma.validate.Length(1, 64), metadata={"description": "the advocate's code"}
    )
    name = F.String(required=True, validate=ma.validate.Length(1, 255))
    email = F.String(required=True, validate=ma.validate.Length(1, 320))
    company = F.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=255))


class ReferralCaptured(ma.Schema):
    id = F.Integer(required=True)
    status = F.String(required=True, validate=ma.validate.OneOf(("pending", "held")))
    held_reason = F.String(required=True, allow_none=True)


@blp.post("")
@guarded(blp, "referrals:write")
@blp.arguments(ReferralCaptureBody)
@blp.response(201, ReferralCaptured)
def capture_referral(body: dict[str, Any]) -> dict[str, Any]:
    """Record a referral made with an advocate's code (what the public referral form does), for a
    company's own forms. A referral a check finds suspicious is recorded too, held for review with
    the reason; a code of another workspace is unknown (404)."""
    workspace_id = current().workspace_id
    policy = load_programs(settings().programs_config)
    with engine().begin() as conn:
        owner = conn.execute(
            select(ReferralInvite.workspace_id).where(ReferralInvite.code == body["code"])
        ).scalar()
        if owner != workspace_id:  # another workspace's code reads as unknown
            raise NotFound("no referral code like that in this workspace")
        got = capture(conn, body["code"], name=body["name"], email=body["email"],
                      company=(body["company"] or "").strip() or None, policy=policy, now=now())  # fmt: skip
    return {"id": got.referral_id, "status": got.status, "held_reason": got.reason}


class ReferralInviteBody(ma.Schema):
    segment = F.String(
        load_default="champions",
        validate=ma.validate.Length(1, 200),
        metadata={"description": "advocate levels, comma-separated (e.g. `champions,advocates`), or `all`"},
    )
    campaign = F.String(load_default="default", validate=ma.validate.Length(1, 64))
    limit = F.Integer(
        validate=ma.validate.Range(1, 100_000), metadata={"description": "invite at most this many"}
    )
    min_score = F.Float(validate=ma.validate.Range(0, 100), metadata={"description": "lowest advocate score"})


class ReferralInvited(ma.Schema):
    invited = F.Integer(required=True)
    members = F.List(F.Integer(), required=True, metadata={"description": "the members invited"})
    skipped = F.Dict(
        keys=F.String(), values=F.Integer(), required=True, metadata={"description": "reason -> members"}
    )


@blp.post("/invitations")
@guarded(blp, "referrals:write", not_found=False)
@blp.arguments(ReferralInviteBody)
@blp.response(200, ReferralInvited)
@blp.alt_response(400, response="BAD_REQUEST")
def invite_advocates(body: dict[str, Any]) -> dict[str, Any]:
    """Give each advocate of the segment a personal referral link and send ``referral.invitation``;
    members without marketing consent, over the contact budget or already invited to the campaign
    are skipped and counted by reason."""
    policy = load_programs(settings().programs_config)
    with engine().begin() as conn:
        done = invite(conn, current().workspace_id, segment=body["segment"], campaign=body["campaign"],
                      policy=policy, public_url=settings().public_url, limit=body.get("limit"),
                      min_score=body.get("min_score"), now=now())  # fmt: skip
    return {"invited": len(done.invited), "members": done.invited, "skipped": done.skipped}


class ReferralReviewBody(ma.Schema):
    accept = F.Boolean(required=True, metadata={"description": "true: back to pending; false: rejected"})


@blp.post("/<int:referral_id>/review")
@guarded(blp, "referrals:write")
@blp.arguments(ReferralReviewBody)
@blp.response(200, ReferralItem)
def review_referral(body: dict[str, Any], referral_id: int) -> dict[str, Any]:
    """Decide on a referral a check held: accepted, it is pending again (and may convert);
    rejected, for good. Only a held referral can be reviewed (422 otherwise)."""
    workspace_id = current().workspace_id
    with engine().begin() as conn:
        _one(conn, workspace_id, referral_id)
        review(conn, workspace_id, referral_id, accept=body["accept"])
        return _one(conn, workspace_id, referral_id)
