"""Referral programs: invite advocates (by level, with marketing consent, within the contact
budget) with a personal unguessable code; capture the people they refer, holding suspicious ones
for review with the reason; convert a referral when the CRM reports a won deal for the prospect
or their company inside the attribution window, and grant the rule's reward."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.exc import IntegrityError

from connectors.records import normalize_email
from plugin.db.base import table_of, utcnow
from plugin.db.models import (
    CrmCompanyLink,
    CrmConnection,
    Identity,
    Member,
    Organization,
    Referral,
    ReferralInvite,
    Score,
    Workspace,
)
from plugin.db.sql import in_values
from plugin.errors import ConfigError, NotFound, ValidationFailed
from plugin.services import contact_budget
from plugin.services.crm_deals import closed_on, workspace_deals
from plugin.services.domains import email_domain, is_company_domain
from plugin.services.program_rules import Programs, Rule
from plugin.services.rewards import grant
from plugin.services.webhook_outbox import Event, emit
from plugin.services.webhook_signals import member_refs
from webhooks.events import Deal, MemberRef, Prospect, referral_converted, referral_invitation

LEVELS = ("champion", "advocate", "contributor", "participant", "observer")


@dataclass
class Invited:
    invited: list[int] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> members skipped


def _slug(conn: Connection, workspace_id: int) -> str:
    return str(conn.execute(select(Workspace.slug).where(Workspace.id == workspace_id)).scalar_one())


def invite(
    conn: Connection,
    workspace_id: int,
    *,
    segment: str,
    campaign: str,
    policy: Programs,
    public_url: str | None,
    limit: int | None = None,
    min_score: float | None = None,
    now: datetime | None = None,
) -> Invited:
    """Invite the advocates of ``segment`` (a level, several comma-separated, or ``all``) whose
    advocate score is at least ``min_score`` (when given) to refer."""
    _need_url(public_url)
    levels = [s.strip().removesuffix("s") for s in segment.split(",") if s.strip()]
    if levels == ["all"]:
        levels = list(LEVELS)
    if not levels or any(level not in LEVELS for level in levels):
        known = ", ".join(f"{x}s" for x in LEVELS)
        raise ValidationFailed(
            f"unknown segment {segment!r}", fields={"segment": known}, hint=f"one of {known}"
        )
    when = now or utcnow()
    s = Score
    chosen = _advocates(
        conn, workspace_id, s.label.in_(levels),
        s.score >= (min_score if min_score is not None else float("-inf")),
    )  # fmt: skip
    return _invite_chosen(
        conn, workspace_id, chosen, Invited(), campaign=campaign, policy=policy, public_url=public_url,
        now=when, limit=limit,
    )  # fmt: skip


MAX_PICKED = 500


def invite_members(
    conn: Connection,
    workspace_id: int,
    member_ids: Sequence[int],
    *,
    campaign: str,
    policy: Programs,
    public_url: str | None,
    now: datetime | None = None,
) -> Invited:
    """Invite the advocates a marketer picked by id (the dashboard's ticked leaderboard rows), by
    the same rules as :func:`invite`; ids that are not advocates of the workspace are skipped."""
    _need_url(public_url)
    if not member_ids or len(member_ids) > MAX_PICKED:
        raise ValidationFailed(
            "pick the advocates to invite", fields={"members": f"1 to {MAX_PICKED} at once"}
        )
    chosen = _advocates(conn, workspace_id, in_values(conn, Score.subject_id, list(member_ids)))
    result = Invited()
    result.skipped["not an advocate of this workspace"] = len(set(member_ids)) - len(chosen)
    return _invite_chosen(
        conn, workspace_id, chosen, result, campaign=campaign, policy=policy, public_url=public_url,
        now=now or utcnow(),
    )  # fmt: skip


def new_code() -> str:
    """An unguessable referral code (72 random bits) that starts with a letter or digit, so that
    it is never read as an option on a command line (`flywheel referrals capture CODE`)."""
    while True:
        code = secrets.token_urlsafe(9)
        if code[0].isalnum():
            return code


def _advocates(conn: Connection, workspace_id: int, *where: Any) -> list[int]:
    """Advocates of the workspace meeting ``where``, best first."""
    s = Score
    return list(
        conn.execute(
            select(s.subject_id)
            .where(s.workspace_id == workspace_id, s.kind == "advocate", s.subject == "member", *where)
            .order_by(s.score.desc(), s.subject_id)
        ).scalars()
    )


def _need_url(public_url: str | None) -> None:
    if not public_url:
        raise ConfigError(
            "referral links need the address people reach Flywheel at",
            hint="set FLYWHEEL_PUBLIC_URL, e.g. https://flywheel.example.com",
        )


def _invite_chosen(
    conn: Connection,
    workspace_id: int,
    chosen: list[int],
    result: Invited,
    *,
    campaign: str,
    policy: Programs,
    public_url: str | None,
    now: datetime,
    limit: int | None = None,
) -> Invited:
    """Give each chosen advocate (best first) with marketing consent, not yet invited to the
    campaign and within the contact budget, a personal code, and send ``referral.invitation``."""
    campaign = campaign.strip()
    if not campaign or len(campaign) > 64:
        raise ValidationFailed("the campaign needs a name", fields={"campaign": "1 to 64 characters"})
    i = ReferralInvite
    already = set(
        conn.execute(
            select(i.member_id).where(i.workspace_id == workspace_id, i.campaign == campaign)
        ).scalars()
    )
    people = member_refs(conn, chosen)
    fresh = [m for m in chosen if m not in already]
    consenting = [m for m in fresh if "marketing" in people.get(m, {}).get("consents", ())]
    result.skipped["already invited to this campaign"] = len(chosen) - len(fresh)
    result.skipped["no marketing consent"] = len(fresh) - len(consenting)
    allowed = contact_budget.within_budget(conn, workspace_id, consenting, now, policy)
    ready = [m for m in consenting if m in allowed]
    result.skipped["over the contact budget"] = len(consenting) - len(ready)
    if limit is not None:
        ready = ready[:limit]
    slug = _slug(conn, workspace_id)
    rows, events = [], []
    for member_id in ready:
        code = new_code()
        person = people[member_id]
        rows.append({"workspace_id": workspace_id, "member_id": member_id, "code": code, "campaign": campaign,
                     "created_at": now})  # fmt: skip
        events.append(
            Event(
                "referral.invitation",
                referral_invitation(
                    workspace=slug,
                    occurred_at=now,
                    member=MemberRef(member_id, person["name"], person["locale"], person["email"]),
                    code=code,
                    referral_url=f"{public_url}/r/{code}",
                    campaign=campaign,
                    crm=person["crm"],
                ),
            )
        )
    if rows:
        conn.execute(table_of(ReferralInvite).insert(), rows)
        contact_budget.record(conn, workspace_id, ready, "referral.invitation", now)
        emit(conn, workspace_id, events)
    result.invited = ready
    return result


@dataclass(frozen=True)
class Captured:
    referral_id: int
    status: str  # pending | held
    reason: str | None


def capture(
    conn: Connection,
    code: str,
    *,
    name: str,
    email: str,
    company: str | None,
    policy: Programs,
    now: datetime | None = None,
) -> Captured:
    """Record a referral made with ``code``. Checks before anything is rewarded: self-referral,
    someone already a customer or in an open deal, a burst from one advocate, a prospect already
    referred (the first referral wins). A suspicious referral is held with its reason."""
    i = ReferralInvite
    invite_row = conn.execute(select(i).where(i.code == code)).first()
    if invite_row is None:
        raise NotFound("this referral link is not valid", hint="check the link the advocate shared")
    try:
        prospect = normalize_email(email)
    except ValueError:
        raise ValidationFailed(
            "the email address is not valid", fields={"email": "e.g. dana@example.com"}
        ) from None
    if not name.strip():
        raise ValidationFailed("a name is needed", fields={"name": "the person's name"})
    when = now or utcnow()
    workspace_id, advocate_id = invite_row.workspace_id, invite_row.member_id
    reason = _suspicion(conn, workspace_id, advocate_id, prospect, policy, when)
    row = {
        "workspace_id": workspace_id,
        "invite_id": invite_row.id,
        "member_id": advocate_id,
        "prospect_name": name.strip()[:255],
        "prospect_email": prospect,
        "prospect_company": (company or "").strip()[:255] or None,
        "status": "held" if reason else "pending",
        "held_reason": reason,
        "created_at": when,
    }
    insert = table_of(Referral).insert().returning(table_of(Referral).c.id)
    try:
        with conn.begin_nested():  # a savepoint: a lost race leaves the transaction usable
            referral_id = conn.execute(insert, row).scalar_one()
    except IntegrityError:  # the same prospect's referral committed a moment ago: it came first
        reason = "already referred at the same moment: the first referral wins"
        referral_id = conn.execute(insert, row | {"status": "held", "held_reason": reason}).scalar_one()
    if not reason:
        prospect_member(conn, workspace_id, name.strip(), prospect, when)
    return Captured(referral_id, "held" if reason else "pending", reason)


def prospect_member(conn: Connection, workspace_id: int, name: str, email: str, now: datetime) -> int:
    """The referred person as a member (found by email, or created with a ``referral`` identity),
    so the next CRM sync writes them with who referred them, and a won deal finds them."""
    m = Member
    found = conn.execute(
        select(m.id).where(
            m.workspace_id == workspace_id, m.primary_email == email, m.merged_into_id.is_(None)
        )
    ).scalar()
    if found is not None:
        return int(found)
    domain = email_domain(email)
    org = conn.execute(
        select(Organization.id).where(
            Organization.workspace_id == workspace_id, Organization.domain == domain
        )
    ).scalar()
    member_id = conn.execute(
        table_of(Member)
        .insert()
        .values(
            workspace_id=workspace_id,
            display_name=name[:255],
            primary_email=email,
            organization_id=org,
            created_at=now,
            updated_at=now,
        )
        .returning(table_of(Member).c.id)
    ).scalar_one()
    conn.execute(
        table_of(Identity)
        .insert()
        .values(
            workspace_id=workspace_id,
            member_id=member_id,
            source="referral",
            source_user_id=email,
            email=email,
            verified=False,
            name=name[:255],
            created_at=now,
        )
    )
    return int(member_id)


def _suspicion(
    conn: Connection, workspace_id: int, advocate_id: int, prospect: str, policy: Programs, now: datetime
) -> str | None:
    advocate_email = conn.execute(select(Member.primary_email).where(Member.id == advocate_id)).scalar()
    domain = email_domain(prospect)
    if advocate_email and normalize_email(advocate_email) == prospect:
        return "self-referral: the prospect's email is the advocate's own"
    if (
        policy.same_domain_is_self
        and advocate_email
        and email_domain(advocate_email) == domain
        and is_company_domain(domain)
    ):
        return f"self-referral: the prospect works at the advocate's own company ({domain})"
    r = Referral
    first = conn.execute(
        select(r.id)
        .where(r.workspace_id == workspace_id, r.prospect_email == prospect)
        .order_by(r.id)
        .limit(1)
    ).scalar()
    if first is not None:
        return f"already referred (referral {first}): the first referral wins"
    known = _customer_or_open_deal(conn, workspace_id, prospect)
    if known:
        return known
    recent = conn.execute(
        select(func.count()).where(
            r.workspace_id == workspace_id, r.member_id == advocate_id, r.created_at > now - timedelta(days=1)
        )
    ).scalar_one()
    if recent >= policy.burst_per_day:
        return f"burst: {recent} referrals from this advocate in the last 24 hours"
    return None


def _customer_or_open_deal(conn: Connection, workspace_id: int, prospect: str) -> str | None:
    m = Member
    found = conn.execute(
        select(m.id, m.lifecycle_stage).where(m.workspace_id == workspace_id, m.primary_email == prospect)
    ).first()
    if found is None:
        return None
    if (found.lifecycle_stage or "").lower() == "customer":
        return "already a customer"
    for deal in workspace_deals(conn, workspace_id):
        if found.id in (deal.member_ids or []):
            return "already a customer (a won deal)" if deal.won else "already in an open deal"
    return None


def attribute(
    conn: Connection,
    workspace_id: int,
    *,
    policy: Programs,
    rules: dict[str, Rule],
    now: datetime | None = None,
) -> list[int]:
    """Convert pending referrals whose prospect (by email) or prospect's company (by domain) has a
    deal won in the CRM within the attribution window; each conversion emits referral.converted
    and grants the rule's reward (idempotent: the key is the referral's). Returns the referral ids."""
    when = now or utcnow()
    r = Referral
    pending = conn.execute(select(r).where(r.workspace_id == workspace_id, r.status == "pending")).all()
    if not pending:
        return []
    won = [d for d in workspace_deals(conn, workspace_id) if d.won]
    member_by_email = {
        e: i
        for i, e in conn.execute(
            select(Member.id, Member.primary_email).where(
                Member.workspace_id == workspace_id,
                Member.primary_email.in_([p.prospect_email for p in pending]),
            )
        )
    }
    links = conn.execute(
        select(CrmCompanyLink.connection_id, CrmCompanyLink.crm_id, Organization.domain)
        .join(Organization, Organization.id == CrmCompanyLink.organization_id)
        .join(CrmConnection, CrmConnection.id == CrmCompanyLink.connection_id)
        .where(CrmConnection.workspace_id == workspace_id, Organization.workspace_id == workspace_id)
    ).all()
    # Company ids are the CRM account's own numbers: they mean something only with their connection.
    domain_of_company = {(conn_id, str(c)): d for conn_id, c, d in links if c}
    converted: list[int] = []
    slug = _slug(conn, workspace_id)
    window = timedelta(days=policy.attribution_days)
    for ref in pending:
        created = ref.created_at
        member_id = member_by_email.get(ref.prospect_email)
        domain = email_domain(ref.prospect_email)
        for deal in won:
            closed = closed_on(deal.close_date) or when
            if not created - timedelta(days=1) <= closed <= created + window:
                continue
            by_person = member_id is not None and member_id in (deal.member_ids or [])
            by_company = is_company_domain(domain) and any(
                domain_of_company.get((deal.connection_id, str(c))) == domain for c in deal.company_ids or []
            )
            if by_person or by_company:
                _convert(conn, workspace_id, slug, ref, deal, closed, rules, when)
                converted.append(ref.id)
                break
    return converted


def _convert(
    conn: Connection, workspace_id: int, slug: str, ref: Any, deal: Any, closed: datetime,
    rules: dict[str, Rule], when: datetime,
) -> None:  # fmt: skip
    reward = grant(conn, workspace_id, ref.member_id, "referral_converted", key=f"referral-{ref.id}",
                   rules=rules, by="referral attribution", now=when)  # fmt: skip
    conn.execute(
        update(Referral)
        .where(Referral.id == ref.id)
        .values(
            status="converted",
            converted_at=when,
            deal_crm_id=str(deal.crm_id),
            reward_grant_id=reward.grant_id,
        )
    )
    person = member_refs(conn, [ref.member_id]).get(ref.member_id, {})
    campaign = conn.execute(
        select(ReferralInvite.campaign).where(ReferralInvite.id == ref.invite_id)
    ).scalar()
    payload = referral_converted(
        workspace=slug,
        occurred_at=when,
        member=MemberRef(
            ref.member_id,
            person.get("name"),
            person.get("locale"),
            person.get("email") if "marketing" in person.get("consents", ()) else None,
        ),
        code=conn.execute(select(ReferralInvite.code).where(ReferralInvite.id == ref.invite_id)).scalar_one(),
        campaign=campaign,
        prospect=Prospect(ref.prospect_name, ref.prospect_company),
        # The CRM read gives no currency with the amount, so neither is claimed.
        deal=Deal(str(deal.crm_id), None, None, closed),
        crm=person.get("crm") or {},
    )
    emit(conn, workspace_id, [Event("referral.converted", payload)])


def review(conn: Connection, workspace_id: int, referral_id: int, *, accept: bool) -> str:
    """A person's decision on a held referral: back to pending (it may convert) or rejected."""
    r = Referral
    row = conn.execute(select(r.status).where(r.id == referral_id, r.workspace_id == workspace_id)).first()
    if row is None:
        raise NotFound(
            f"no referral {referral_id}", hint="`flywheel referrals list --status held` shows them"
        )
    if row.status != "held":
        raise ValidationFailed(f"referral {referral_id} is {row.status}, not held for review")
    status = "pending" if accept else "rejected"
    try:
        with conn.begin_nested():
            conn.execute(update(r).where(r.id == referral_id).values(status=status))
    except IntegrityError:
        raise ValidationFailed(
            f"another referral of this prospect is open; referral {referral_id} stays held",
            hint="`flywheel referrals list` shows it; reject one of the two",
        ) from None
    if accept:
        name, email = conn.execute(select(r.prospect_name, r.prospect_email).where(r.id == referral_id)).one()
        prospect_member(conn, workspace_id, name, email, utcnow())
    return status


def listing(
    conn: Connection, workspace_id: int, status: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    r = Referral
    query = select(r).where(r.workspace_id == workspace_id).order_by(r.id.desc()).limit(limit)
    if status:
        query = query.where(r.status == status)
    return [
        {
            "id": x.id,
            "advocate": x.member_id,
            "prospect": x.prospect_name,
            "email": x.prospect_email,
            "company": x.prospect_company,
            "status": x.status,
            "held_reason": x.held_reason,
            "deal": x.deal_crm_id,
            "reward": x.reward_grant_id,
            "created_at": x.created_at.isoformat(),
        }
        for x in conn.execute(query)
    ]
