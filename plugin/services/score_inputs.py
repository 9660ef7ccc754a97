"""Read what scoring needs from the store, as numpy arrays, in a few set-wise queries.

Activities come in one scan of narrow columns (member, type code, time, sentiment, NPS or rating),
fetched in chunks straight into arrays; types are coded and values extracted by the database, so
no Python code runs per activity. Text is read only for recent posts and questions, to find
hand-raising topics.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, func, select

from plugin.db.models import Member
from plugin.db.sql import id_set, in_chunks, number_rows, raw_rows
from plugin.services.columns import VALUED as VALUED_KEYS
from plugin.services.domains import email_domain, is_company_domain
from plugin.services.score_deals import RENEWAL_DAYS, DealSignals, deal_signals
from plugin.services.score_reader import PAIRS, PAIRS_FROM, PairReader, Pending
from scoring.accounts import MIN_QUIET_DAYS, Others
from scoring.churn import ChurnContext
from scoring.config import ScoringConfig
from scoring.features import DAY_US, Activities
from scoring.lead import HandRaises, LeadContext, match_topics, seniority_of
from scoring.pipeline import Inputs

#: Full runs over at least this many members read the plain activity types in a second process.
PARALLEL_READ = True
PARALLEL_MIN_MEMBERS = 200_000
HAND_RAISE_TYPES = ("post", "support_question", "feature_request")
Ints = NDArray[np.int64]
HandRaiseRows = tuple[Ints, Ints, Ints, NDArray[np.int16]]  # member, time, activity id, topic


@dataclass(frozen=True)
class Loaded:
    inputs: Inputs
    member_ids: Ints  # row -> members.id
    org_ids: Ints  # organization row -> organizations.id
    emails: list[str | None]
    customer: NDArray[np.bool_]  # by their own stage or purchase (not only through their company)
    last_purchase: Ints  # epoch microseconds, -1 for none
    #: hand-raising posts matched from their text by this run, to keep for later runs
    new_raises: HandRaiseRows | None = None


def _members(conn: Connection, workspace_id: int, subset: Sequence[int] | None) -> list[Any]:
    """(id, primary_email, lifecycle_stage, title, organization_id) of current members, by id:
    plain tuples from the driver (plain columns, nothing to convert)."""
    sql = (
        "SELECT id, primary_email, lifecycle_stage, title, organization_id FROM members "
        "WHERE workspace_id = ? AND merged_into_id IS NULL"
    )
    if subset is None:
        return [r for part in raw_rows(conn, sql + " ORDER BY id", (workspace_id,)) for r in part]
    ids = sorted(subset)
    out: list[Any] = []
    for part, marks in in_chunks(ids):
        for rows in raw_rows(conn, f"{sql} AND id IN ({marks})", (workspace_id, *part)):
            out += rows
    return sorted(out, key=lambda r: r[0])


def _subset_arrays(
    conn: Connection, workspace_id: int, cfg: ScoringConfig, now: int, subset: Sequence[int]
) -> tuple[Ints, Activities]:
    """A few members' activities: (time, type, value, sentiment) from ``ix_activities_member_time``
    alone, one range per member, types coded by the database. No workspace_id test: these are the
    workspace's own members, and with one SQLite would walk a workspace-wide index instead."""
    names = list(cfg.type_names)
    code = "CASE type " + " ".join(f"WHEN ? THEN {i}" for i in range(len(names))) + " ELSE -1 END"
    parts: list[NDArray[np.float64]] = []
    for part, marks in in_chunks(sorted(subset)):
        parts.append(
            number_rows(
                conn,
                ("member_id", code, "occurred_at", "value", "sentiment"),
                f"FROM activities WHERE member_id IN ({marks}) AND occurred_at <= ?",
                (*names, *part, now),
                np.float64,  # ids and times below 2**53 are exact
            )
        )
    rows = np.concatenate(parts) if parts else np.zeros((0, 5))
    member = rows[:, 0].astype(np.int64)
    at = rows[:, 2].astype(np.int64)
    felt = ~np.isnan(rows[:, 4])
    arrays = Activities(
        member,
        rows[:, 1].astype(np.int16),
        at,
        np.full(member.size, np.nan),
        rows[:, 3],
        sentiments=(member[felt], at[felt], rows[felt, 4]),
    )
    return member, arrays


#: Types whose rows carry a number scoring reads (the ``value`` column, filled at ingest).
VALUED = tuple(VALUED_KEYS)


