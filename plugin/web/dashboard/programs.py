"""Referrals (who referred whom, held ones with their reason) and the rewards ledger."""

from __future__ import annotations

from typing import Any

from flask import request

from plugin.services.referrals import listing
from plugin.services.rewards import balances, ledger
from plugin.web.context import engine
from plugin.web.dashboard.blueprints import pages_bp
from plugin.web.dashboard.common import may, page, require, user
from plugin.web.dashboard.reads import people

STATUSES = ("pending", "held", "converted", "rejected")


@pages_bp.get("/programs")
@require("referrals:read")
def programs() -> Any:
    ws = user().workspace_id
    status = request.args.get("status") if request.args.get("status") in STATUSES else None
    with engine().connect() as conn:
        referrals = listing(conn, ws, status=status, limit=200)
        rewards = ledger(conn, ws, limit=200) if may("rewards:read") else []
        totals = balances(conn, ws) if may("rewards:read") else []
        ids = {r["advocate"] for r in referrals} | {r["member_id"] for r in rewards + totals}
        names = people(conn, sorted(ids))
    return page("programs.html", referrals=referrals, rewards=rewards, totals=totals, names=names,
                status=status, statuses=STATUSES)  # fmt: skip
