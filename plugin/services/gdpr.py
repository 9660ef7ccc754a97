"""GDPR actions: export everything Flywheel holds about a member, and erase a member.

An erasure removes the person's personal data and activities in one transaction and keeps an
anonymous audit line (:class:`~plugin.db.models.Erasure`): who asked, why, counts of what was removed
and the CRM records to handle, with no name, email or other personal value in it.

What stays, and why:

* the member row, as an empty shell (no name, email, locale, title, stage or organization), so the
  rows other records need keep their foreign keys: reward grants (the ledger's amounts), converted
  referrals the advocate was rewarded for, deals read from the CRM. The shell is marked erased by
  ``merged_into_id`` pointing at itself: every query for live members (``merged_into_id IS NULL``:
  scoring, the CRM sync, search, panels, suggestions) leaves it out with no new column, and the
  erasures row says when and why. Members merged into the erased one are erased with it.
* reward grants and their status lines (amounts, statuses), with their notes blanked;
* referrals the person made, pointing at the shell (the prospect's details are the prospect's);
  their invitation codes are replaced, so the old links no longer work;
* referrals naming the person as the prospect, with name, email and company blanked (open ones are
  rejected: there is no one left to attribute them to).

Removed: identities, activities (and the hand-raising matches scoring kept of them), consents, merge
log and suggestions, scores, score events, member
statistics, CRM links, panel places, the contact log, unused invitations, and outgoing webhook
messages that carry the person's data (not sent, and not kept); a message being delivered at that
very moment is left to its worker. Values the person's name or email reached in other members' CRM
fields (a prospect's "referred by") are cleared and sent again by the next sync.

The CRM copy is handled by the next ``flywheel crm sync`` as each connection's erasure policy says
(``settings["erasure"]``: delete, anonymize or keep; delete unless set): the audit line's
``crm_refs`` lists the records (connection, object, id, the fields Flywheel wrote, the action), and
the sync marks each one done, or leaves it pending after a CRM failure to try again next run.
"""

from __future__ import annotations

import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, func, or_, select, update

from connectors.errors import CrmError
from plugin.db.base import table_of, utcnow
from plugin.db.models import (
    Activity,
    Consent,
    CrmConnection,
    CrmLink,
    Erasure,
    HandRaise,
    Identity,
    Member,
    MemberStats,
    MergeLog,
    MergeSuggestion,
    Organization,
    Outreach,
    Panel,
    PanelMember,
    Referral,
    ReferralInvite,
    RewardGrant,
    RewardLine,
    Score,
    ScoreEvent,
    ScoreRun,
    WebhookAttempt,
    WebhookDelivery,
    WebhookMessage,
)
from plugin.db.models.score import reasons_of
from plugin.errors import NotFound, ValidationFailed
from plugin.services.score_read import words

POLICIES = ("delete", "anonymize", "keep")
DEFAULT_POLICY = "delete"
MIN_NAME = 3  # shorter names are not searched for in other records' text (too many false hits)
PAGE = 1_000  # webhook messages read at a time
PROSPECT_ERASED = "the prospect's personal data was erased"


# -- the CRM erasure policy ----------------------------------------------------------------------


def erasure_policy(settings: Mapping[str, Any] | None) -> str:
    """A connection's policy for erased members' CRM records (delete unless set)."""
    value = (settings or {}).get("erasure")
    return value if value in POLICIES else DEFAULT_POLICY


def set_erasure_policy(
    engine: Engine, workspace_id: int, policy: str | None, kind: str | None = None
) -> dict[str, str]:
    """Set (or, with ``policy`` None, read) the erasure policy of the workspace's CRM connections,
    or of the one of ``kind``; returns the policy by CRM kind."""
    if policy is not None and policy not in POLICIES:
        raise ValidationFailed(f"unknown erasure policy {policy!r}", fields={"policy": ", ".join(POLICIES)})
    c = CrmConnection
    with engine.begin() as conn:
        query = select(c.id, c.kind, c.settings).where(c.workspace_id == workspace_id)
        if kind:
            query = query.where(c.kind == kind)
        rows = conn.execute(query.order_by(c.id)).all()
        if not rows:
            raise NotFound(
                f"no {kind or 'CRM'} connection in this workspace",
                hint="connect one with `flywheel crm connect hubspot --token ...`",
            )
        out = {}
        for row in rows:
            if policy is not None:
                conn.execute(
                    update(c)
                    .where(c.id == row.id)
                    .values(settings={**(row.settings or {}), "erasure": policy})
                )
            out[row.kind] = policy or erasure_policy(row.settings)
    return out


