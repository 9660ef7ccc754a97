"""Merging and unmerging members. Nothing is ever deleted, and every decision can be undone.

* ``merge(target, source)`` moves the source's identities, activities and consents to the target,
  fills the target's empty profile fields from the source, and marks the source merged.
* ``undo(entry)`` reverses one merge-log entry: identities go back (and, through ``identity_id``,
  exactly their activities), filled fields are cleared, consents return.
* ``split(identity)`` gives one identity (and its activities) a member of its own; it also undoes an
  automatic merge by verified email.
"""

from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from plugin.db.base import utcnow
from plugin.db.models import Activity, Consent, HandRaise, Identity, Member, MergeLog, MergeSuggestion
from plugin.db.models.identity_log import AUTO_EMAIL, MERGE, SPLIT
from plugin.errors import NotFound, ValidationFailed
from plugin.services.identity import PROFILE_FIELDS

FILLABLE = PROFILE_FIELDS  # the member fields a merge may fill from the merged member


def live_member(session: Session, workspace_id: int, member_id: int) -> Member:
    member = session.get(Member, member_id)
    if member is None or member.workspace_id != workspace_id:
        raise NotFound(
            f"no member {member_id} in this workspace", hint="find ids with `flywheel members show EMAIL`"
        )
    if member.merged_into_id is not None:
        raise ValidationFailed(
            f"member {member_id} was merged into {member.merged_into_id}",
            hint=f"use member {member.merged_into_id}, or undo that merge first",
        )
    return member


def _move_identities(session: Session, identity_ids: list[int], to_member: int) -> None:
    """Point identities, and exactly the activities they did, at ``to_member``."""
    if not identity_ids:
        return
    holders = sorted(set(session.scalars(select(Identity.member_id).where(Identity.id.in_(identity_ids)))))
    session.execute(update(Identity).where(Identity.id.in_(identity_ids)).values(member_id=to_member))
    moved = select(Activity.id).where(Activity.member_id.in_(holders), Activity.identity_id.in_(identity_ids))
    # What scoring kept of their hand-raising posts moves with them (full runs reuse it).
    session.execute(update(HandRaise).where(HandRaise.activity_id.in_(moved)).values(member_id=to_member))
    session.execute(
        update(Activity)
        .where(Activity.member_id.in_(holders), Activity.identity_id.in_(identity_ids))
        .values(member_id=to_member)
    )


def _decide_suggestion(session: Session, workspace_id: int, a: int, b: int, status: str) -> None:
    low, high = min(a, b), max(a, b)
    row = session.scalar(
        select(MergeSuggestion).where(
            MergeSuggestion.workspace_id == workspace_id,
            MergeSuggestion.member_a_id == low,
            MergeSuggestion.member_b_id == high,
        )
    )
    if row is None:
        session.add(
            MergeSuggestion(
                workspace_id=workspace_id,
                member_a_id=low,
                member_b_id=high,
                confidence=1.0 if status == "accepted" else 0.0,
                evidence=[],
                status=status,
            )
        )
    else:
        row.status = status


def merge(
    session: Session, workspace_id: int, target_id: int, source_id: int, *, actor: str, reason: str
) -> MergeLog:
    if target_id == source_id:
        raise ValidationFailed("a member cannot be merged into itself")
    target = live_member(session, workspace_id, target_id)
    source = live_member(session, workspace_id, source_id)
    identity_ids = sorted(session.scalars(select(Identity.id).where(Identity.member_id == source.id)))
    consent_ids = sorted(session.scalars(select(Consent.id).where(Consent.member_id == source.id)))
    filled = [
        name for name in FILLABLE if getattr(target, name) is None and getattr(source, name) is not None
    ]
    for name in filled:
        setattr(target, name, getattr(source, name))
    _move_identities(session, identity_ids, target.id)
    if consent_ids:
        session.execute(update(Consent).where(Consent.id.in_(consent_ids)).values(member_id=target.id))
    source.merged_into_id = target.id
    entry = MergeLog(
        workspace_id=workspace_id,
        kind=MERGE,
        target_member_id=target.id,
        source_member_id=source.id,
        identity_ids=identity_ids,
        filled_fields={"fields": filled, "consents": consent_ids},
        reason=reason,
        actor=actor,
    )
    session.add(entry)
    _decide_suggestion(session, workspace_id, target.id, source.id, "accepted")
    session.flush()
    return entry


