"""Identity resolution: which member did this, creating members, identities and organizations.

Rules (a person's say is needed for anything weaker than a verified email):

* An identity is the pair (source, the platform's user key). Known identities resolve at once.
* A new identity whose email is verified joins the member who already has that verified email
  (an ``auto_email`` merge-log entry records it, so it can be split off again).
* Anything else becomes a new member; the suggestion pass (``plugin.services.suggestions``) then
  proposes merges for the same handle on two platforms, the same unverified email, or the same name
  at the same organization.

The resolver works a batch at a time with in-memory maps and SQLAlchemy Core, because it sits on
the bulk-ingest path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import Connection, bindparam, select, update

from connectors.records import MemberRef
from plugin.db.base import table_of, utcnow
from plugin.db.ids import allocate_ids
from plugin.db.models import Identity, Member, MergeLog, Organization
from plugin.db.models.identity_log import AUTO_EMAIL
from plugin.db.sql import in_values, insert_rows
from plugin.services.columns import MemberKey
from plugin.services.domains import email_domain, is_company_domain, organization_name_from_domain

#: Whether a source vouches for the emails it sends, when a record does not say (``email_verified``).
#: GitHub's user emails are public profile text, never confirmed to us; Slack and Discourse confirm
#: addresses before an account is usable; file imports are the company's own records.
EMAIL_TRUST: dict[str, bool] = {"github": False, "slack": True, "discourse": True}
DEFAULT_EMAIL_TRUST = True

#: Member profile fields filled from records when the member has none yet (never overwritten here;
#: the CRM read-back is the authority for lifecycle stage).
PROFILE_FIELDS = ("display_name", "primary_email", "locale", "lifecycle_stage", "title", "organization_id")
CHUNK = 500  # IN-list size for lookups; well under SQLite's and PostgreSQL's parameter limits


def email_is_trusted(source: str, member: MemberRef) -> bool:
    if member.email_verified is not None:
        return member.email_verified
    return EMAIL_TRUST.get(source, DEFAULT_EMAIL_TRUST)


def chunks(items: Sequence[str], size: int = CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class ResolveStats:
    members_created: int = 0
    identities_created: int = 0
    auto_merges: int = 0
    organizations_created: int = 0


@dataclass
class IdentityResolver:
    """Caches live for one ingest run of one workspace; ``resolve`` is called once per batch."""

    workspace_id: int
    identities: dict[MemberKey, tuple[int, int]] = field(default_factory=dict)
    verified_emails: dict[str, int] = field(default_factory=dict)
    organizations: dict[str, int] = field(default_factory=dict)
    profiles: dict[int, list[object]] = field(default_factory=dict)
    #: the member data each identity last offered; the same data again needs no profile check
    offered: dict[MemberKey, MemberRef] = field(default_factory=dict)
    #: identities known to have no email yet (a later record may tell it)
    without_email: set[MemberKey] = field(default_factory=set)
    stats: ResolveStats = field(default_factory=ResolveStats)
    _committed: ResolveStats = field(default_factory=ResolveStats)

    def fresh(self) -> IdentityResolver:
        """A resolver with empty caches and the statistics as they stood before the failed batch
        (its rows were rolled back, so what it counted is taken back too)."""
        return IdentityResolver(
            self.workspace_id, stats=replace(self._committed), _committed=replace(self._committed)
        )

    def commit_stats(self) -> None:
        self._committed = replace(self.stats)

    def resolve(
        self, conn: Connection, members: Mapping[MemberKey, Sequence[MemberRef]]
    ) -> list[tuple[int, int]]:
        """(identity_id, member_id) for each person of ``members``, in its order, creating what
        is missing. Each person comes with the distinct ways the batch described them: the first
        creates the identity; all may fill empty profile fields."""
        known = self.identities
        unknown = [k for k in members if k not in known]
        if unknown:
            self._load_identities(conn, unknown)
            new = {k: members[k][0] for k in unknown if k not in known}
            if new:
                self._create(conn, new)
        self._fill_profiles(conn, members)
        return [known[k] for k in members]

    # -- loading -------------------------------------------------------------------------------
    def _load_identities(self, conn: Connection, keys: Iterable[MemberKey]) -> None:
        missing: dict[str, list[str]] = {}
        for source, key in keys:
            missing.setdefault(source, []).append(key)
        found_members: set[int] = set()
        for source, user_keys in missing.items():
            for part in chunks(user_keys):
                rows = conn.execute(
                    select(Identity.source_user_id, Identity.id, Identity.member_id, Identity.email).where(
                        Identity.workspace_id == self.workspace_id,
                        Identity.source == source,
                        in_values(conn, Identity.source_user_id, part),
                    )
                )
                for user_key, identity_id, member_id, email in rows:
                    self.identities[(source, user_key)] = (identity_id, member_id)
                    if email is None:
                        self.without_email.add((source, user_key))
                    found_members.add(member_id)
        self._load_profiles(conn, found_members - self.profiles.keys())

    def _load_profiles(self, conn: Connection, member_ids: set[int]) -> None:
        ids = sorted(member_ids)
        for start in range(0, len(ids), CHUNK):
            columns = [getattr(Member, name) for name in PROFILE_FIELDS]
            rows = conn.execute(
                select(Member.id, *columns).where(in_values(conn, Member.id, ids[start : start + CHUNK]))
            )
            for row in rows:
                self.profiles[row[0]] = list(row[1:])

    def _load_verified_emails(self, conn: Connection, emails: list[str]) -> None:
        wanted = [e for e in emails if e not in self.verified_emails]
        for part in chunks(wanted):
            rows = conn.execute(
                select(Identity.email, Identity.member_id).where(
                    Identity.workspace_id == self.workspace_id,
                    Identity.verified.is_(True),
                    in_values(conn, Identity.email, part),
                )
            )
            for email, member_id in rows:
                if email is not None:
                    self.verified_emails.setdefault(email, member_id)

    # -- creating ------------------------------------------------------------------------------
    def _create(self, conn: Connection, new: dict[MemberKey, MemberRef]) -> None:
        trusted = {k: m.email is not None and email_is_trusted(k[0], m) for k, m in new.items()}
        self._load_verified_emails(conn, sorted({m.email for k, m in new.items() if trusted[k] and m.email}))
        org_ids = self._ensure_organizations(conn, new.values())

        # Which member each new identity joins: an existing one by verified email, or a new one
        # (shared by all new identities of the batch with the same verified email).
        joins: dict[MemberKey, int] = {}
        new_member_for: dict[MemberKey, int] = {}  # key -> index into member_rows
        member_rows: list[dict[str, object]] = []
        first_keys: list[MemberKey] = []  # the identity each new member was created for
        email_to_new: dict[str, int] = {}
        for key, ref in new.items():
            email = ref.email
            if email and trusted[key] and email in self.verified_emails:
                joins[key] = self.verified_emails[email]
                continue
            if email and trusted[key] and email in email_to_new:
                new_member_for[key] = email_to_new[email]
                continue
            index = len(member_rows)
            member_rows.append(self._member_row(ref, org_ids))
            first_keys.append(key)
            new_member_for[key] = index
            if email and trusted[key]:
                email_to_new[email] = index

        member_ids = allocate_ids(conn, table_of(Member), len(member_rows))
        if member_rows:
            for row, member_id in zip(member_rows, member_ids, strict=True):
                row["id"] = member_id
            insert_rows(conn, table_of(Member), member_rows)
            for row, member_id in zip(member_rows, member_ids, strict=True):
                self.profiles[member_id] = [row[name] for name in PROFILE_FIELDS]
            self.stats.members_created += len(member_ids)
        for email, index in email_to_new.items():
            self.verified_emails[email] = member_ids[index]

        keys = list(new)
        owner = {k: joins[k] if k in joins else member_ids[new_member_for[k]] for k in keys}
        now = utcnow()
        identity_ids = allocate_ids(conn, table_of(Identity), len(keys))
        identity_rows = [
            {
                "id": identity_id,
                "workspace_id": self.workspace_id,
                "member_id": owner[k],
                "source": k[0],
                "source_user_id": k[1],
                "handle": new[k].handle,
                "email": new[k].email,
                "verified": trusted[k],
                "name": new[k].name,
                "created_at": now,
            }
            for k, identity_id in zip(keys, identity_ids, strict=True)
        ]
        insert_rows(conn, table_of(Identity), identity_rows)
        self.stats.identities_created += len(identity_ids)
        joined_by_email: list[dict[str, object]] = []
        for key, identity_id in zip(keys, identity_ids, strict=True):
            self.identities[key] = (identity_id, owner[key])
            if new[key].email is None:
                self.without_email.add(key)
            shares_new_member = key in new_member_for and first_keys[new_member_for[key]] != key
            if key in joins or shares_new_member:
                joined_by_email.append(self._auto_merge_row(owner[key], identity_id, key[0], now))
        if joined_by_email:
            insert_rows(conn, table_of(MergeLog), joined_by_email)
            self.stats.auto_merges += len(joined_by_email)

    def _member_row(self, ref: MemberRef, org_ids: dict[str, int]) -> dict[str, object]:
        now = utcnow()
        return {
            "workspace_id": self.workspace_id,
            "display_name": ref.name or ref.handle,
            "primary_email": ref.email,
            "locale": ref.locale,
            "lifecycle_stage": ref.lifecycle_stage,
            "title": ref.title,
            "organization_id": org_ids.get(email_domain(ref.email)) if ref.email else None,
            "created_at": now,
            "updated_at": now,
        }

    def _auto_merge_row(
        self, member_id: int, identity_id: int, source: str, now: object
    ) -> dict[str, object]:
        return {
            "workspace_id": self.workspace_id,
            "kind": AUTO_EMAIL,
            "target_member_id": member_id,
            "source_member_id": None,
            "identity_ids": [identity_id],
            "filled_fields": {},
            "reason": f"same verified email as an existing identity ({source} identity joined)",
            "actor": "flywheel",
            "created_at": now,
        }

    def _ensure_organizations(self, conn: Connection, refs: Iterable[MemberRef]) -> dict[str, int]:
        names: dict[str, str | None] = {}
        for ref in refs:
            if ref.email:
                domain = email_domain(ref.email)
                if domain not in self.organizations and is_company_domain(domain):
                    names.setdefault(domain, ref.company)
        if names:
            wanted = sorted(names)
            for part in chunks(wanted):
                rows = conn.execute(
                    select(Organization.domain, Organization.id).where(
                        Organization.workspace_id == self.workspace_id,
                        in_values(conn, Organization.domain, part),
                    )
                )
                self.organizations.update({domain: org_id for domain, org_id in rows})
            missing = [d for d in wanted if d not in self.organizations]
            if missing:
                now = utcnow()
                new_ids = allocate_ids(conn, table_of(Organization), len(missing))
                org_rows = [
                    {
                        "id": org_id,
                        "workspace_id": self.workspace_id,
                        "domain": d,
                        "name": names[d] or organization_name_from_domain(d),
                        "created_at": now,
                        "updated_at": now,
                    }
                    for d, org_id in zip(missing, new_ids, strict=True)
                ]
                insert_rows(conn, table_of(Organization), org_rows)
                self.organizations.update(zip(missing, new_ids, strict=True))
                self.stats.organizations_created += len(missing)
        return self.organizations

    def _fill_profiles(self, conn: Connection, members: Mapping[MemberKey, Sequence[MemberRef]]) -> None:
        """Give members the profile fields they lack from what later records tell."""
        changes: dict[int, dict[str, object]] = {}
        offered_before = self.offered
        emails: list[dict[str, object]] = []
        for key, refs in members.items():
            for ref in refs:
                self._offer(key, ref, offered_before, changes)
                if ref.email and key in self.without_email:
                    # The identity learns its email; the suggestion pass then sees it (a verified
                    # email shared with another member is proposed with high confidence).
                    self.without_email.discard(key)
                    emails.append(
                        {
                            "_id": self.identities[key][0],
                            "email": ref.email,
                            "verified": email_is_trusted(key[0], ref),
                        }
                    )
        if emails:
            conn.execute(
                update(Identity)
                .where(Identity.id == bindparam("_id"), Identity.email.is_(None))
                .values(email=bindparam("email"), verified=bindparam("verified")),
                emails,
            )
        self._write_profile_changes(conn, changes)

    def _offer(
        self,
        key: MemberKey,
        ref: MemberRef,
        offered_before: dict[MemberKey, MemberRef],
        changes: dict[int, dict[str, object]],
    ) -> None:
        if offered_before.get(key) == ref:
            return
        offered_before[key] = ref
        _, member_id = self.identities[key]
        profile = self.profiles.get(member_id)
        if profile is not None and None in profile:
            org_id = self.organizations.get(email_domain(ref.email)) if ref.email else None
            offered = (ref.name or ref.handle, ref.email, ref.locale, ref.lifecycle_stage, ref.title, org_id)
            for index, value in enumerate(offered):
                if value is not None and profile[index] is None:
                    profile[index] = value
                    changes.setdefault(member_id, {})[PROFILE_FIELDS[index]] = value

    def _write_profile_changes(self, conn: Connection, changes: dict[int, dict[str, object]]) -> None:
        # One executemany per set of filled columns (a statement per member costs more to compile
        # than the update itself).
        by_columns: dict[tuple[str, ...], list[dict[str, object]]] = {}
        now = utcnow()
        for member_id, values in changes.items():
            row = {"_id": member_id, "updated_at": now, **values}
            by_columns.setdefault(tuple(sorted(values)), []).append(row)
        for columns, rows in by_columns.items():
            statement = (
                update(Member)
                .where(Member.id == bindparam("_id"))
                .values({name: bindparam(name) for name in (*columns, "updated_at")})
            )
            conn.execute(statement, rows)