# -- finding the person --------------------------------------------------------------------------


def resolve_member(conn: Connection, workspace_id: int, member_id: int) -> tuple[int, bool]:
    """(the live member a member id leads to through merges, whether it was erased)."""
    m = Member
    seen: set[int] = set()
    current = member_id
    while True:
        row = conn.execute(select(m.workspace_id, m.merged_into_id).where(m.id == current)).first()
        if row is None or row.workspace_id != workspace_id:
            raise NotFound(
                f"no member {member_id} in this workspace",
                hint="find ids with `flywheel members show EMAIL`",
            )
        if row.merged_into_id is None or row.merged_into_id == current or row.merged_into_id in seen:
            return current, row.merged_into_id == current
        seen.add(current)
        current = row.merged_into_id


def _family(conn: Connection, workspace_id: int, root: int) -> list[int]:
    """The member and every member merged into it, directly or through others."""
    m = Member
    ids, frontier = {root}, [root]
    while frontier:
        found = (
            conn.execute(
                select(m.id).where(
                    m.workspace_id == workspace_id, m.merged_into_id.in_(frontier), m.id.not_in(ids)
                )
            )
            .scalars()
            .all()
        )
        frontier = list(found)
        ids.update(frontier)
    return sorted(ids)


def _same_person(conn: Connection, workspace_id: int, root: int) -> list[int]:
    """The member, the members merged into it, and every live member sharing one of their emails
    (not merged because the email was unverified on one platform, but the same data subject: left
    behind, they would keep the person's data and bring the CRM contact back at the next sync)."""
    ids = set(_family(conn, workspace_id, root))
    while True:
        emails, _ = _personal(conn, sorted(ids))
        if not emails:
            return sorted(ids)
        m, i, known = Member, Identity, sorted(emails)
        by_identity = select(i.member_id).where(
            i.workspace_id == workspace_id, func.lower(i.email).in_(known)
        )
        twins = (
            set(
                conn.execute(
                    select(m.id).where(
                        m.workspace_id == workspace_id,
                        m.merged_into_id.is_(None),
                        or_(func.lower(m.primary_email).in_(known), m.id.in_(by_identity)),
                    )
                ).scalars()
            )
            - ids
        )
        if not twins:
            return sorted(ids)
        for twin in twins:
            ids.update(_family(conn, workspace_id, twin))


def _personal(conn: Connection, ids: Sequence[int]) -> tuple[set[str], set[str]]:
    """The person's emails (lowercased) and names, from their members and identities."""
    emails: set[str] = set()
    names: set[str] = set()
    for email, name in conn.execute(
        select(Member.primary_email, Member.display_name).where(Member.id.in_(ids))
    ):
        emails.add((email or "").strip().lower())
        names.add((name or "").strip())
    for email, name in conn.execute(select(Identity.email, Identity.name).where(Identity.member_id.in_(ids))):
        emails.add((email or "").strip().lower())
        names.add((name or "").strip())
    return {e for e in emails if e}, {n for n in names if len(n) >= MIN_NAME}


def _pattern(needles: Iterable[str]) -> re.Pattern[str] | None:
    """Any of ``needles`` as a whole word (or address), case-insensitively."""
    alternatives = sorted({n for n in needles if n}, key=len, reverse=True)
    if not alternatives:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, alternatives)) + r")(?!\w)", re.IGNORECASE)


def _mentions(value: Any, needles: Iterable[str]) -> bool:
    pattern = _pattern(needles)
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return pattern is not None and pattern.search(text) is not None


