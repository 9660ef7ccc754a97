"""``/api/v1/panels``: insight panels (focus groups): create one from a panel spec, preview who is
eligible, draw it (seeded, stratified), read its status and manifest, invite and remind."""

from __future__ import annotations

from collections import Counter
from typing import Any

import marshmallow as ma
from flask_smorest import abort
from sqlalchemy import select

from plugin.db.ids import MAX_ID
from plugin.db.models import Panel
from plugin.services import panel_invites
from plugin.services import panels as service
from plugin.services.panel_spec import LEVELS, STRATA, parse_spec
from plugin.services.program_rules import load_programs
from plugin.web.api.core import PageArgs, blueprint, current, decode_cursor, guarded, page_schema, paged
from plugin.web.context import engine, now, settings

blp = blueprint("panels", "/panels", "Insight panels: eligibility, quotas, a seeded draw, invitations")
F = ma.fields
V = ma.validate
PANEL_STATUSES = ("draft", "drawn", "closed")
PLACES = V.Range(0, 100_000)
DAYS = V.Range(0, 36_500)


def _words(length: int = 64, most: int = 100) -> F.List[Any]:
    return F.List(F.String(validate=V.Length(1, length)), validate=V.Length(max=most))


def _pair(what: str) -> F.List[Any]:
    return F.List(F.Float(), validate=V.Length(2, 2), metadata={"description": f"[min, max] {what}"})


class PanelEligibility(ma.Schema):
    """Every key optional: a member is eligible when they meet each one given (see docs/panels.md)."""

    levels = F.List(F.String(validate=V.OneOf(LEVELS)), validate=V.Length(max=len(LEVELS)))
    advocate_score = _pair("advocate score")
    active_within_days = F.Integer(strict=True, validate=DAYS, metadata={"description": "last activity"})
    activity_types = _words()
    lifecycle_stages = _words()
    languages = _words(16)
    min_tenure_days = F.Integer(strict=True, validate=DAYS)
    organization_size = _pair("employees")
    industries = _words(120)


class PanelExclusions(ma.Schema):
    own_domains = _words(253, 1000)
    competitor_domains = _words(253, 1000)
    other_active_panels = F.Boolean(metadata={"description": "leave out members on another open panel"})


class PanelQuota(ma.Schema):
    min = F.Integer(strict=True, validate=PLACES, metadata={"description": "0 when left out"})
    max = F.Integer(strict=True, required=True, validate=PLACES)


MOST_STRATA = 50


def _some_strata(value: dict[str, Any]) -> None:
    if not 1 <= len(value) <= MOST_STRATA:
        raise ma.ValidationError(f"give 1 to {MOST_STRATA} strata their places")


def _quotas(*, checked: bool = False) -> F.Dict:
    about = {"description": "stratum -> its places; strata without a quota are not drawn"}
    return F.Dict(
        keys=F.String(validate=V.Length(1, 64)),
        values=F.Nested(PanelQuota),
        required=True,
        validate=_some_strata if checked else None,
        metadata=about | ({"minProperties": 1, "maxProperties": MOST_STRATA} if checked else {}),
    )


class PanelSpec(ma.Schema):
    """The panel file of docs/panels.md, as JSON."""

    name = F.String(required=True, validate=V.Length(1, 200), metadata={"description": "one line"})
    size = F.Integer(strict=True, required=True, validate=V.Range(1, 100_000))
    reserve = F.Integer(strict=True, validate=PLACES, metadata={"description": "members kept in reserve"})
    stratify_by = F.String(validate=V.OneOf(STRATA))
    seed = F.Integer(
        strict=True,
        allow_none=True,
        validate=V.Range(0, MAX_ID),
        metadata={"description": "the default seed of the draw"},
    )
    eligibility = F.Nested(PanelEligibility)
    exclusions = F.Nested(PanelExclusions)
    quotas = _quotas(checked=True)


class PanelCriteria(ma.Schema):
    size = F.Integer(required=True)
    reserve = F.Integer(required=True)
    stratify_by = F.String(required=True)
    eligibility = F.Nested(PanelEligibility, required=True)
    exclusions = F.Nested(PanelExclusions, required=True)
    quotas = _quotas()


def _counts(description: str) -> F.Dict:
    return F.Dict(keys=F.String(), values=F.Integer(), required=True, metadata={"description": description})


class PanelManifest(ma.Schema):
    """What a draw did: its criteria and seed, and its counts per stratum."""

    panel = F.Integer(required=True)
    name = F.String(required=True)
    seed = F.Integer(
        required=True, metadata={"description": "the same seed on the same data: the same panel"}
    )
    drawn_at = F.String(required=True, metadata={"description": "ISO 8601, UTC"})
    criteria = F.Nested(PanelCriteria, required=True)
    eligible = _counts("stratum -> eligible members")
    eligible_outside_quotas = _counts("eligible members of strata without a quota")
    selected = _counts("stratum -> members on the panel")
    reserve = _counts("stratum -> members in reserve")
    excluded = _counts("reason -> members left out (the first reason that applied)")
    shortfall = _counts("stratum -> places its minimum lacks")
    unfilled = F.Integer(required=True, metadata={"description": "places no stratum could take"})


