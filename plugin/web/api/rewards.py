"""``/api/v1/rewards``: the rewards ledger, balances, grants by hand, approvals, payouts,
reversals and the release of grants whose hold is over."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from plugin.db.ids import MAX_BIG_ID, MAX_ID
from plugin.db.models import RewardGrant, RewardLine
from plugin.errors import ConfigError, NotFound, ValidationFailed
from plugin.services.program_rules import KINDS, check_kind, load_rules, money
from plugin.services.rewards import REASONS, STATUSES, balances, grant, move, plain, release
from plugin.web.api.core import PageArgs, blueprint, current, decode_cursor, guarded, page_schema, paged
from plugin.web.context import engine, now, settings

blp = blueprint("rewards", "/rewards", "Rewards: the ledger, balances, grants, approvals and payouts")
F = ma.fields
DECIMAL = {"description": 'an exact decimal as a string, e.g. "12.50"', "example": "12.50"}


class RewardItem(ma.Schema):
    id = F.Integer(required=True)
    member_id = F.Integer(required=True)
    kind = F.String(required=True, validate=ma.validate.OneOf(KINDS))
    amount = F.String(required=True, metadata=DECIMAL | {"description": "negative for a correction"})
    currency = F.String(required=True, allow_none=True, metadata={"description": "ISO 4217; null for points"})
    reason = F.String(required=True, validate=ma.validate.OneOf(REASONS))
    status = F.String(required=True, validate=ma.validate.OneOf(STATUSES))
    idempotency_key = F.String(required=True)
    hold_until = F.AwareDateTime(required=True, allow_none=True)
    needs_approval = F.Boolean(required=True)
    corrects_id = F.Integer(required=True, allow_none=True, metadata={"description": "the grant it corrects"})
    note = F.String(required=True, allow_none=True)
    created_by = F.String(required=True)
    created_at = F.AwareDateTime(required=True)


RewardPage = page_schema(RewardItem, "RewardPage")


def _query(workspace_id: int) -> tuple[Any, Any]:
    """The ledger's rows (each grant with the status of its latest line), and that status."""
    g, line = RewardGrant, RewardLine
    status = (
        select(line.status).where(line.grant_id == g.id).order_by(line.id.desc()).limit(1).scalar_subquery()
    )
    query = select(
        g.id, g.member_id, g.kind, g.amount, g.currency, g.reason, status.label("status"), g.idempotency_key,
        g.hold_until, g.needs_approval, g.corrects_id, g.note, g.created_by, g.created_at,
    ).where(g.workspace_id == workspace_id)  # fmt: skip
    return query, status


def _row(row: Any) -> dict[str, Any]:
    return dict(row._mapping) | {"amount": plain(row.amount)}


def _one(conn: Connection, workspace_id: int, grant_id: int) -> dict[str, Any]:
    query, _ = _query(workspace_id)
    found = conn.execute(query.where(RewardGrant.id == grant_id)).first()
    if found is None:
        raise NotFound(f"no reward {grant_id} in this workspace")
    return _row(found)


class RewardLedgerArgs(PageArgs):
    member_id = F.Integer(validate=ma.validate.Range(1, MAX_ID))
    status = F.String(validate=ma.validate.OneOf(STATUSES), metadata={"description": "the status now"})
    reason = F.String(validate=ma.validate.OneOf(REASONS))


@blp.get("")
@guarded(blp, "rewards:read", not_found=False)
@blp.arguments(RewardLedgerArgs, location="query")
@blp.response(200, RewardPage)
def list_rewards(args: dict[str, Any]) -> dict[str, Any]:
    """The ledger: grants, newest first, each with the status it has now."""
    after = decode_cursor(args["cursor"], [int], wide=True)
    g = RewardGrant
    query, status = _query(current().workspace_id)
    if args.get("member_id"):
        query = query.where(g.member_id == args["member_id"])
    if args.get("reason"):
        query = query.where(g.reason == args["reason"])
    if args.get("status"):
        query = query.where(status == args["status"])
    if after is not None:
        query = query.where(g.id < after[0])
    with engine().connect() as conn:
        found = conn.execute(query.order_by(g.id.desc()).limit(args["limit"] + 1)).all()
    return paged([_row(r) for r in found], args["limit"], lambda r: [r["id"]])


class RewardBalanceArgs(ma.Schema):
    member_id = F.Integer(validate=ma.validate.Range(1, MAX_ID))


class RewardBalance(ma.Schema):
    member_id = F.Integer(required=True)
    unit = F.String(required=True, metadata={"description": "`points`, or an ISO 4217 currency"})
    pending = F.String(required=True, metadata=DECIMAL)
    approved = F.String(required=True, metadata=DECIMAL | {"description": "approved, to pay"})
    paid = F.String(required=True, metadata=DECIMAL)


@blp.get("/balances")
@guarded(blp, "rewards:read", not_found=False)
@blp.arguments(RewardBalanceArgs, location="query")
@blp.response(200, RewardBalance(many=True))
def reward_balances(args: dict[str, Any]) -> list[dict[str, Any]]:
    """Per member and unit: pending, approved (to pay) and paid. A reversed grant counts nowhere."""
    with engine().connect() as conn:
        return balances(conn, current().workspace_id, args.get("member_id"))