# -- export --------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _plain(value: Any) -> Any:
    """A value as JSON holds it: times in UTC ISO 8601, exact decimals as strings."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _rows(conn: Connection, query: Any) -> list[dict[str, Any]]:
    return [_plain(dict(r._mapping)) for r in conn.execute(query)]


def export_member(conn: Connection, workspace_id: int, member_id: int) -> dict[str, Any]:
    """Everything Flywheel holds about the person ``member_id`` is (the member it was merged into,
    with every member merged into that one): profile, identities, activities, consents, scores with
    their reasons, merges, programs (referrals, invitations, rewards, panels, contact log) and CRM
    records. JSON-ready; times are UTC ISO 8601."""
    root, erased = resolve_member(conn, workspace_id, member_id)
    ids = _family(conn, workspace_id, root)
    m = Member
    member = conn.execute(select(m).where(m.id == root)).one()
    org = None
    if member.organization_id is not None:
        o = Organization
        found = conn.execute(select(o.id, o.name, o.domain).where(o.id == member.organization_id)).first()
        org = dict(found._mapping) if found else None
    emails, _ = _personal(conn, ids)
    a, i, c = Activity, Identity, Consent
    scores = []
    s, run = Score, ScoreRun
    for r in conn.execute(
        select(s, run.model_version, run.as_of, run.started_at)
        .join(run, run.id == s.run_id)
        .where(s.workspace_id == workspace_id, s.subject == "member", s.subject_id.in_(ids))
        .order_by(s.kind)
    ):
        reasons = reasons_of(
            [getattr(r, f"{p}{k}") for k in (1, 2, 3) for p in ("reason", "value", "points", "detail")]
        )
        scores.append(
            {
                "kind": r.kind,
                "score": r.score,
                "label": r.label,
                "hot": r.hot,
                "reasons": words(reasons),
                "reason_values": reasons,
                "triggers": r.triggers or [],
                "model_version": r.model_version,
                "as_of": _iso(r.as_of),
                "computed_at": _iso(r.started_at),
            }
        )
    ev = ScoreEvent
    g, line = RewardGrant, RewardLine
    grants = _rows(
        conn,
        select(
            g.id, g.kind, g.amount, g.currency, g.reason, g.note, g.hold_until, g.created_at, g.corrects_id
        )
        .where(g.workspace_id == workspace_id, g.member_id.in_(ids))
        .order_by(g.id),
    )
    lines: dict[int, list[dict[str, Any]]] = {}
    for status in _rows(
        conn,
        select(line.grant_id, line.status, line.note, line.at)
        .where(line.grant_id.in_([x["id"] for x in grants]))
        .order_by(line.id),
    ):
        lines.setdefault(status.pop("grant_id"), []).append(status)
    for x in grants:
        x["statuses"] = lines.get(x["id"], [])
    ref, inv = Referral, ReferralInvite
    referral_columns = (
        ref.id, ref.prospect_name, ref.prospect_email, ref.prospect_company, ref.status, ref.held_reason,
        ref.created_at, ref.converted_at, ref.reward_grant_id, inv.code, inv.campaign,
    )  # fmt: skip
    pm, panel = PanelMember, Panel
    link, crm = CrmLink, CrmConnection
    erasures = _rows(
        conn,
        select(Erasure.id, Erasure.erased_at, Erasure.reason, Erasure.crm_action, Erasure.crm_done_at)
        .where(Erasure.workspace_id == workspace_id, Erasure.member_id.in_(ids))
        .order_by(Erasure.id),
    )
    return {
        "exported_at": utcnow().isoformat(),
        "member": {
            "id": member.id,
            "display_name": member.display_name,
            "primary_email": member.primary_email,
            "locale": member.locale,
            "lifecycle_stage": member.lifecycle_stage,
            "title": member.title,
            "organization": org,
            "created_at": _iso(member.created_at),
            "updated_at": _iso(member.updated_at),
            "merged_member_ids": [x for x in ids if x != root],
            "erased": erased,
        },
        "identities": _rows(
            conn,
            select(i.id, i.source, i.source_user_id, i.handle, i.email, i.verified, i.name, i.created_at)
            .where(i.member_id.in_(ids))
            .order_by(i.id),
        ),
        "activities": _rows(
            conn,
            select(
                a.id,
                a.source,
                a.source_activity_id,
                a.type,
                a.occurred_at,
                a.ingested_at,
                a.channel,
                a.title,
                a.url,
                a.text,
                a.properties,
                a.sentiment,
            )
            .where(a.member_id.in_(ids))
            .order_by(a.occurred_at, a.id),
        ),
        "consents": _rows(
            conn,
            select(c.purpose, c.granted, c.recorded_at, c.source)
            .where(c.member_id.in_(ids))
            .order_by(c.recorded_at, c.id),
        ),
        "scores": scores,
        "score_events": _rows(
            conn,
            select(ev.kind, ev.event, ev.before, ev.after, ev.score, ev.occurred_at, ev.as_of)
            .where(ev.workspace_id == workspace_id, ev.subject == "member", ev.subject_id.in_(ids))
            .order_by(ev.id),
        ),
        "merge_log": _rows(
            conn,
            select(
                MergeLog.id,
                MergeLog.kind,
                MergeLog.target_member_id,
                MergeLog.source_member_id,
                MergeLog.reason,
                MergeLog.created_at,
                MergeLog.undone_at,
            )
            .where(or_(MergeLog.target_member_id.in_(ids), MergeLog.source_member_id.in_(ids)))
            .order_by(MergeLog.id),
        ),
        "programs": {
            "referral_invitations": _rows(
                conn,
                select(inv.code, inv.campaign, inv.created_at).where(inv.member_id.in_(ids)).order_by(inv.id),
            ),
            "referrals_made": _rows(
                conn,
                select(*referral_columns)
                .join(inv, inv.id == ref.invite_id)
                .where(ref.workspace_id == workspace_id, ref.member_id.in_(ids))
                .order_by(ref.id),
            ),
            "referred_as_prospect": _rows(
                conn,
                select(
                    ref.id,
                    ref.prospect_name,
                    ref.prospect_email,
                    ref.prospect_company,
                    ref.status,
                    ref.created_at,
                )
                .where(ref.workspace_id == workspace_id, func.lower(ref.prospect_email).in_(sorted(emails)))
                .order_by(ref.id),
            ),
            "rewards": grants,
            "panels": _rows(
                conn,
                select(
                    panel.id.label("panel_id"),
                    panel.name,
                    pm.stratum,
                    pm.role,
                    pm.status,
                    pm.invited_at,
                    pm.updated_at,
                )
                .join(panel, panel.id == pm.panel_id)
                .where(pm.member_id.in_(ids))
                .order_by(panel.id),
            ),
            "contact_log": _rows(
                conn,
                select(Outreach.kind, Outreach.at).where(Outreach.member_id.in_(ids)).order_by(Outreach.id),
            ),
        },
        "crm": _rows(
            conn,
            select(
                crm.kind.label("crm"),
                link.crm_object,
                link.crm_id,
                link.fields,
                link.synced_at,
                link.crm_stage,
                link.owner_id,
            )
            .join(crm, crm.id == link.connection_id)
            .where(link.member_id.in_(ids))
            .order_by(crm.kind),
        ),
        "erasures": erasures,
    }


# -- erase ---------------------------------------------------------------------------------------


def _crm_refs(conn: Connection, workspace_id: int, ids: Sequence[int]) -> tuple[list[dict[str, Any]], str]:
    """The CRM records to handle (taken from the links before they go) and the audit line's action."""
    link, c = CrmLink, CrmConnection
    refs = []
    for r in conn.execute(
        select(c.id, c.kind, c.settings, link.crm_object, link.crm_id, link.fields)
        .join(link, link.connection_id == c.id)
        .where(c.workspace_id == workspace_id, link.member_id.in_(ids), link.crm_id.is_not(None))
        .order_by(c.id, link.member_id)
    ):
        refs.append(
            {
                "connection_id": r.id,
                "crm": r.kind,
                "crm_object": r.crm_object,
                "crm_id": r.crm_id,
                "fields": sorted(r.fields or {}),  # names only: what Flywheel wrote there
                "action": erasure_policy(r.settings),
                "done_at": None,
                "result": None,
            }
        )
    if refs:
        actions = {r["action"] for r in refs}
    else:
        settings = conn.execute(select(c.settings).where(c.workspace_id == workspace_id)).scalars().all()
        actions = {erasure_policy(s) for s in settings} or {DEFAULT_POLICY}
    return refs, actions.pop() if len(actions) == 1 else "mixed"


