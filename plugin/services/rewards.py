"""The rewards ledger: grant (idempotent by key), release holds, approve, mark paid, reverse, and
read the ledger and balances. Every grant and every approval emits ``reward.granted`` in the same
transaction (pending first when it waits; approved, with the same idempotency key, when it may be
paid), so a rewards provider hears of each reward exactly as the ledger records it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select

from plugin.db.base import table_of, utcnow
from plugin.db.models import Member, RewardGrant, RewardLine, Workspace
from plugin.db.sql import in_values
from plugin.errors import ConfigError, NotFound, ValidationFailed
from plugin.services import contact_budget
from plugin.services.program_rules import Rule, check_kind, money
from plugin.services.webhook_outbox import Event, emit
from plugin.services.webhook_signals import member_refs
from webhooks.events import EMAIL_CONSENT, MemberRef, reward_granted

REASONS = ("referral_converted", "review_written", "panel_completed", "manual")
STATUSES = ("pending", "approved", "paid", "reversed")
NEXT = {"approved": ("pending",), "paid": ("approved",), "reversed": ("pending", "approved", "paid")}


@dataclass(frozen=True)
class Granted:
    grant_id: int
    created: bool  # False: the idempotency key was known; nothing was written
    status: str


def plain(amount: Decimal) -> str:
    """12.5 as "12.5", 50 as "50" (not "5E+1"), -0.05 as "-0.05"."""
    return format(amount.normalize(), "f")


def _current() -> Any:
    """(grant_id, status) of every grant's latest line, to join against."""
    line = RewardLine
    latest = select(line.grant_id, func.max(line.id).label("last")).group_by(line.grant_id).subquery()
    return select(latest.c.grant_id, line.status).join(line, line.id == latest.c.last).subquery()