def _all_arrays(
    conn: Connection, workspace_id: int, cfg: ScoringConfig, now: int, pending: Pending | None
) -> tuple[Ints, Activities]:
    """Every activity up to ``now``: per type, one range scan of ``ix_activities_type_time`` (it
    ends in member_id, so the table itself is not read), and the few rows with a sentiment from
    their own partial index. No type strings or JSON are handled per row in Python. ``pending``:
    the plain types' pairs, being read by a helper process (see :func:`load_inputs`)."""
    members, kinds, times, values = [], [], [], []
    plain = [name for name in cfg.type_names if name not in VALUED]
    valued: dict[str, NDArray[np.float64]] = {}
    for name in VALUED:  # first this process's own part, while the helper reads
        valued[name] = number_rows(
            conn,
            ("member_id", "occurred_at", "value"),
            "FROM activities WHERE workspace_id = ? AND type = ? AND occurred_at <= ?",
            (workspace_id, name, now),
            np.float64,
        )
    felt = number_rows(
        conn,
        ("member_id", "occurred_at", "sentiment"),
        "FROM activities WHERE workspace_id = ? AND sentiment IS NOT NULL AND occurred_at <= ?",
        (workspace_id, now),
        np.float64,
    )

    def read_here(name: str) -> Ints:  # two integer columns, read straight into an int array
        return number_rows(conn, PAIRS, PAIRS_FROM, (workspace_id, name, now))

    got = pending.collect(read_here) if pending is not None else {name: read_here(name) for name in plain}
    for code, name in enumerate(cfg.type_names):
        if name not in VALUED:
            pairs = got[name]
            members.append(pairs[:, 0])
            times.append(pairs[:, 1])
            values.append(np.full(pairs.shape[0], np.nan))
            kinds.append(np.full(pairs.shape[0], code, np.int16))
            continue
        data = valued[name]
        members.append(data[:, 0].astype(np.int64))
        times.append(data[:, 1].astype(np.int64))
        values.append(data[:, 2])
        kinds.append(np.full(data.shape[0], code, np.int16))
    member = np.concatenate(members)
    acts = Activities(
        member,
        np.concatenate(kinds),
        np.concatenate(times),
        np.full(member.size, np.nan),
        np.concatenate(values),
        sentiments=(felt[:, 0].astype(np.int64), felt[:, 1].astype(np.int64), felt[:, 2]),
    )
    return member, acts


def _activity_arrays(
    conn: Connection,
    workspace_id: int,
    cfg: ScoringConfig,
    now: int,
    subset: Sequence[int] | None,
    pending: Pending | None = None,
) -> tuple[Ints, Activities]:
    if subset is None:
        return _all_arrays(conn, workspace_id, cfg, now, pending)
    return _subset_arrays(conn, workspace_id, cfg, now, subset)


#: Activity ids this far below the last run's watermark have their texts matched again rather
#: than taken as kept: an id can be committed after a higher one was read (PostgreSQL sequences hand
#: out ids before commit), and SQLite gives the highest id again once its row was erased.
RECHECK_IDS = 10_000


@dataclass(frozen=True)
class Since:
    """Which activities' texts a run matches: ids above ``after`` (all of them when None) up to
    ``upto``, the highest id when the run began. Matches of older activities are read from
    ``hand_raises``."""

    after: int | None
    upto: int

    @property
    def recheck_from(self) -> int | None:
        """Texts of ids above this are matched; kept matches up to it are used."""
        return None if self.after is None else max(self.after - RECHECK_IDS, 0)


def hand_raise_since(cfg: ScoringConfig, now: int) -> int:
    """The start (exclusive, epoch microseconds) of the window hand-raising posts count in."""
    return now - int(cfg.number("lead", "intent_window_days", positive=True) * DAY_US)