def _webhook_messages(
    conn: Connection,
    workspace_id: int,
    ids: Sequence[int],
    emails: set[str],
    prospects: set[tuple[str, str]],
) -> list[int]:
    """Outgoing messages carrying the person's data: about them (``data.member.id``), naming them
    as a referral's prospect, or holding one of their emails anywhere."""
    w = WebhookMessage
    wanted = set(ids)
    needles = [e.encode() for e in emails]
    found: list[int] = []
    after = 0
    while True:
        page = conn.execute(
            select(w.id, w.body)
            .where(w.workspace_id == workspace_id, w.id > after)
            .order_by(w.id)
            .limit(PAGE)
        ).all()
        if not page:
            return found
        for message_id, body in page:
            after = message_id
            raw = bytes(body)
            try:
                data = orjson.loads(raw).get("data") or {}
            except (orjson.JSONDecodeError, AttributeError):
                data = {}
            member = data.get("member") if isinstance(data, dict) else None
            prospect = (data.get("prospect") or {}) if isinstance(data, dict) else {}
            code = ((data.get("referral") or {}) if isinstance(data, dict) else {}).get("code")
            if (
                (isinstance(member, dict) and member.get("id") in wanted)
                or (code, prospect.get("name")) in prospects
                or any(n in raw.lower() for n in needles)
            ):
                found.append(message_id)


