"""``flywheel crm``: connect a CRM, check it, and sync members' scores onto their CRM records."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table
from sqlalchemy import func, select

from connectors.crm.salesforce import sf_name
from connectors.errors import CrmError
from plugin.cli.context import (
    AppContext,
    handle_errors,
    json_option,
    pass_app,
    secret_input,
    workspace_option,
)
from plugin.db.models import CrmLink
from plugin.errors import ValidationFailed
from plugin.services.crm_connections import (
    connect_hubspot_account,
    connect_salesforce_account,
    crm_error,
    load_connection,
    open_adapter,
)
from plugin.services.crm_fields import FieldMap
from plugin.services.crm_sync import SyncReport, sync_crm

crm_option = click.option(
    "--crm", "kind", type=click.Choice(["hubspot", "salesforce"]), default=None, help="Which connection."
)


@click.group()
def crm() -> None:
    """CRM connections and syncs (HubSpot; Salesforce to come)."""


@crm.group()
def connect() -> None:
    """Connect a CRM account to this workspace."""


@connect.command("hubspot")
@click.option(
    "--token",
    envvar="FLYWHEEL_HUBSPOT_TOKEN",
    default=None,
    help="Private-app or OAuth access token (or FLYWHEEL_HUBSPOT_TOKEN; asked for when missing).",
)
@click.option("--base-url", default=None, help="Another API host (a proxy); default HubSpot's.")
@click.option(
    "--sandbox",
    is_flag=True,
    help="Test mode: a local HubSpot-compatible sandbox, its state in a file beside the database.",
)
@workspace_option
@json_option
@pass_app
@handle_errors
def connect_hubspot(
    app: AppContext,
    token: str | None,
    base_url: str | None,
    sandbox: bool,
    workspace: str | None,
    as_json: bool,
) -> None:
    """Check the token with one call, then store it encrypted. It is never printed."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
    if not token and not sandbox:
        token = click.prompt("HubSpot private-app token", hide_input=True, err=True)
    row = connect_hubspot_account(
        app.engine, app.settings, ws.id, token=token, base_url=base_url, sandbox=sandbox
    )
    shown = "the local sandbox" if sandbox else (base_url or "https://api.hubapi.com")
    if as_json:
        app.emit_json(
            {"crm": "hubspot", "workspace": ws.slug, "base_url": shown, "connected": True, "id": row.id}
        )
        return
    app.out.print(f"connected HubSpot ({escape(shown)}) to workspace {escape(ws.slug)}")
    app.out.print("next: `flywheel crm sync --dry-run` shows what the first sync would write")


@connect.command("salesforce")
@click.option("--instance-url", default=None, help="Your org's URL (https://yourorg.my.salesforce.com).")
@click.option("--username", "-u", default=None, help="The integration user (password and JWT logins).")
@click.option(
    "--password", envvar="FLYWHEEL_SALESFORCE_PASSWORD", default=None, help="Or FLYWHEEL_SALESFORCE_PASSWORD."
)
@click.option("--security-token", envvar="FLYWHEEL_SALESFORCE_TOKEN", default=None, help="With --password.")
@click.option(
    "--jwt-key", type=click.Path(exists=True, dir_okay=False), default=None, help="Private key file (JWT)."
)
@click.option("--client-id", default=None, help="The connected app's consumer key (JWT, client credentials).")
@click.option(
    "--client-secret", envvar="FLYWHEEL_SALESFORCE_SECRET", default=None, help="Client credentials."
)
@click.option("--domain", default=None, help="login, test, or your My Domain (e.g. yourorg.my).")
@workspace_option
@json_option
@pass_app
@handle_errors
def connect_salesforce(
    app: AppContext,
    instance_url: str | None,
    username: str | None,
    password: str | None,
    security_token: str | None,
    jwt_key: str | None,
    client_id: str | None,
    client_secret: str | None,
    domain: str | None,
    workspace: str | None,
    as_json: bool,
) -> None:
    """Log in once (username-password with security token, JWT bearer, or client credentials),
    then store the credentials encrypted. They are never printed."""
    if jwt_key:
        if not (client_id and username):
            raise ValidationFailed(
                "a JWT login needs --client-id and --username", hint="add both, with --jwt-key"
            )
        with open(jwt_key, encoding="utf-8") as handle:
            creds = {
                "mode": "jwt",
                "username": username,
                "client_id": client_id,
                "private_key": handle.read(),
            }
    elif client_id and (client_secret or not username):
        if not client_secret:
            client_secret = click.prompt("Salesforce client secret", hide_input=True, err=True)
        creds = {"mode": "client_credentials", "client_id": client_id, "client_secret": client_secret}
    elif username:
        if not password:
            password = click.prompt("Salesforce password", hide_input=True, err=True)
        creds = {
            "mode": "password",
            "username": username,
            "password": password,
            "security_token": security_token or "",
        }
    else:
        raise ValidationFailed(
            "say how to log in to Salesforce",
            hint="--username with --password and --security-token, or --jwt-key with --client-id and "
            "--username, or --client-id with --client-secret (and --domain for your My Domain)",
        )
    if domain:
        creds["domain"] = domain
    with app.session() as session:
        ws = app.workspace(session, workspace)
    row = connect_salesforce_account(app.engine, app.settings, ws.id, creds, instance_url)
    if as_json:
        app.emit_json(
            {
                "crm": "salesforce",
                "workspace": ws.slug,
                "mode": creds["mode"],
                "connected": True,
                "id": row.id,
            }
        )
        return
    app.out.print(f"connected Salesforce ({creds['mode']} login) to workspace {escape(ws.slug)}")
    app.out.print(
        "next: `flywheel crm check` names any custom field to create; then `flywheel crm sync --dry-run`"
    )