def split(session: Session, workspace_id: int, identity_id: int, *, actor: str, reason: str) -> MergeLog:
    identity = session.get(Identity, identity_id)
    if identity is None or identity.workspace_id != workspace_id:
        raise NotFound(
            f"no identity {identity_id} in this workspace", hint="`flywheel members show` lists them"
        )
    owner = live_member(session, workspace_id, identity.member_id)
    others = session.scalar(
        select(Identity.id).where(Identity.member_id == owner.id, Identity.id != identity.id)
    )
    if others is None:
        raise ValidationFailed(
            f"identity {identity_id} is member {owner.id}'s only identity; nothing to split"
        )
    newcomer = Member(
        workspace_id=workspace_id,
        display_name=identity.name or identity.handle,
        primary_email=identity.email,
        locale=owner.locale,
        organization_id=owner.organization_id,
    )
    session.add(newcomer)
    session.flush()
    _move_identities(session, [identity.id], newcomer.id)
    if owner.primary_email is not None and owner.primary_email == identity.email:
        remaining = session.scalar(
            select(Identity.email).where(Identity.member_id == owner.id, Identity.email.is_not(None))
        )
        owner.primary_email = remaining
    entry = MergeLog(
        workspace_id=workspace_id,
        kind=SPLIT,
        target_member_id=owner.id,
        source_member_id=newcomer.id,
        identity_ids=[identity.id],
        filled_fields={},
        reason=reason,
        actor=actor,
    )
    session.add(entry)
    _decide_suggestion(session, workspace_id, owner.id, newcomer.id, "dismissed")
    session.flush()
    return entry


def undo(session: Session, workspace_id: int, entry_id: int, *, actor: str) -> MergeLog:
    entry = session.get(MergeLog, entry_id)
    if entry is None or entry.workspace_id != workspace_id:
        raise NotFound(
            f"no merge-log entry {entry_id}", hint="`flywheel members show MEMBER` lists its entries"
        )
    if entry.undone_at is not None:
        raise ValidationFailed(f"merge-log entry {entry_id} was already undone")
    if entry.kind == AUTO_EMAIL:
        result = split(
            session,
            workspace_id,
            entry.identity_ids[0],
            actor=actor,
            reason=f"undo of automatic merge {entry.id}",
        )
    elif entry.kind == SPLIT:
        assert entry.source_member_id is not None
        result = merge(
            session,
            workspace_id,
            entry.target_member_id,
            entry.source_member_id,
            actor=actor,
            reason=f"undo of split {entry.id}",
        )
    else:
        result = _undo_merge(session, workspace_id, entry, actor)
    entry.undone_at = utcnow()
    entry.undone_by_id = result.id
    session.flush()
    return result


def _undo_merge(session: Session, workspace_id: int, entry: MergeLog, actor: str) -> MergeLog:
    assert entry.source_member_id is not None
    source = session.get(Member, entry.source_member_id)
    target = session.get(Member, entry.target_member_id)
    assert source is not None and target is not None
    owners = dict(
        session.execute(
            select(Identity.id, Identity.member_id).where(Identity.id.in_(entry.identity_ids))
        ).all()
    )
    moved = sorted(i for i in entry.identity_ids if owners.get(i) != target.id)
    if moved or target.merged_into_id is not None:
        later = session.scalars(
            select(MergeLog.id).where(
                MergeLog.workspace_id == workspace_id,
                MergeLog.id > entry.id,
                MergeLog.undone_at.is_(None),
                or_(MergeLog.target_member_id == target.id, MergeLog.source_member_id == target.id),
            )
        ).all()
        raise ValidationFailed(
            f"merge {entry.id} cannot be undone alone: later decisions moved its identities",
            hint="undo these merge-log entries first, newest first: "
            + ", ".join(map(str, sorted(later, reverse=True))),
        )
    _move_identities(session, list(entry.identity_ids), source.id)
    consents = list(entry.filled_fields.get("consents", []))
    if consents:
        session.execute(update(Consent).where(Consent.id.in_(consents)).values(member_id=source.id))
    for name in entry.filled_fields.get("fields", []):
        if getattr(target, name) == getattr(source, name):
            setattr(target, name, None)
    source.merged_into_id = None
    result = MergeLog(
        workspace_id=workspace_id,
        kind=SPLIT,
        target_member_id=target.id,
        source_member_id=source.id,
        identity_ids=list(entry.identity_ids),
        filled_fields={},
        reason=f"undo of merge {entry.id}",
        actor=actor,
    )
    session.add(result)
    _decide_suggestion(session, workspace_id, target.id, source.id, "dismissed")
    session.flush()
    return result