def _drop_messages(conn: Connection, message_ids: Sequence[int], now: datetime) -> tuple[int, int]:
    """Delete messages (with their deliveries and attempt logs) unless a worker is sending one of
    them right now; (deleted, left in flight)."""
    if not message_ids:
        return 0, 0
    d = WebhookDelivery
    in_flight = set(
        conn.execute(
            select(d.message_id).where(
                d.message_id.in_(message_ids),
                d.status == "pending",
                d.lease_holder.is_not(None),
                d.next_attempt_at > now,
            )
        ).scalars()
    )
    gone = [i for i in message_ids if i not in in_flight]
    for start in range(0, len(gone), PAGE):
        part = gone[start : start + PAGE]
        deliveries = select(d.id).where(d.message_id.in_(part))
        conn.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)))
        conn.execute(delete(d).where(d.message_id.in_(part)))
        conn.execute(delete(WebhookMessage).where(WebhookMessage.id.in_(part)))
    return len(gone), len(in_flight)


def _count(conn: Connection, statement: Any) -> int:
    return int(conn.execute(statement).rowcount or 0)


def _scrub_other_links(conn: Connection, workspace_id: int, ids: Sequence[int], needles: set[str]) -> int:
    """CRM fields of other members that carry the person's name or email (a prospect's "referred
    by"): the values go, and the link's hash is cleared so the next sync sends the member again."""
    if not needles:
        return 0
    link, c = CrmLink, CrmConnection
    scrubbed = 0
    for connection_id, member_id, fields in conn.execute(
        select(link.connection_id, link.member_id, link.fields)
        .join(c, c.id == link.connection_id)
        .where(c.workspace_id == workspace_id, link.member_id.not_in(ids), link.fields.is_not(None))
    ):
        if not isinstance(fields, dict) or not fields:
            continue
        kept = {k: v for k, v in fields.items() if k == "email" or not _mentions(v, needles)}
        if kept != fields:
            conn.execute(
                update(link)
                .where(link.connection_id == connection_id, link.member_id == member_id)
                .values(fields=kept, fields_hash=None)
            )
            scrubbed += 1
    return scrubbed


def _redact(text: str | None, needles: set[str]) -> str | None:
    """The erasure's reason, with the person's name or email replaced if the requester wrote it."""
    pattern = _pattern(needles)
    if text is None or pattern is None:
        return text
    return pattern.sub("[erased]", text)