@crm.command("check")
@crm_option
@workspace_option
@json_option
@pass_app
@handle_errors
def check(app: AppContext, kind: str | None, workspace: str | None, as_json: bool) -> None:
    """One authenticated call to the CRM, and how many members are linked."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
    row = load_connection(app.engine, ws.id, kind)
    try:
        with open_adapter(app.settings, row, max_attempts=3) as adapter:
            adapter.check()
            if row.kind == "salesforce":  # fields are an admin's to create: name any missing
                adapter.ensure_schema(FieldMap.from_settings(row.settings).specs())
    except CrmError as exc:
        raise crm_error(exc, row.kind) from exc
    with app.engine.connect() as conn:
        t = CrmLink.__table__.c
        linked, failing = conn.execute(
            select(func.count(), func.count(t.failure)).where(t.connection_id == row.id)
        ).one()
    result = {"crm": row.kind, "ok": True, "linked": int(linked), "failing": int(failing)}
    if as_json:
        app.emit_json(result)
        return
    app.out.print(f"{row.kind}: credentials accepted; {linked:,} members linked, {failing:,} failing")


@crm.command("sync")
@click.option("--dry-run", is_flag=True, help="Print what would change, per member and field; send nothing.")
@crm_option
@workspace_option
@json_option
@pass_app
@handle_errors
def sync(app: AppContext, dry_run: bool, kind: str | None, workspace: str | None, as_json: bool) -> None:
    """Send changed members' scores, levels and reasons to the CRM (unchanged ones cost no call)."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
    with app.progress("syncing members") as update:
        report = sync_crm(app.engine, app.settings, ws.id, kind=kind, dry_run=dry_run, progress=update)
    if as_json:
        app.emit_json(report.as_dict())
        return
    print_report(app, report)