class PanelItem(ma.Schema):
    id = F.Integer(required=True)
    name = F.String(required=True)
    status = F.String(required=True, validate=V.OneOf(PANEL_STATUSES))
    created_at = F.AwareDateTime(required=True)


class PanelDetail(PanelItem):
    spec = F.Nested(PanelSpec, required=True)
    strata = F.Dict(
        keys=F.String(),
        values=F.Dict(keys=F.String(), values=F.Integer()),
        required=True,
        metadata={"description": "stratum -> status (selected, invited, accepted... or reserve) -> members"},
    )
    manifest = F.Nested(
        PanelManifest, required=True, allow_none=True, metadata={"description": "the latest draw"}
    )


PanelPage = page_schema(PanelItem, "PanelPage")


class PanelArgs(PageArgs):
    status = F.String(validate=V.OneOf(PANEL_STATUSES))


def _detail(conn: Any, workspace_id: int, panel_id: int) -> dict[str, Any]:
    panel = service.get(conn, workspace_id, panel_id)
    state = service.status(conn, workspace_id, panel_id)
    return {
        "id": panel.id,
        "name": panel.name,
        "status": panel.status,
        "created_at": panel.created_at,
        "spec": panel.spec,
        "strata": state["strata"],
        "manifest": state["manifest"],
    }


@blp.get("")
@guarded(blp, "panels:read", not_found=False)
@blp.arguments(PanelArgs, location="query")
@blp.response(200, PanelPage)
def list_panels(args: dict[str, Any]) -> dict[str, Any]:
    """Panels, newest first, with their status."""
    after = decode_cursor(args["cursor"], [int])
    p = Panel
    query = select(p.id, p.name, p.status, p.created_at).where(p.workspace_id == current().workspace_id)
    if args.get("status"):
        query = query.where(p.status == args["status"])
    if after is not None:
        query = query.where(p.id < after[0])
    with engine().connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query.order_by(p.id.desc()).limit(args["limit"] + 1))]
    return paged(rows, args["limit"], lambda r: [r["id"]])


@blp.post("")
@guarded(blp, "panels:write", not_found=False)
@blp.arguments(PanelSpec)
@blp.response(201, PanelDetail)
def create_panel(body: dict[str, Any]) -> dict[str, Any]:
    """Create a panel (a draft) from a spec with the structure of the panel file; a mistake is
    answered 422 with the key that holds it (e.g. ``quotas``, ``eligibility.levels``)."""
    spec = parse_spec(body)
    workspace_id = current().workspace_id
    with engine().begin() as conn:
        panel_id = service.create(conn, workspace_id, spec)
        return _detail(conn, workspace_id, panel_id)


PANEL = "/<int:panel_id>"


@blp.get(PANEL)
@guarded(blp, "panels:read")
@blp.response(200, PanelDetail)
def get_panel(panel_id: int) -> dict[str, Any]:
    """A panel: its spec, where each stratum stands (selected, invited, accepted, declined,
    reserve...) and the manifest of its latest draw (counts only)."""
    with engine().connect() as conn:
        return _detail(conn, current().workspace_id, panel_id)


class PanelPreview(ma.Schema):
    stratify_by = F.String(required=True, validate=V.OneOf(STRATA))
    quotas = _quotas()
    eligible = _counts("stratum -> eligible members, for each stratum with a quota")
    shortfall = _counts("stratum -> places its minimum would lack")
    eligible_outside_quotas = _counts("eligible members of strata without a quota")
    excluded = _counts("reason -> members left out (the first reason that applied)")


@blp.get(PANEL + "/preview")
@guarded(blp, "panels:read")
@blp.response(200, PanelPreview)
def preview_panel(panel_id: int) -> dict[str, Any]:
    """Who the panel's criteria find eligible now, per stratum, and who they leave out and why:
    the counts a draw would start from (nobody is drawn)."""
    workspace_id = current().workspace_id
    with engine().connect() as conn:
        spec = service.get(conn, workspace_id, panel_id).spec
        _, strata, left_out = service.eligible(conn, workspace_id, panel_id, spec, now())
    found = Counter(strata)
    quotas = spec["quotas"]
    return {
        "stratify_by": spec["stratify_by"],
        "quotas": quotas,
        "eligible": {name: found.get(name, 0) for name in quotas},
        "shortfall": {
            name: q["min"] - found.get(name, 0) for name, q in quotas.items() if found.get(name, 0) < q["min"]
        },
        "eligible_outside_quotas": {k: v for k, v in found.items() if k not in quotas},
        "excluded": dict(left_out),
    }