def erase_member(
    conn: Connection, workspace_id: int, member_id: int, *, actor: str, reason: str | None, now: datetime
) -> int:
    """Erase the person ``member_id`` is (with every member merged into them) in the caller's
    transaction; returns the id of the anonymous audit line (:class:`Erasure`)."""
    root, erased = resolve_member(conn, workspace_id, member_id)
    if erased:
        raise ValidationFailed(
            f"member {root} was already erased", hint="`flywheel members erasures` lists the audit lines"
        )
    ids = _same_person(conn, workspace_id, root)
    emails, names = _personal(conn, ids)
    removed: dict[str, Any] = {}
    refs, action = _crm_refs(conn, workspace_id, ids)

    # Referrals naming the person as the prospect: what the messages about them carry, then blanked.
    ref, inv = Referral, ReferralInvite
    as_prospect = conn.execute(
        select(ref.id, ref.status, ref.prospect_name, inv.code)
        .join(inv, inv.id == ref.invite_id)
        .where(ref.workspace_id == workspace_id, func.lower(ref.prospect_email).in_(sorted(emails)))
    ).all()
    prospects = {(r.code, r.prospect_name) for r in as_prospect}
    messages = _webhook_messages(conn, workspace_id, ids, emails, prospects)
    removed["webhook_messages"], removed["webhook_messages_in_flight"] = _drop_messages(conn, messages, now)
    for r in as_prospect:
        values: dict[str, Any] = {
            "prospect_name": "",
            "prospect_email": f"erased:{r.id}",
            "prospect_company": None,
        }
        if r.status in ("pending", "held"):
            values |= {"status": "rejected", "held_reason": PROSPECT_ERASED}
        conn.execute(update(ref).where(ref.id == r.id).values(**values))
    removed["referrals_as_prospect_blanked"] = len(as_prospect)

    # The person's invitations: unused ones go, used ones get a new code (the old link stops working).
    used = select(ref.invite_id).where(ref.invite_id.is_not(None))
    removed["referral_invites"] = _count(conn, delete(inv).where(inv.member_id.in_(ids), inv.id.not_in(used)))
    for invite_id in conn.execute(select(inv.id).where(inv.member_id.in_(ids))).scalars().all():
        conn.execute(update(inv).where(inv.id == invite_id).values(code="erased-" + secrets.token_hex(12)))

    # The rewards ledger keeps its amounts and statuses; notes (free text) go.
    g, line = RewardGrant, RewardLine
    grant_ids = (
        conn.execute(select(g.id).where(g.workspace_id == workspace_id, g.member_id.in_(ids))).scalars().all()
    )
    if grant_ids:
        conn.execute(update(g).where(g.id.in_(grant_ids)).values(note=None))
        conn.execute(update(line).where(line.grant_id.in_(grant_ids)).values(note=None))
        for grant_id, key in conn.execute(select(g.id, g.idempotency_key).where(g.id.in_(grant_ids))).all():
            if _mentions(key, emails):
                conn.execute(update(g).where(g.id == grant_id).values(idempotency_key=f"erased-{grant_id}"))
    removed["reward_grants_kept"] = len(grant_ids)

    identity_ids = conn.execute(select(Identity.id).where(Identity.member_id.in_(ids))).scalars().all()
    a = Activity
    hr = HandRaise  # what scoring kept of their posts goes before the posts
    removed["hand_raises"] = _count(
        conn,
        delete(hr).where(
            or_(
                hr.member_id.in_(ids), hr.activity_id.in_(select(a.id).where(a.identity_id.in_(identity_ids)))
            )
        ),
    )
    removed["activities"] = _count(
        conn, delete(a).where(or_(a.member_id.in_(ids), a.identity_id.in_(identity_ids)))
    )
    removed["identities"] = _count(conn, delete(Identity).where(Identity.member_id.in_(ids)))
    removed["consents"] = _count(conn, delete(Consent).where(Consent.member_id.in_(ids)))
    removed["contact_log"] = _count(conn, delete(Outreach).where(Outreach.member_id.in_(ids)))
    removed["panel_places"] = _count(conn, delete(PanelMember).where(PanelMember.member_id.in_(ids)))
    removed["crm_links"] = _count(conn, delete(CrmLink).where(CrmLink.member_id.in_(ids)))
    removed["member_stats"] = _count(conn, delete(MemberStats).where(MemberStats.member_id.in_(ids)))
    s, ev = Score, ScoreEvent
    removed["scores"] = _count(
        conn, delete(s).where(s.workspace_id == workspace_id, s.subject == "member", s.subject_id.in_(ids))
    )
    removed["score_events"] = _count(
        conn,
        delete(ev).where(ev.workspace_id == workspace_id, ev.subject == "member", ev.subject_id.in_(ids)),
    )
    sg = MergeSuggestion
    removed["merge_suggestions"] = _count(
        conn, delete(sg).where(or_(sg.member_a_id.in_(ids), sg.member_b_id.in_(ids)))
    )
    log = MergeLog
    entries = select(log.id).where(or_(log.target_member_id.in_(ids), log.source_member_id.in_(ids)))
    conn.execute(update(log).where(log.undone_by_id.in_(entries)).values(undone_by_id=None))
    removed["merge_log"] = _count(
        conn, delete(log).where(or_(log.target_member_id.in_(ids), log.source_member_id.in_(ids)))
    )
    removed["other_members_crm_fields_cleared"] = _scrub_other_links(conn, workspace_id, ids, emails | names)

    m = Member
    conn.execute(
        update(m)
        .where(m.id.in_(ids))
        .values(
            display_name=None, primary_email=None, locale=None, title=None, lifecycle_stage=None,
            organization_id=None, merged_into_id=root, updated_at=now,
        )
    )  # fmt: skip
    removed["members"] = len(ids)
    done = not refs
    return int(
        conn.execute(
            table_of(Erasure)
            .insert()
            .values(
                workspace_id=workspace_id,
                member_id=root,
                requested_by=actor[:120],
                reason=(_redact(reason, emails | names) or "")[:255] or None,
                erased_at=now,
                removed=removed,
                crm_action=action,
                crm_refs=refs,
                crm_done_at=now if done else None,
                crm_result="no CRM record to handle" if done else None,
            )
            .returning(table_of(Erasure).c.id)
        ).scalar_one()
    )