def print_report(app: AppContext, report: SyncReport) -> None:
    if report.dry_run:
        app.out.print(
            f"dry run: {report.counts.get('would_change', 0):,} members would change, "
            f"{report.counts.get('unchanged', 0):,} unchanged; nothing was sent"
        )
        for change in report.changes[:50]:
            fields = ", ".join(f"{k}: {v['from']!r} -> {v['to']!r}" for k, v in change["fields"].items())
            new = " (new contact)" if change["new"] else ""
            app.out.print(
                f"  member {change['member_id']} <{escape(change['email'])}>{new}: {escape(fields)}"
            )
        if len(report.changes) > 50:
            app.out.print(f"  ... and {len(report.changes) - 50:,} more (use --json for all)")
        return
    table = Table(title=f"{report.kind} sync (run {report.run_id})", title_justify="left")
    for col in ("created", "updated", "unchanged", "failed", "API calls", "seconds"):
        table.add_column(col, justify="right")
    c = report.counts
    table.add_row(
        f"{c.get('created', 0):,}",
        f"{c.get('updated', 0):,}",
        f"{c.get('unchanged', 0):,}",
        f"{c.get('failed', 0):,}",
        f"{sum(report.calls.values()):,}",
        f"{report.seconds:.1f}",
    )
    app.out.print(table)
    if report.schema and report.schema.created:
        app.out.print(f"created CRM properties: {', '.join(report.schema.created)}")
    for f in report.failures:
        app.out.print(f"  failed: member {f['member_id']}: {escape(str(f['reason']))}")
    if c.get("failed"):
        app.out.print("failed members keep their last good state and are sent again on the next sync")
    if c.get("erasures_done") or c.get("erasures_failed"):
        app.out.print(
            f"erased members' CRM records: {c.get('erasures_done', 0):,} handled, "
            f"{c.get('erasures_failed', 0):,} failed (tried again on the next sync)"
        )
    if c.get("shared_email"):
        app.out.print(
            f"{c['shared_email']:,} members share an email with another member and were not sent "
            "(one contact per email); review `flywheel members suggestions` to merge them"
        )


@crm.command("pull")
@crm_option
@workspace_option
@json_option
@pass_app
@handle_errors
def pull(app: AppContext, kind: str | None, workspace: str | None, as_json: bool) -> None:
    """Read back contacts' lifecycle stage and owner, and deals: a won deal makes its people customers."""
    from plugin.services.crm_pull import pull_crm

    with app.session() as session:
        ws = app.workspace(session, workspace)
    with app.progress("reading the CRM") as update:
        report = pull_crm(app.engine, app.settings, ws.id, kind=kind, progress=update)
    if as_json:
        app.emit_json(report.as_dict())
        return
    c = report.counts
    app.out.print(
        f"{report.kind}: {c.get('contacts', 0):,} contacts read ({c.get('linked', 0):,} are members), "
        f"{c.get('deals', 0):,} deals ({c.get('won_deals', 0):,} won); "
        f"{c.get('stages_changed', 0):,} members' lifecycle changed, {c.get('made_customers', 0):,} became "
        f"customers; {sum(report.calls.values()):,} API calls in {report.seconds:.1f} s"
    )
    if c.get("stages_changed"):
        app.out.print("next: `flywheel score` rescores everyone with their new stages")


@crm.command("map")
@click.argument("field", required=False)
@click.argument("crm_field", required=False)
@click.option("--off", is_flag=True, help="Stop sending this field.")
@click.option("--reset", is_flag=True, help="Back to the default name for this field.")
@crm_option
@workspace_option
@json_option
@pass_app
@handle_errors
def field_map(
    app: AppContext,
    field: str | None,
    crm_field: str | None,
    off: bool,
    reset: bool,
    kind: str | None,
    workspace: str | None,
    as_json: bool,
) -> None:
    """Show which Flywheel value goes to which CRM field, or change one: `map flywheel_reasons
    Community_Notes__c`, `map firstname --off`, `map firstname --reset`."""
    from plugin.services.crm_connections import set_field_mapping

    with app.session() as session:
        ws = app.workspace(session, workspace)
    row = load_connection(app.engine, ws.id, kind)
    if field is not None:
        row = set_field_mapping(app.engine, row, field, None if off else crm_field, reset=reset)
    names = FieldMap.from_settings(row.settings).names
    shown = {k: (sf_name(v) if row.kind == "salesforce" and v else v) for k, v in names.items()}
    if as_json:
        app.emit_json({"crm": row.kind, "fields": shown})
        return
    table = Table(title=f"{row.kind} field mapping", title_justify="left")
    table.add_column("Flywheel value")
    table.add_column("CRM field")
    for key, value in shown.items():
        table.add_row(key, value or "(not sent)")
    app.out.print(table)


@crm.group("card")
def card() -> None:
    """Flywheel's signals on the CRM's own contact record."""