class PanelDrawBody(ma.Schema):
    seed = F.Integer(
        strict=True,
        allow_none=True,
        validate=V.Range(0, MAX_ID),
        metadata={"description": "overrides the spec's seed; without either a random one is recorded"},
    )


@blp.post(PANEL + "/draw")
@guarded(blp, "panels:write")
@blp.arguments(PanelDrawBody)
@blp.response(200, PanelManifest)
def draw_panel(body: dict[str, Any], panel_id: int) -> dict[str, Any]:
    """Draw the panel and its reserve (or draw it again, while nobody is invited: 422 after);
    answers the manifest. A stratum short of its minimum is reported, never filled from another."""
    with engine().begin() as conn:
        return service.run_draw(conn, current().workspace_id, panel_id, body.get("seed"))


class PanelMemberRow(ma.Schema):
    member_id = F.Integer(required=True)
    name = F.String(required=True, allow_none=True)
    email = F.String(required=True, allow_none=True)
    locale = F.String(required=True, allow_none=True)
    stratum = F.String(required=True)
    role = F.String(required=True, validate=V.OneOf(("selected", "reserve")))
    rank = F.Integer(required=True, metadata={"description": "order within the stratum's draw"})
    status = F.String(required=True)


class PanelExport(ma.Schema):
    manifest = F.Nested(PanelManifest, required=True)
    strata = F.Dict(
        keys=F.String(),
        values=F.List(F.Nested(PanelMemberRow)),
        required=True,
        metadata={"description": "stratum -> its members and reserve, in draw order"},
    )


@blp.get(PANEL + "/manifest")
@guarded(blp, "panels:export")
@blp.response(200, PanelExport)
@blp.alt_response(409, response="CONFLICT")
def panel_manifest(panel_id: int) -> dict[str, Any]:
    """The latest draw's manifest and the drawn members of each stratum, with their contact
    details (personal data: researchers and admins only). 409 before the panel is drawn."""
    workspace_id = current().workspace_id
    with engine().connect() as conn:
        manifest = service.status(conn, workspace_id, panel_id)["manifest"]
        rows = service.members(conn, workspace_id, panel_id)
    if manifest is None:
        abort(409, message=f"panel {panel_id} is not drawn yet: POST .../draw first")
    strata: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        strata.setdefault(row["stratum"], []).append(row)
    return {"manifest": manifest, "strata": strata}


class PanelInviteBody(ma.Schema):
    deadline_days = F.Integer(
        strict=True,
        load_default=7,
        validate=V.Range(1, 90),
        metadata={"description": "the links expire then"},
    )


def _sent(what: str, description: str) -> type[ma.Schema]:
    return ma.Schema.from_dict(
        {
            what: F.Integer(required=True, metadata={"description": description}),
            "members": F.List(F.Integer(), required=True),
            "skipped": _counts("reason -> members skipped"),
        },
        name=f"Panel{what.title()}",
    )


PanelInvited = _sent("invited", "members invited now")
PanelReminded = _sent("reminded", "members reminded now")


@blp.post(PANEL + "/invitations")
@guarded(blp, "panels:write")
@blp.arguments(PanelInviteBody)
@blp.response(200, PanelInvited)
@blp.alt_response(400, response="BAD_REQUEST")
def invite_panel(body: dict[str, Any], panel_id: int) -> dict[str, Any]:
    """Send ``focus_group.invitation`` to every selected member not invited yet (replacements
    too), in their language, with signed accept and decline links valid until the deadline.
    Members without research consent or over the contact budget are skipped, counted by reason."""
    workspace_id = current().workspace_id
    policy = load_programs(settings().programs_config)
    with engine().begin() as conn:
        service.get(conn, workspace_id, panel_id)
        sent = panel_invites.invite(conn, settings(), workspace_id, panel_id, policy=policy,
                                    deadline_days=body["deadline_days"], now=now())  # fmt: skip
    return {"invited": len(sent.members), "members": sent.members, "skipped": sent.skipped}


@blp.post(PANEL + "/reminders")
@guarded(blp, "panels:write")
@blp.response(200, PanelReminded)
@blp.alt_response(400, response="BAD_REQUEST")
def remind_panel(panel_id: int) -> dict[str, Any]:
    """One ``focus_group.reminder`` to each invited member who has not answered while their links
    still work (research consent and the contact budget checked again)."""
    workspace_id = current().workspace_id
    policy = load_programs(settings().programs_config)
    with engine().begin() as conn:
        service.get(conn, workspace_id, panel_id)
        sent = panel_invites.remind(conn, settings(), workspace_id, panel_id, policy=policy, now=now())
    return {"reminded": len(sent.members), "members": sent.members, "skipped": sent.skipped}