# -- the CRM side, run by the CRM sync ----------------------------------------------------------


RESULTS = {"delete": "deleted", "anonymize": "anonymized", "keep": "kept as it is"}


def pending_erasures(conn: Connection, workspace_id: int, connection_id: int) -> int:
    """How many CRM records of this connection wait for an erasure's handling."""
    rows = conn.execute(
        select(Erasure.crm_refs).where(Erasure.workspace_id == workspace_id, Erasure.crm_done_at.is_(None))
    ).scalars()
    return sum(
        1
        for refs in rows
        for r in refs or []
        if r.get("connection_id") == connection_id and not r.get("done_at")
    )


def handle_erasures(
    engine: Engine,
    workspace_id: int,
    connection_id: int,
    crm: Any,
    counts: Counter[str],
    renew: Callable[[Connection], None],
) -> None:
    """Delete, anonymize or keep (as each audit line says) the CRM records of erased members held
    by this connection, and mark each one done. A CRM failure leaves the record pending, with the
    reason, for the next sync; it never stops the sync. Records of a connection since removed are
    marked done: there is nothing left to reach them through.

    The adapter offers ``delete_contact(crm_id)`` and ``anonymize_contact(crm_id, fields)``, each
    False when the CRM has no such record (gone already: done) and raising CrmError when the CRM
    fails; an adapter without them leaves the records pending."""
    with engine.connect() as conn:
        live = set(
            conn.execute(select(CrmConnection.id).where(CrmConnection.workspace_id == workspace_id)).scalars()
        )
        pending = conn.execute(
            select(Erasure.id, Erasure.crm_refs)
            .where(Erasure.workspace_id == workspace_id, Erasure.crm_done_at.is_(None))
            .order_by(Erasure.id)
        ).all()
    for erasure_id, refs in pending:
        outcomes: dict[int, tuple[bool, str]] = {}
        for index, ref in enumerate(refs or []):
            if ref.get("done_at"):
                continue
            if ref.get("connection_id") not in live:
                outcomes[index] = (True, "not handled: the CRM connection was removed")
            elif ref.get("connection_id") == connection_id:
                outcome = _handle(crm, ref)
                if outcome is not None:
                    outcomes[index] = outcome
                    counts["erasures_done" if outcome[0] else "erasures_failed"] += 1
        if outcomes:
            with engine.begin() as conn:
                renew(conn)
                _record(conn, erasure_id, outcomes)


def _handle(crm: Any, ref: Mapping[str, Any]) -> tuple[bool, str] | None:
    action, crm_id = ref.get("action") or DEFAULT_POLICY, str(ref.get("crm_id"))
    if action == "keep":
        return True, RESULTS["keep"]
    method = getattr(crm, "anonymize_contact" if action == "anonymize" else "delete_contact", None)
    if method is None:  # an adapter that cannot do it: left pending
        return None
    try:
        found = method(crm_id, list(ref.get("fields") or [])) if action == "anonymize" else method(crm_id)
    except CrmError as exc:
        return False, str(exc)[:300]
    return True, RESULTS.get(action, action) if found else "not found in the CRM (already gone)"