def _hand_raises(
    conn: Connection,
    workspace_id: int,
    cfg: ScoringConfig,
    now: int,
    subset: Sequence[int] | None,
    since: Since | None,
) -> tuple[HandRaiseRows, HandRaiseRows]:
    """Hand-raising posts of ``subset`` (None: everyone) that occurred after
    :func:`hand_raise_since` (later than ``now`` too: they are kept for later runs, and the caller
    leaves them out of this one's scores). With ``since``, those of activities the last run read come
    from ``hand_raises`` and only newer texts are matched; without, every recent text is. Returns
    (all, newly matched)."""
    after = hand_raise_since(cfg, now)
    kinds = ", ".join(f"'{t}'" for t in HAND_RAISE_TYPES)
    rows: list[Any] = []
    stored: list[Any] = []
    start = since.recheck_from if since is not None else None
    upto = since.upto if since is not None else None
    if start is None:  # every recent text: per type, a time range of ix_activities_type_time
        if subset is not None:
            raise ValueError("an incremental read needs the last run's watermark (Since)")
        sql = (
            "SELECT id, member_id, occurred_at, title, text FROM activities "  # noqa: S608 (constants)
            f"WHERE workspace_id = ? AND type IN ({kinds}) AND occurred_at > ?"
        )
        params: tuple[Any, ...] = (workspace_id, after)
        if upto is not None:  # none committed since the run began: the next run reads those
            sql += " AND id <= ?"
            params += (upto,)
        for chunk in raw_rows(conn, sql, params):
            rows += chunk
    else:  # the texts of new activities alone (a range of the primary key), the rest as kept
        plus = "" if conn.dialect.name == "postgresql" else "+"  # SQLite: keep to that range
        sql = (
            "SELECT id, member_id, occurred_at, title, text FROM activities "  # noqa: S608 (constants)
            f"WHERE id > ? AND id <= ? AND {plus}workspace_id = ? AND {plus}type IN ({kinds}) "
            f"AND {plus}occurred_at > ?"
        )
        for chunk in raw_rows(conn, sql, (start, upto, workspace_id, after)):
            rows += chunk
        if subset is None:
            who, param = "workspace_id = ?", workspace_id
        else:
            who, param = id_set(conn, "member_id", sorted(subset))
        sql = (
            "SELECT activity_id, member_id, occurred_at, topic FROM hand_raises "  # noqa: S608 (marks)
            f"WHERE {who} AND occurred_at > ? AND activity_id <= ?"
        )
        for chunk in raw_rows(conn, sql, (param, after, start)):
            stored += chunk
    topics = match_topics((f"{r[3] or ''} {r[4] or ''}" for r in rows), cfg)
    fresh = [(r[0], r[1], r[2], t) for r, t in zip(rows, topics, strict=True) if t >= 0]
    return _hand_raise_rows(stored + fresh), _hand_raise_rows(fresh)


def _hand_raise_rows(rows: list[Any]) -> HandRaiseRows:
    """(activity id, member, time, topic) tuples as arrays in :data:`HandRaiseRows` order."""
    return (
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.int64),
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[3] for r in rows], dtype=np.int16),
    )


def load_inputs(
    conn: Connection,
    workspace_id: int,
    cfg: ScoringConfig,
    now: int,
    subset: Sequence[int] | None = None,
    since: Since | None = None,
    *,
    live: bool = True,
) -> Loaded:
    """Everything one scoring pass needs, for all current members or only ``subset`` (then with
    ``since``: what the last run read). ``live``: the pass scores the present (not a backtest), so
    the CRM's open deals, known only as they are today, count.

    A full run over a large workspace reads the (member, time) pairs of the plain activity types
    in a helper process while this one reads members, organizations, hand-raising posts, valued
    activities and sentiments: the two halves take about as long."""
    with ExitStack() as stack:
        pending = None
        url = conn.engine.url
        shared = url.database not in (None, "", ":memory:")  # a second process sees the same data
        if (
            subset is None
            and PARALLEL_READ
            and shared
            and _member_count(conn, workspace_id) >= PARALLEL_MIN_MEMBERS
        ):
            plain = [name for name in cfg.type_names if name not in VALUED]
            reader = stack.enter_context(PairReader())
            pending = reader.submit(url.render_as_string(hide_password=False), workspace_id, plain, now)
        return _load(conn, workspace_id, cfg, now, subset, since, pending, live)


def _member_count(conn: Connection, workspace_id: int) -> int:
    m = Member.__table__.c
    return int(
        conn.execute(
            select(func.count()).where(m.workspace_id == workspace_id, m.merged_into_id.is_(None))
        ).scalar_one()
    )