def _status(conn: Connection, grant_ids: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    line = RewardLine
    for start in range(0, len(grant_ids), 5_000):  # a bounded parameter list, whatever the ledger's size
        chunk = grant_ids[start : start + 5_000]
        latest = (
            select(func.max(line.id)).where(in_values(conn, line.grant_id, chunk)).group_by(line.grant_id)
        )
        out |= {
            r[0]: r[1] for r in conn.execute(select(line.grant_id, line.status).where(line.id.in_(latest)))
        }
    return out


def _lock(conn: Connection, grant_ids: list[int]) -> None:
    """Serialise status changes of these grants (PostgreSQL row locks; SQLite has one writer)."""
    if grant_ids and conn.dialect.name == "postgresql":
        g = RewardGrant
        conn.execute(select(g.id).where(g.id.in_(grant_ids)).order_by(g.id).with_for_update()).all()


def grant(
    conn: Connection,
    workspace_id: int,
    member_id: int,
    reason: str,
    *,
    key: str,
    rules: dict[str, Rule],
    by: str,
    amount: Decimal | str | None = None,
    kind: str | None = None,
    currency: str | None = None,
    note: str | None = None,
    corrects: int | None = None,
    now: datetime | None = None,
) -> Granted:
    """Write a grant (and its first status) unless ``key`` is known in the workspace. A rule's
    reason takes its amount from the rule; ``manual`` (a person's grant or a correction) needs
    its own amount and kind, and is approved at once: the person granting it approves it."""
    if not key or len(key) > 255:
        raise ValidationFailed("an idempotency key is needed", fields={"key": "1 to 255 characters"})
    g = RewardGrant
    found = conn.execute(
        select(g.id).where(g.workspace_id == workspace_id, g.idempotency_key == key)
    ).scalar()
    if found is not None:
        return Granted(int(found), False, _status(conn, [found])[found])
    if reason not in REASONS:
        raise ValidationFailed(f"unknown reward reason {reason!r}", fields={"reason": ", ".join(REASONS)})
    member = conn.execute(
        select(Member.id).where(Member.id == member_id, Member.workspace_id == workspace_id)
    ).scalar()
    if member is None:
        raise NotFound(f"no member {member_id}", hint="`flywheel members show EMAIL` finds a member's id")
    when = now or utcnow()
    try:
        if reason == "manual":
            if amount is None or kind is None:
                raise ValidationFailed("a manual grant needs --amount and --kind (and --currency for money)")
            value = money(amount, "amount")
            currency = check_kind(kind, currency, "manual grant")
            hold_until, needs_approval = None, False
        else:
            rule = rules.get(reason)
            if rule is None:
                raise ConfigError(
                    f"no reward rule for {reason!r}", hint="add one in FLYWHEEL_PROGRAMS_CONFIG"
                )
            kind, value, currency = rule.kind, rule.amount, rule.currency
            hold_until = when + timedelta(days=rule.hold_days) if rule.hold_days else None
            needs_approval = rule.needs_approval(value)
    except ConfigError as exc:
        raise ValidationFailed(exc.user_message, hint=exc.hint) from None
    if value == 0 or (value < 0 and corrects is None):
        raise ValidationFailed("the amount must be above zero (a negative one only corrects a grant)")
    if corrects is not None:
        _grant_row(conn, workspace_id, corrects)
    grant_id = conn.execute(
        table_of(RewardGrant)
        .insert()
        .values(
            workspace_id=workspace_id,
            member_id=member_id,
            kind=kind,
            amount=value,
            currency=currency,
            reason=reason,
            idempotency_key=key,
            note=note,
            hold_until=hold_until,
            needs_approval=needs_approval,
            corrects_id=corrects,
            created_by=by,
            created_at=when,
        )
        .returning(table_of(RewardGrant).c.id)
    ).scalar_one()
    status = "pending" if hold_until or needs_approval else "approved"
    _line(conn, grant_id, status, by, note, when)
    _announce(conn, workspace_id, [grant_id], status, when)
    if value > 0:  # a reward notice uses up an ask in the shared budget; it is never held back
        contact_budget.record(conn, workspace_id, [member_id], "reward.granted", when)
    return Granted(grant_id, True, status)


def _line(conn: Connection, grant_id: int, status: str, by: str, note: str | None, at: datetime) -> None:
    conn.execute(
        table_of(RewardLine).insert().values(grant_id=grant_id, status=status, by=by, note=note, at=at)
    )


def _grant_row(conn: Connection, workspace_id: int, grant_id: int) -> Any:
    g = RewardGrant
    row = conn.execute(select(g).where(g.id == grant_id, g.workspace_id == workspace_id)).first()
    if row is None:
        raise NotFound(f"no reward {grant_id}", hint="`flywheel rewards ledger` lists them")
    return row


def move(
    conn: Connection, workspace_id: int, grant_id: int, status: str, *, by: str, note: str | None = None
) -> str:
    """Approve, mark paid or reverse a grant (a new status line); returns the status it left."""
    row = _grant_row(conn, workspace_id, grant_id)
    _lock(conn, [grant_id])
    now = utcnow()
    current = _status(conn, [grant_id])[grant_id]
    if current not in NEXT[status]:
        raise ValidationFailed(f"reward {grant_id} is {current}; it cannot become {status}")
    if status == "approved" and row.hold_until and row.hold_until > now:
        raise ValidationFailed(
            f"reward {grant_id} is held until {row.hold_until:%Y-%m-%d %H:%M} UTC",
            hint="the hold is the rule's (e.g. a refund window); approve it after that",
        )
    _line(conn, grant_id, status, by, note, now)
    if status == "approved":
        _announce(conn, workspace_id, [grant_id], "approved", now)
    return current


def release(conn: Connection, workspace_id: int, now: datetime | None = None) -> list[int]:
    """Approve the pending grants whose hold is over and that wait for no person."""
    when = now or utcnow()
    g = RewardGrant
    now_state = _current()
    query = (
        select(g.id)
        .join(now_state, now_state.c.grant_id == g.id)
        .where(
            g.workspace_id == workspace_id,
            g.needs_approval.is_(False),
            g.hold_until <= when,
            now_state.c.status == "pending",
        )
        .order_by(g.id)
    )
    held = list(conn.execute(query).scalars())
    _lock(conn, held)
    due = [i for i, s in _status(conn, held).items() if s == "pending"]  # as it stands under the lock
    for grant_id in due:
        _line(conn, grant_id, "approved", "hold", "the hold ran out", when)
    _announce(conn, workspace_id, due, "approved", when)
    return sorted(due)


def _announce(conn: Connection, workspace_id: int, grant_ids: list[int], status: str, when: datetime) -> None:
    if not grant_ids:
        return
    g = RewardGrant
    rows = conn.execute(select(g).where(g.id.in_(grant_ids))).all()
    rows = [r for r in rows if r.amount > 0]  # corrections are ledger entries, not rewards to pay
    people = member_refs(conn, sorted({r.member_id for r in rows}))
    slug = conn.execute(select(Workspace.slug).where(Workspace.id == workspace_id)).scalar_one()
    events = []
    for row in rows:
        person = people.get(row.member_id, {"name": None, "locale": None, "email": None, "consents": set()})
        email = person["email"] if EMAIL_CONSENT["reward.granted"] in person["consents"] else None
        events.append(
            Event(
                "reward.granted",
                reward_granted(
                    workspace=slug,
                    occurred_at=when,
                    member=MemberRef(row.member_id, person["name"], person["locale"], email),
                    reward_id=row.id,
                    kind=row.kind,
                    amount=_shown(row.amount, row.kind),
                    currency=row.currency,
                    reason=row.reason,
                    status=status,
                    idempotency_key=row.idempotency_key,
                    crm=person.get("crm") or {},
                ),
            )
        )
    emit(conn, workspace_id, events)


def _shown(amount: Decimal, kind: str) -> Decimal:
    """Money with cents as providers expect ("50.00"), more places only where they matter."""
    cents = amount.quantize(Decimal("0.01"))
    return cents if kind == "money" and cents == amount else amount.normalize()


def ledger(
    conn: Connection, workspace_id: int, member_id: int | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    g = RewardGrant
    query = select(g).where(g.workspace_id == workspace_id).order_by(g.id.desc()).limit(limit)
    if member_id is not None:
        query = query.where(g.member_id == member_id)
    rows = conn.execute(query).all()
    status = _status(conn, [r.id for r in rows]) if rows else {}
    return [
        {
            "id": r.id,
            "member_id": r.member_id,
            "kind": r.kind,
            "amount": plain(r.amount),
            "currency": r.currency,
            "reason": r.reason,
            "status": status.get(r.id),
            "idempotency_key": r.idempotency_key,
            "hold_until": r.hold_until.isoformat() if r.hold_until else None,
            "needs_approval": r.needs_approval,
            "corrects": r.corrects_id,
            "note": r.note,
            "by": r.created_by,
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]


def balances(conn: Connection, workspace_id: int, member_id: int | None = None) -> list[dict[str, Any]]:
    """Per member and unit (points, or a currency): pending, approved (to pay), paid. A reversed
    grant counts nowhere; a correction counts where its own status puts it."""
    g = RewardGrant
    now_state = _current()
    query = (
        select(g.member_id, g.currency, g.amount, now_state.c.status)
        .join(now_state, now_state.c.grant_id == g.id)
        .where(g.workspace_id == workspace_id)
    )
    if member_id is not None:
        query = query.where(g.member_id == member_id)
    sums: dict[tuple[int, str], dict[str, Decimal]] = defaultdict(
        lambda: {"pending": Decimal(0), "approved": Decimal(0), "paid": Decimal(0)}
    )
    for member, currency, amount, state in conn.execute(query):
        if state in ("pending", "approved", "paid"):
            sums[(member, currency or "points")][state] += amount
    return [
        {"member_id": m, "unit": unit, **{k: plain(v) for k, v in s.items()}}
        for (m, unit), s in sorted(sums.items())
    ]
