"""Insight panels: the list, the builder (criteria and quotas, a preview of who is eligible per
stratum, create), and a panel's page (draw, the manifest, invitations and who is on it)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from flask import flash, g, redirect, request, url_for
from sqlalchemy import select

from plugin.db.models import Panel
from plugin.errors import FlywheelError, ValidationFailed
from plugin.services import panel_invites
from plugin.services import panels as service
from plugin.services.panel_spec import LEVELS, STRATA, parse_spec
from plugin.services.program_rules import load_programs
from plugin.web.context import engine, now, settings
from plugin.web.dashboard.blueprints import pages_bp
from plugin.web.dashboard.common import page, require, user
from plugin.web.dashboard.panel_form import STRATUM_HINTS, PanelForm

#: Columns of the invitations table: where the selected members stand, then the reserve.
STATES = ("selected", "invited", *service.ANSWERS, "reserve")


@pages_bp.get("/panels")
@require("panels:read")
def panels() -> Any:
    p = Panel
    with engine().connect() as conn:
        rows = conn.execute(
            select(p.id, p.name, p.status, p.created_at, p.spec)
            .where(p.workspace_id == user().workspace_id)
            .order_by(p.id.desc())
        ).all()
    return page("panels.html", rows=rows)


def _builder(form: PanelForm, preview: dict[str, Any] | None = None, status: int = 200) -> Any:
    return page("panel_new.html", status, form=form, v=form.values, levels=LEVELS, strata=STRATA,
                hints=STRATUM_HINTS, preview=preview)  # fmt: skip


@pages_bp.get("/panels/new")
@require("panels:write")
def new_panel() -> Any:
    g.dashboard_section = "dashboard.panels"
    return _builder(PanelForm())


def _preview(spec: dict[str, Any]) -> dict[str, Any]:
    with engine().connect() as conn:
        _, strata, left_out = service.eligible(conn, user().workspace_id, 0, spec, now())
    counts = Counter(strata)
    rows = [
        {"stratum": name, "eligible": counts.get(name, 0), "min": q["min"], "max": q["max"],
         "short": max(q["min"] - counts.get(name, 0), 0)}
        for name, q in spec["quotas"].items()
    ]  # fmt: skip
    outside = {k: v for k, v in sorted(counts.items()) if k not in spec["quotas"]}
    return {"rows": rows, "outside": outside, "excluded": left_out.most_common(), "total": len(strata)}


@pages_bp.post("/panels/new")
@require("panels:write")
def build_panel() -> Any:
    g.dashboard_section = "dashboard.panels"
    form = PanelForm.read(request.form, request.form.getlist)
    data = form.spec()
    if form.errors:
        return _builder(form, status=422)
    try:
        spec = parse_spec(data)
    except ValidationFailed as exc:
        for key, message in (exc.fields or {"name": exc.user_message}).items():
            form.fail(key, message)
        return _builder(form, status=422)
    if request.form.get("action") != "create":
        return _builder(form, preview=_preview(spec))
    with engine().begin() as conn:
        panel_id = service.create(conn, user().workspace_id, spec)
    flash(f"Panel “{spec['name']}” is created. Draw it when the preview looks right.", "success")
    return redirect(url_for(".panel", panel_id=panel_id))


@pages_bp.get("/panels/<int:panel_id>")
@require("panels:read")
def panel(panel_id: int) -> Any:
    g.dashboard_section = "dashboard.panels"
    ws = user().workspace_id
    with engine().connect() as conn:
        row = service.get(conn, ws, panel_id)
        state = service.status(conn, ws, panel_id)
        people = service.members(conn, ws, panel_id)
    manifest = state["manifest"]
    strata = []
    if manifest:
        quotas = manifest["criteria"]["quotas"]
        strata = [
            {"stratum": name, "min": q["min"], "max": q["max"],
             "eligible": manifest["eligible"].get(name, 0), "selected": manifest["selected"].get(name, 0),
             "reserve": manifest["reserve"].get(name, 0), "short": manifest["shortfall"].get(name, 0)}
            for name, q in quotas.items()
        ]  # fmt: skip
    invited = any(p["status"] not in ("selected", "waiting") for p in people)
    return page("panel.html", panel=row, spec=row.spec, state=state, manifest=manifest, strata=strata,
                people=people, states=STATES, can_draw=not invited and row.status != "closed",
                public_url=settings().public_url)  # fmt: skip


@pages_bp.post("/panels/<int:panel_id>/draw")
@require("panels:write")
def draw_panel(panel_id: int) -> Any:
    try:
        with engine().begin() as conn:
            manifest = service.run_draw(conn, user().workspace_id, panel_id)
    except ValidationFailed as exc:
        flash(f"The panel was not drawn: {exc.user_message}.", "error")
        return redirect(url_for(".panel", panel_id=panel_id))
    chosen = sum(manifest["selected"].values())
    flash(f"Drawn with seed {manifest['seed']}: {chosen} selected, "
          f"{sum(manifest['reserve'].values())} in reserve.", "success")  # fmt: skip
    return redirect(url_for(".panel", panel_id=panel_id) + "#manifest")


@pages_bp.post("/panels/<int:panel_id>/invite")
@require("panels:write")
def invite_panel(panel_id: int) -> Any:
    try:
        days = int(request.form.get("deadline_days", "7"))
    except ValueError:
        days = 0
    ws = user().workspace_id
    try:
        with engine().begin() as conn:
            service.get(conn, ws, panel_id)
            sent = panel_invites.invite(conn, settings(), ws, panel_id, deadline_days=days,
                                        policy=load_programs(settings().programs_config))  # fmt: skip
    except FlywheelError as exc:
        flash(f"Nobody was invited: {exc.user_message}." + (f" {exc.hint}." if exc.hint else ""), "error")
        return redirect(url_for(".panel", panel_id=panel_id))
    skipped = "; ".join(f"{n} {why}" for why, n in sent.skipped.items() if n)
    flash(f"Invited {len(sent.members)} member(s)." + (f" Skipped: {skipped}." if skipped else ""), "success")
    return redirect(url_for(".panel", panel_id=panel_id))
