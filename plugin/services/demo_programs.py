"""The demo's programs stage: one referral campaign (champions invited, three referrals captured,
two of them held by the fraud checks) and one insight-panel draw, through the same services as
`flywheel referrals` and `flywheel panels`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select, update

from plugin.db.models import Member, Panel, ReferralInvite
from plugin.services import panels
from plugin.services.panel_spec import parse_spec
from plugin.services.program_rules import load_programs
from plugin.services.referrals import capture, invite
from plugin.settings import Settings

DEMO_CAMPAIGN = "demo-spring"
DEMO_PANEL = {
    "name": "Demo: onboarding study",
    "size": 20,
    "reserve": 10,
    "seed": 7,
    "stratify_by": "customer",
    "eligibility": {"levels": ["champion", "advocate", "contributor"], "active_within_days": 180},
    "exclusions": {"other_active_panels": True},
    "quotas": {"customer": {"min": 8, "max": 8}, "prospect": {"min": 12, "max": 12}},
}


def run_programs(engine: Engine, settings: Settings, workspace_id: int, now: Any) -> dict[str, Any]:
    policy = load_programs(settings.programs_config)
    public = settings.public_url or "http://127.0.0.1:8000"  # `flywheel serve` on this machine
    with engine.begin() as conn:
        invited = invite(conn, workspace_id, segment="champions", campaign=DEMO_CAMPAIGN, policy=policy,
                         public_url=public, now=now)  # fmt: skip
        first = conn.execute(
            select(ReferralInvite.code, Member.primary_email)
            .join(Member, Member.id == ReferralInvite.member_id)
            .where(ReferralInvite.workspace_id == workspace_id, ReferralInvite.campaign == DEMO_CAMPAIGN)
            .order_by(ReferralInvite.id)
            .limit(1)
        ).first()
        customer = conn.execute(
            select(Member.primary_email).where(
                Member.workspace_id == workspace_id, Member.lifecycle_stage == "customer",
                Member.primary_email.is_not(None),
            ).limit(1)
        ).scalar()  # fmt: skip
        referrals = []
        if first is not None:
            tries = [
                ("Noa Ben-David", "noa.bendavid@prospect-demo.example"),
                ("Self Referral", first.primary_email),
                ("Existing Customer", customer),
            ]
            for name, email in tries:
                if email:
                    got = capture(
                        conn, first.code, name=name, email=email, company=None, policy=policy, now=now
                    )
                    referrals.append({"prospect": name, "status": got.status, "reason": got.reason})
        # A rerun of the demo closes the previous demo panel, so its members may be drawn again.
        conn.execute(
            update(Panel)
            .where(Panel.workspace_id == workspace_id, Panel.name == DEMO_PANEL["name"])
            .values(status="closed")
        )
        panel_id = panels.create(conn, workspace_id, parse_spec(dict(DEMO_PANEL)))
        manifest = panels.run_draw(conn, workspace_id, panel_id)
    return {
        "referrals": {
            "campaign": DEMO_CAMPAIGN,
            "invited": len(invited.invited),
            "skipped": invited.skipped,
            "captured": referrals,
        },
        "panel": {
            k: manifest[k]
            for k in ("panel", "name", "seed", "eligible", "selected", "reserve", "excluded", "shortfall")
        },
    }