def _load(
    conn: Connection,
    workspace_id: int,
    cfg: ScoringConfig,
    now: int,
    subset: Sequence[int] | None,
    since: Since | None,
    pending: Pending | None,
    live: bool = True,
) -> Loaded:
    members = _members(conn, workspace_id, subset)
    member_ids = np.array([r[0] for r in members], dtype=np.int64)
    n = member_ids.size
    sql = "SELECT id, size, industry FROM organizations WHERE workspace_id = ?"
    orgs: list[Any] = []
    if subset is not None:  # only the few members' own organizations (account signals are per org)
        wanted = sorted({r[4] for r in members if r[4] is not None})
        for part, marks in in_chunks(wanted):
            for rows in raw_rows(conn, f"{sql} AND id IN ({marks})", (workspace_id, *part)):
                orgs += rows
        orgs.sort(key=lambda r: r[0])
    else:
        orgs = [r for rows in raw_rows(conn, sql + " ORDER BY id", (workspace_id,)) for r in rows]
    org_ids = np.array([r[0] for r in orgs], dtype=np.int64)
    org_of = np.array([r[4] if r[4] is not None else -1 for r in members], dtype=np.int64)
    org_row = np.where(org_of >= 0, np.searchsorted(org_ids, org_of), -1)
    ideal = {str(x).lower() for x in cfg.section("lead")["ideal_industries"]}
    size = np.array([np.nan if r[1] is None else float(r[1]) for r in orgs] + [np.nan])
    industry = np.array([np.nan if r[2] is None else float(r[2].lower() in ideal) for r in orgs] + [np.nan])

    (hr_member, hr_at, hr_id, hr_topic), new_raises = _hand_raises(
        conn, workspace_id, cfg, now, subset, since
    )
    raw_member, acts = _activity_arrays(conn, workspace_id, cfg, now, subset, pending)
    row, known = _rows_of(member_ids, raw_member)
    felt = None
    if acts.sentiments is not None:
        f_row, f_known = _rows_of(member_ids, acts.sentiments[0])
        felt = (f_row[f_known], acts.sentiments[1][f_known], acts.sentiments[2][f_known])
    acts = Activities(
        row[known], acts.kind[known], acts.at[known], acts.sentiment[known], acts.value[known], felt
    )

    stages = {str(x) for x in cfg.section("lead")["customer_stages"]}
    own_customer = np.array([r[2] in stages for r in members], dtype=bool)
    purchase = cfg.type_code("purchase")
    bought = np.zeros(n, bool)
    bought[acts.member[acts.kind == purchase]] = True
    n_orgs = org_ids.size
    customer_org = np.zeros(n_orgs + 1, bool)
    np.logical_or.at(customer_org, org_row, own_customer | bought)  # row -1 lands on the spare slot
    customer_org[-1] = False
    colleagues = None
    if subset is not None:  # everyone else at these accounts, from their stored summaries
        recent_days = cfg.number("windows", "recent_days", positive=True)
        colleagues = read_colleagues(conn, workspace_id, org_ids, member_ids, now, recent_days)
        customer_org[:n_orgs] |= colleagues.customer  # colleagues not reloaded make it a customer
    customer = own_customer | bought | customer_org[org_row]
    bought_by = colleagues.last_purchase if colleagues is not None else None
    crm = deal_signals(conn, workspace_id, member_ids, org_ids, org_row, now, live=live)
    renewal = _renewal_days(acts, org_row, n, n_orgs, purchase, now, bought_by, crm)
    last_purchase = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last_purchase, acts.member[acts.kind == purchase], acts.at[acts.kind == purchase])
    emails = [r[1] for r in members]
    company: dict[str, float] = {}  # one check per distinct domain, not per member
    business = np.empty(n)
    for i, e in enumerate(emails):
        if not e:
            business[i] = np.nan
            continue
        domain = email_domain(e)
        flag = company.get(domain)
        if flag is None:
            flag = company[domain] = float(is_company_domain(domain))
        business[i] = flag
    hr_row, ok = _rows_of(member_ids, hr_member)
    ok &= hr_at <= now  # kept for later runs, not counted in this one
    inputs = Inputs(
        acts=acts,
        n=n,
        now=now,
        lead=LeadContext(
            customer=customer,
            organization=org_row,
            seniority=seniority_of([r[3] for r in members], cfg),
            company_size=size[org_row],
            industry_fit=industry[org_row],
            business_email=business,
            open_deals=None if crm is None else crm.open_deals.astype(np.float64),
        ),
        churn=ChurnContext(customer=customer, organization=org_row, renewal_days=renewal),
        raises=HandRaises(hr_row[ok], hr_at[ok], hr_id[ok], hr_topic[ok]),
        n_orgs=n_orgs,
        others=colleagues.others if colleagues is not None else None,
    )
    return Loaded(inputs, member_ids, org_ids, emails, own_customer | bought, last_purchase, new_raises)


def _rows_of(member_ids: Ints, wanted: Ints) -> tuple[Ints, NDArray[np.bool_]]:
    """Row index of each wanted member id in the sorted ``member_ids``, and which were found
    (activities of members merged away or outside the subset are not). Ids are mostly dense, so a
    lookup table is used when it is small; a binary search otherwise."""
    if member_ids.size == 0 or wanted.size == 0:
        return np.zeros(wanted.shape, np.int64), np.zeros(wanted.shape, bool)
    top = int(max(member_ids[-1], wanted.max()))
    if top <= 4 * member_ids.size + 1_000_000:
        table = np.full(top + 1, -1, np.int64)
        table[member_ids] = np.arange(member_ids.size)
        row = table[np.maximum(wanted, 0)]
        return np.maximum(row, 0), (row >= 0) & (wanted >= 0)
    row = np.searchsorted(member_ids, wanted)
    found = (row < member_ids.size) & (member_ids[np.minimum(row, member_ids.size - 1)] == wanted)
    return row, found


