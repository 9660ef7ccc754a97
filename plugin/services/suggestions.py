"""Merge suggestions: members who may be one person, for a person to confirm or dismiss.

Evidence, weakest to strongest, combined as independent signals (1 - Π(1 - p)):

* the same name at the same organization (0.5): common names collide inside large companies;
* the same handle on two platforms (0.6): people reuse handles, but so do strangers with short ones;
* the same email where a source does not verify emails (0.8);
* the same verified email on two members (0.95): ingest merges these at once when it meets a new
  identity, but two existing members can come to share one (an identity learning its email later);
  a pair split by a person was recorded as dismissed and is never proposed again.

Pairs already decided (accepted or dismissed) are never proposed again. The pass reads identities
and members once and groups them in memory, so it is linear in their number.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import Engine, insert, select, update

from plugin.db.models import Identity, Member, MergeSuggestion

WEIGHTS = {"name_org": 0.5, "handle": 0.6, "email": 0.8, "verified_email": 0.95}
MAX_GROUP = 20  # a handle or name shared by more members than this is too common to mean anything


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().strip()


def _pairs(groups: Iterable[set[int]]) -> Iterable[tuple[int, int]]:
    for members in groups:
        if 1 < len(members) <= MAX_GROUP:
            ordered = sorted(members)
            for i, a in enumerate(ordered):
                for b in ordered[i + 1 :]:
                    yield a, b


def find_candidates(engine: Engine, workspace_id: int) -> dict[tuple[int, int], list[str]]:
    evidence: dict[tuple[int, int], list[str]] = defaultdict(list)
    by_handle: dict[str, set[int]] = defaultdict(set)
    by_handle_sources: dict[str, set[str]] = defaultdict(set)
    by_email: dict[str, set[int]] = defaultdict(set)
    verified_by: dict[str, set[int]] = defaultdict(set)  # members holding the email verified
    by_name_org: dict[tuple[str, int], set[int]] = defaultdict(set)
    with engine.connect() as conn:
        live = select(Member.id).where(Member.workspace_id == workspace_id, Member.merged_into_id.is_(None))
        rows = conn.execute(
            select(
                Identity.member_id, Identity.source, Identity.handle, Identity.email, Identity.verified
            ).where(Identity.workspace_id == workspace_id, Identity.member_id.in_(live))
        )
        for member_id, source, handle, email, verified in rows:
            if handle:
                by_handle[_fold(handle)].add(member_id)
                by_handle_sources[_fold(handle)].add(source)
            if email:
                by_email[email].add(member_id)
                if verified:
                    verified_by[email].add(member_id)
        members = conn.execute(
            select(Member.id, Member.display_name, Member.organization_id).where(
                Member.workspace_id == workspace_id,
                Member.merged_into_id.is_(None),
                Member.organization_id.is_not(None),
            )
        )
        for member_id, name, org_id in members:
            if name and org_id is not None:
                by_name_org[(_fold(name), org_id)].add(member_id)
    for handle, group in by_handle.items():
        if len(by_handle_sources[handle]) > 1:  # the same handle on one platform is one account
            for pair in _pairs([group]):
                evidence[pair].append(f"handle:{handle}")
    for email, group in by_email.items():
        for pair in _pairs([group]):
            both = pair[0] in verified_by[email] and pair[1] in verified_by[email]
            evidence[pair].append(f"{'verified_email' if both else 'email'}:{email}")
    for (name, _org), group in by_name_org.items():
        for pair in _pairs([group]):
            evidence[pair].append(f"name_org:{name}")
    return evidence


def confidence(evidence: list[str]) -> float:
    remaining = 1.0
    for item in evidence:
        remaining *= 1.0 - WEIGHTS[item.split(":", 1)[0]]
    return round(1.0 - remaining, 3)


def refresh_suggestions(engine: Engine, workspace_id: int) -> int:
    """Open suggestions for new candidate pairs and update open ones; returns how many were opened."""
    candidates = find_candidates(engine, workspace_id)
    opened = 0
    with engine.begin() as conn:
        known = {
            (a, b): (sid, status, evidence)
            for sid, a, b, status, evidence in conn.execute(
                select(
                    MergeSuggestion.id,
                    MergeSuggestion.member_a_id,
                    MergeSuggestion.member_b_id,
                    MergeSuggestion.status,
                    MergeSuggestion.evidence,
                ).where(MergeSuggestion.workspace_id == workspace_id)
            )
        }
        new_rows = []
        for pair, items in candidates.items():
            items = sorted(set(items))
            if pair in known:
                sid, status, stored = known[pair]
                if status == "open" and stored != items:
                    conn.execute(
                        update(MergeSuggestion)
                        .where(MergeSuggestion.id == sid)
                        .values(evidence=items, confidence=confidence(items))
                    )
                continue
            new_rows.append(
                {
                    "workspace_id": workspace_id,
                    "member_a_id": pair[0],
                    "member_b_id": pair[1],
                    "confidence": confidence(items),
                    "evidence": items,
                    "status": "open",
                }
            )
        if new_rows:
            conn.execute(insert(MergeSuggestion), new_rows)
            opened = len(new_rows)
    return opened