@card.command("hubspot")
@click.option("--portal-id", default=None, help="The HubSpot account (portal) id whose cards to answer.")
@click.option(
    "--client-secret-env",
    metavar="VAR",
    default=None,
    help="Environment variable holding the HubSpot app's client secret (asked for when not given).",
)
@click.option("--off", is_flag=True, help="Stop answering this workspace's card requests.")
@workspace_option
@json_option
@pass_app
@handle_errors
def card_hubspot(
    app: AppContext,
    portal_id: str | None,
    client_secret_env: str | None,
    off: bool,
    workspace: str | None,
    as_json: bool,
) -> None:
    """Answer the HubSpot CRM card of one portal (requests signed with the app's client secret,
    which is stored encrypted and never printed); without options, show the card's setup."""
    from plugin.services.crm_connections import card_portal, set_hubspot_card

    with app.session() as session:
        ws = app.workspace(session, workspace)
    row = load_connection(app.engine, ws.id, "hubspot")
    if off:
        row = set_hubspot_card(app.engine, app.settings, row, None, None)
    elif portal_id is not None:
        secret = secret_input(
            client_secret_env,
            "client_secret_env",
            "HubSpot app client secret",
            hint="the app's client secret",
        )
        row = set_hubspot_card(app.engine, app.settings, row, portal_id, secret)
    portal = card_portal(row)
    base = app.settings.public_url
    url = f"{base}/crm/hubspot/card" if base else None
    if as_json:
        app.emit_json({"crm": "hubspot", "workspace": ws.slug, "portal_id": portal, "data_fetch_url": url})
        return
    if portal is None:
        app.out.print(f"workspace {escape(ws.slug)} shows no HubSpot CRM card")
        return
    app.out.print(f"workspace {escape(ws.slug)} answers the CRM card of HubSpot portal {portal}")
    app.out.print(
        f"data fetch URL: {escape(url)}"
        if url
        else "data fetch URL: <FLYWHEEL_PUBLIC_URL>/crm/hubspot/card (set FLYWHEEL_PUBLIC_URL)"
    )


@crm.command("embed-link")
@click.argument("member")
@click.option("--days", type=click.IntRange(1, 365), default=30, show_default=True, help="How long it works.")
@workspace_option
@json_option
@pass_app
@handle_errors
def embed_link(app: AppContext, member: str, days: int, workspace: str | None, as_json: bool) -> None:
    """A signed link to MEMBER's page (id or email) for a CRM to show in an iframe, e.g. in a
    Salesforce URL field; it works for --days days. Who may frame it: FLYWHEEL_CRM_FRAME_ANCESTORS."""
    from plugin.db.base import utcnow
    from plugin.services.crm_card import make_embed_link

    with app.session() as session:
        ws = app.workspace(session, workspace)
    link = make_embed_link(app.engine, app.settings, ws.id, member, days=days, now=utcnow())
    framed_by = app.settings.crm_frame_ancestors
    if as_json:
        app.emit_json({**link.as_dict(), "workspace": ws.slug, "frame_ancestors": framed_by})
        return
    app.out.print(escape(link.url), soft_wrap=True)
    app.out.print(f"works until {link.expires_at:%Y-%m-%d %H:%M} UTC; may be framed by: {escape(framed_by)}")
    if framed_by == "'none'":
        app.out.print("no CRM may frame it yet: set FLYWHEEL_CRM_FRAME_ANCESTORS (see docs/crm-embed.md)")


@crm.command("erasure-policy")
@click.argument("policy", type=click.Choice(["delete", "anonymize", "keep"]), required=False)
@crm_option
@workspace_option
@json_option
@pass_app
@handle_errors
def erasure_policy(
    app: AppContext, policy: str | None, kind: str | None, workspace: str | None, as_json: bool
) -> None:
    """What the CRM sync does with an erased member's CRM record: delete it (the default; HubSpot's
    GDPR delete), anonymize it (name, email and Flywheel fields blanked) or keep it. Sets every
    connection of the workspace, or the one --crm names; without POLICY, shows the current one."""
    from plugin.services.gdpr import set_erasure_policy

    with app.session() as session:
        ws = app.workspace(session, workspace)
    policies = set_erasure_policy(app.engine, ws.id, policy, kind)
    if as_json:
        app.emit_json({"workspace": ws.slug, "erasure_policy": policies})
        return
    for name, value in policies.items():
        done = {"delete": "deleted", "anonymize": "anonymized", "keep": "kept"}[value]
        app.out.print(f"{name}: an erased member's CRM record is {done} by the next `flywheel crm sync`")