@dataclass(frozen=True)
class Colleagues:
    """Incremental runs: what the stored summaries (``member_stats``) say of everyone else at the
    loaded members' organizations, by organization row."""

    others: Others  # what the account signals need of them
    customer: NDArray[np.bool_]  # one of them is a customer
    last_purchase: Ints  # their latest purchase, epoch microseconds, -1 for none


def read_colleagues(
    conn: Connection, workspace_id: int, org_ids: Ints, exclude: Ints, now: int, recent_days: float
) -> Colleagues:
    """Per organization of ``org_ids`` (sorted), the summary of its people but ``exclude``,
    aggregated by the database from ``member_stats`` (one primary-key range per organization): the
    same arithmetic as :func:`scoring.accounts.summarise` on these people's stored summaries
    (recency in days as a double, silence against twice the usual gap, at least
    ``MIN_QUIET_DAYS``). An organization with nobody else has zeros."""
    pg = conn.dialect.name == "postgresql"
    days = f"CAST(? - last_at AS DOUBLE PRECISION) / {float(DAY_US)!r}"
    floor = f"{MIN_QUIET_DAYS!r}"
    limit = (
        f"GREATEST(2.0 * COALESCE(usual_gap_days, {floor}), {floor})"
        if pg
        else (f"max(2.0 * coalesce(usual_gap_days, {floor}), {floor})")
    )
    orgs, org_param = id_set(conn, "organization_id", org_ids.tolist())
    others, others_param = id_set(conn, "member_id", exclude.tolist(), negate=True)
    sql = (
        "SELECT organization_id, "  # noqa: S608 (constants and marks only)
        f"SUM(CASE WHEN last_at IS NOT NULL AND {days} < ? THEN 1 ELSE 0 END), "
        f"MAX(activities * 2 + CASE WHEN last_at IS NULL OR {days} > {limit} THEN 1 ELSE 0 END), "
        "MAX(CASE WHEN customer THEN 1 ELSE 0 END), MAX(last_purchase_at) "
        f"FROM member_stats WHERE workspace_id = ? AND {orgs} AND {others} GROUP BY organization_id"
    )
    params = (now, recent_days, now, workspace_id, org_param, others_param)
    rows = [r for part in raw_rows(conn, sql, params) for r in part]
    n = org_ids.size
    got = Colleagues(
        Others(np.zeros(n), np.zeros(n), np.zeros(n, bool)), np.zeros(n, bool), np.full(n, -1, np.int64)
    )
    if rows:
        row = np.searchsorted(org_ids, np.array([r[0] for r in rows], dtype=np.int64))
        top = np.array([r[2] for r in rows], dtype=np.int64)
        got.others.active[row] = [r[1] for r in rows]
        got.others.top_activities[row] = top // 2
        got.others.top_quiet[row] = top % 2 == 1
        got.customer[row] = [bool(r[3]) for r in rows]
        got.last_purchase[row] = [-1 if r[4] is None else r[4] for r in rows]
    return got


def _renewal_days(
    acts: Activities,
    org_row: Ints,
    n: int,
    n_orgs: int,
    purchase: int,
    now: int,
    org_bought: Ints | None = None,
    crm: DealSignals | None = None,
) -> Any:
    """Days until each member's account (or, without one, their own) renews: an open renewal
    deal's close date, else a year after the latest contract (a won deal or a purchase; see
    :mod:`plugin.services.score_deals`); negative once that date passed with no renewal. NaN where
    nothing dates one."""
    sel = acts.kind == purchase
    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, acts.member[sel], acts.at[sel])
    org_last = np.full(n_orgs + 1, -1, dtype=np.int64)
    np.maximum.at(org_last, org_row, last)
    if org_bought is not None:  # purchases by colleagues not loaded, by organization row
        org_last[: org_bought.size] = np.maximum(org_last[: org_bought.size], org_bought)
    latest = np.where(org_row >= 0, org_last[org_row], last)
    due = np.where(latest >= 0, latest + RENEWAL_DAYS * DAY_US, -1)
    if crm is not None:  # the account's (else the member's own) CRM dates
        due = np.maximum(due, crm.won_due)  # the latest contract
        due = np.where(crm.renewal >= 0, crm.renewal, due)  # an open renewal deal says when, overdue too
    return np.where(due >= 0, (due - now) / DAY_US, np.nan)