class RewardGrantBody(ma.Schema):
    member_id = F.Integer(required=True, validate=ma.validate.Range(1, MAX_ID))
    key = F.String(
        required=True,
        validate=ma.validate.Length(1, 255),
        metadata={"description": "idempotency key: granting again with it creates nothing"},
    )
    reason = F.String(
        load_default="manual",
        validate=ma.validate.OneOf(REASONS),
        metadata={"description": "`manual` takes the amount given; a rule's reason, the rule's amount"},
    )
    amount = F.String(validate=ma.validate.Length(1, 40), metadata=DECIMAL | {"description": "manual only"})
    kind = F.String(validate=ma.validate.OneOf(KINDS), metadata={"description": "manual only"})
    currency = F.String(
        allow_none=True, validate=ma.validate.Length(3, 3), metadata={"description": "ISO 4217, for money"}
    )
    note = F.String(allow_none=True, validate=ma.validate.Length(max=500))
    corrects = F.Integer(
        allow_none=True,
        validate=ma.validate.Range(1, MAX_BIG_ID),
        metadata={"description": "the grant this one corrects (its amount may then be negative)"},
    )


class RewardGranted(RewardItem):
    created = F.Boolean(required=True, metadata={"description": "false: the key was known, nothing new"})


def _check_grant(conn: Connection, workspace_id: int, body: dict[str, Any]) -> None:
    """The body's mistakes, each named with its field, before the ledger is touched."""
    if body["reason"] != "manual":
        given = [k for k in ("amount", "kind", "currency") if body.get(k) is not None]
        if given:
            what = f"set by the {body['reason']} rule; leave it out"
            raise ValidationFailed(
                "a rule's reward takes its amount from the rule", fields=dict.fromkeys(given, what)
            )
        return
    missing = {k: "needed for a manual grant" for k in ("amount", "kind") if body.get(k) is None}
    if missing:
        raise ValidationFailed("a manual grant needs an amount and a kind", fields=missing)
    try:
        value = money(body["amount"], "amount")
    except ConfigError as exc:
        raise ValidationFailed(exc.user_message, fields={"amount": exc.user_message}) from None
    try:
        check_kind(body["kind"], body.get("currency"), "a manual grant")
    except ConfigError as exc:
        raise ValidationFailed(exc.user_message, fields={"currency": exc.user_message}) from None
    if value == 0 or (value < 0 and body.get("corrects") is None):
        what = "above zero (a negative amount only corrects a grant: give `corrects`)"
        raise ValidationFailed(f"the amount must be {what}", fields={"amount": what})
    if body.get("corrects") is not None:
        g = RewardGrant
        known = conn.execute(
            select(g.id).where(g.id == body["corrects"], g.workspace_id == workspace_id)
        ).scalar()
        if known is None:
            raise ValidationFailed(
                f"no reward {body['corrects']} to correct", fields={"corrects": "a reward id of this ledger"}
            )


def _grant(body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    who = current()
    rules = load_rules(settings().programs_config)
    with engine().begin() as conn:
        if not body["key"].strip():
            raise ValidationFailed("an idempotency key is needed", fields={"key": "not only spaces"})
        _check_grant(conn, who.workspace_id, body)
        done = grant(conn, who.workspace_id, body["member_id"], body["reason"], key=body["key"], rules=rules,
                     by=who.actor, amount=body.get("amount"), kind=body.get("kind"),
                     currency=body.get("currency"), note=body.get("note"), corrects=body.get("corrects"),
                     now=now())  # fmt: skip
        return _one(conn, who.workspace_id, done.grant_id), done.created


@blp.post("")
@guarded(blp, "rewards:write")
@blp.arguments(RewardGrantBody)
@blp.response(201, RewardGranted)
@blp.alt_response(200, schema=RewardGranted, description="The key was known: the grant it made, unchanged")
def grant_reward(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Grant a reward by hand (``manual``: approved at once, the granter approves it) or by a
    rule's reason (the rule's amount, hold and approval threshold). Idempotent by ``key``: sent
    again, it answers 200 with the grant the key made. Announced as ``reward.granted``."""
    try:
        row, created = _grant(body)
    except IntegrityError:  # the same key committed a moment ago by another request: that one won
        row, created = _grant(body)
    return {**row, "created": created}, 201 if created else 200


class RewardStatusBody(ma.Schema):
    status = F.String(required=True, validate=ma.validate.OneOf(("approved", "paid", "reversed")))
    note = F.String(
        allow_none=True,
        validate=ma.validate.Length(max=500),
        metadata={"description": "e.g. the provider's payout id; needed to reverse"},
    )


class RewardMoved(RewardItem):
    previous_status = F.String(required=True, validate=ma.validate.OneOf(STATUSES))


@blp.post(f"/<int(max={MAX_BIG_ID}):reward_id>/status")
@guarded(blp, "rewards:write")
@blp.arguments(RewardStatusBody)
@blp.response(200, RewardMoved)
def move_reward(body: dict[str, Any], reward_id: int) -> dict[str, Any]:
    """Approve a pending reward (after its hold), mark an approved one paid, or reverse one (it
    stays in the ledger, counted nowhere). A change its status does not allow answers 422."""
    who = current()
    if body["status"] == "reversed" and not (body.get("note") or "").strip():
        raise ValidationFailed("say why the reward is reversed", fields={"note": "needed to reverse"})
    with engine().begin() as conn:
        before = move(conn, who.workspace_id, reward_id, body["status"], by=who.actor, note=body.get("note"))
        return {**_one(conn, who.workspace_id, reward_id), "previous_status": before}


class RewardsReleased(ma.Schema):
    approved = F.List(F.Integer(), required=True, metadata={"description": "the rewards approved"})


@blp.post("/release")
@guarded(blp, "rewards:write", not_found=False)
@blp.response(200, RewardsReleased)
def release_rewards() -> dict[str, Any]:
    """Approve every pending reward whose hold is over and that waits for no person (announced as
    ``reward.granted``, approved). Safe to call at any time: a reward is approved once."""
    with engine().begin() as conn:
        return {"approved": release(conn, current().workspace_id, now())}