def _record(conn: Connection, erasure_id: int, outcomes: Mapping[int, tuple[bool, str]]) -> None:
    """Write the outcomes into the audit line (read again under a row lock: two connections' syncs
    may handle one erasure's records at once); when every record is done, the line is done."""
    e = Erasure
    row = conn.execute(select(e.crm_refs, e.crm_done_at).where(e.id == erasure_id).with_for_update()).one()
    if row.crm_done_at is not None:
        return
    now = utcnow()
    refs = [dict(r) for r in row.crm_refs or []]
    failure = None
    for index, (ok, text) in outcomes.items():
        if index >= len(refs) or refs[index].get("done_at"):
            continue
        if ok:
            refs[index].update(done_at=now.isoformat(), result=text, error=None)
        else:
            refs[index].update(error=text, attempts=int(refs[index].get("attempts") or 0) + 1)
            failure = f"pending: {refs[index].get('crm')} {refs[index].get('crm_id')}: {text}"
    done = all(r.get("done_at") for r in refs)
    summary = "; ".join(
        f"{r.get('crm')} {r.get('crm_object')} {r.get('crm_id')}: {r.get('result')}" for r in refs
    )
    conn.execute(
        update(e)
        .where(e.id == erasure_id)
        .values(
            crm_refs=refs,
            crm_done_at=now if done else None,
            crm_result=(summary if done else failure or "pending")[:500],
        )
    )


def account_changed(conn: Connection, workspace_id: int, connection_id: int) -> int:
    """A connection now points at another CRM account (new credentials or address): its pending
    erasure records name ids of the old account, which in the new one could be another person.
    They are closed, not sent, with what to do by hand; returns how many."""
    why = "not handled: the CRM account changed first; remove the record from the old account by hand"
    closed = 0
    pending = conn.execute(
        select(Erasure.id, Erasure.crm_refs).where(
            Erasure.workspace_id == workspace_id, Erasure.crm_done_at.is_(None)
        )
    ).all()
    for erasure_id, refs in pending:
        outcomes = {
            i: (True, why)
            for i, ref in enumerate(refs or [])
            if ref.get("connection_id") == connection_id and not ref.get("done_at")
        }
        if outcomes:
            _record(conn, erasure_id, outcomes)
            closed += len(outcomes)
    return closed


# -- the audit lines -----------------------------------------------------------------------------


def audit_line(row: Any) -> dict[str, Any]:
    """An erasures row as shown by the CLI and the API (no personal data is in it)."""
    return {
        "id": row.id,
        "member_id": row.member_id,
        "requested_by": row.requested_by,
        "reason": row.reason,
        "erased_at": _iso(row.erased_at),
        "removed": dict(row.removed or {}),
        "crm_action": row.crm_action,
        "crm_refs": list(row.crm_refs or []),
        "crm_done_at": _iso(row.crm_done_at),
        "crm_result": row.crm_result,
    }


def erasure(conn: Connection, workspace_id: int, erasure_id: int) -> dict[str, Any]:
    row = conn.execute(
        select(Erasure).where(Erasure.id == erasure_id, Erasure.workspace_id == workspace_id)
    ).first()
    if row is None:
        raise NotFound(f"no erasure {erasure_id} in this workspace")
    return audit_line(row)


def erasures(
    conn: Connection, workspace_id: int, *, limit: int = 50, before: int | None = None
) -> list[dict[str, Any]]:
    """The workspace's audit lines, newest first (``before``: ids below it, for paging)."""
    query = select(Erasure).where(Erasure.workspace_id == workspace_id)
    if before is not None:
        query = query.where(Erasure.id < before)
    return [audit_line(r) for r in conn.execute(query.order_by(Erasure.id.desc()).limit(limit))]


def crm_plan(line: Mapping[str, Any]) -> list[str]:
    """What the CRM sync will do (or did) with the erased member's CRM records, in words."""
    out = []
    for ref in line.get("crm_refs") or []:
        what = {"delete": "deleted", "anonymize": "anonymized (name, email and Flywheel fields blanked)",
                "keep": "kept as it is"}.get(ref.get("action"), str(ref.get("action")))  # fmt: skip
        record = f"{ref.get('crm')} {ref.get('crm_object')} {ref.get('crm_id')}"
        if ref.get("done_at"):
            out.append(f"{record}: {ref.get('result')}")
        else:
            out.append(f"{record} will be {what} by the next `flywheel crm sync`")
    if not out:
        out.append("no CRM record was linked to this member: nothing to do in the CRM")
    return out


__all__ = [
    "DEFAULT_POLICY",
    "POLICIES",
    "audit_line",
    "crm_plan",
    "erase_member",
    "erasure",
    "erasure_policy",
    "erasures",
    "export_member",
    "handle_erasures",
    "pending_erasures",
    "resolve_member",
    "set_erasure_policy",
]
