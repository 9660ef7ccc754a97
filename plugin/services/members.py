"""Reading one member's profile: identities, organization, consents, activity, merge history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from connectors.records import normalize_email
from plugin.db.ids import parse_id
from plugin.db.models import Activity, Consent, Identity, Member, MergeLog, Organization, Score
from plugin.errors import NotFound
from plugin.services.score_read import words

RECENT = 10


def find_member(session: Session, workspace_id: int, ref: str) -> Member:
    """A member by id or email; a merged member leads to the member it was merged into."""
    member: Member | None = None
    if ref.isascii() and ref.isdigit():
        member_id = parse_id(ref)
        member = session.get(Member, member_id) if member_id is not None else None
        if member is not None and member.workspace_id != workspace_id:
            member = None
    else:
        try:
            email = normalize_email(ref)
        except ValueError:
            raise NotFound(f"{ref!r} is neither a member id nor an email address") from None
        member_id = session.scalar(
            select(Identity.member_id).where(Identity.workspace_id == workspace_id, Identity.email == email)
        ) or session.scalar(
            select(Member.id).where(Member.workspace_id == workspace_id, Member.primary_email == email)
        )
        member = session.get(Member, member_id) if member_id else None
    if member is None:
        raise NotFound(f"no member {ref!r} in this workspace", hint="`flywheel status` shows what is stored")
    seen = {member.id}
    while member.merged_into_id is not None and member.merged_into_id not in seen:
        nxt = session.get(Member, member.merged_into_id)
        assert nxt is not None
        member = nxt
        seen.add(member.id)
    if member.merged_into_id == member.id:  # an erased member's empty shell (see services/gdpr.py)
        raise NotFound(f"member {ref!r} was erased", hint="`flywheel members erasures` lists erasures")
    return member


def member_profile(session: Session, member: Member) -> dict[str, Any]:
    org = session.get(Organization, member.organization_id) if member.organization_id else None
    identities = session.scalars(
        select(Identity).where(Identity.member_id == member.id).order_by(Identity.id)
    ).all()
    by_type: dict[str, int] = {
        kind: n
        for kind, n in session.execute(
            select(Activity.type, func.count())
            .where(Activity.member_id == member.id)
            .group_by(Activity.type)
            .order_by(func.count().desc())
        )
    }
    recent = session.scalars(
        select(Activity)
        .where(Activity.member_id == member.id)
        .order_by(Activity.occurred_at.desc())
        .limit(RECENT)
    ).all()
    consents: dict[str, dict[str, Any]] = {}
    for row in session.scalars(
        select(Consent).where(Consent.member_id == member.id).order_by(Consent.recorded_at)
    ):
        consents[row.purpose] = {
            "granted": row.granted,
            "recorded_at": row.recorded_at.isoformat(),
            "source": row.source,
        }
    log = session.scalars(
        select(MergeLog)
        .where(or_(MergeLog.target_member_id == member.id, MergeLog.source_member_id == member.id))
        .order_by(MergeLog.id)
    ).all()
    return {
        "id": member.id,
        "display_name": member.display_name,
        "primary_email": member.primary_email,
        "locale": member.locale,
        "lifecycle_stage": member.lifecycle_stage,
        "title": member.title,
        "organization": {"id": org.id, "name": org.name, "domain": org.domain} if org else None,
        "identities": [
            {
                "id": i.id,
                "source": i.source,
                "source_user_id": i.source_user_id,
                "handle": i.handle,
                "email": i.email,
                "verified": i.verified,
                "name": i.name,
            }
            for i in identities
        ],
        "activities": {"total": sum(by_type.values()), "by_type": by_type},
        "recent_activities": [
            {
                "source": a.source,
                "type": a.type,
                "occurred_at": a.occurred_at.isoformat(),
                "title": a.title,
                "url": a.url,
            }
            for a in recent
        ],
        "consents": consents,
        "scores": member_scores(session, member.id),
        "merge_log": [
            {
                "id": e.id,
                "kind": e.kind,
                "target_member_id": e.target_member_id,
                "source_member_id": e.source_member_id,
                "identity_ids": e.identity_ids,
                "reason": e.reason,
                "created_at": e.created_at.isoformat(),
                "undone": e.undone_at is not None,
            }
            for e in log
        ],
    }


def member_scores(session: Session, member_id: int) -> dict[str, Any]:
    """The member's stored scores by kind, with their reasons in words and the run behind them."""
    out: dict[str, Any] = {}
    for row in session.scalars(
        select(Score).where(Score.subject == "member", Score.subject_id == member_id).order_by(Score.kind)
    ):
        out[row.kind] = {
            "score": row.score,
            "label": row.label,
            "hot": row.hot,
            "reasons": words(row.reasons),
            "triggers": row.triggers or [],
            "as_of": row.as_of.isoformat(),
            "model_version": row.model_version,
        }
    return out
