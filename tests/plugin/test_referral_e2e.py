"""Acceptance, referrals end to end through the real HubSpot client and the HubSpot fake: an
advocate is invited, a referral is captured, the prospect appears in the CRM with who referred
them, a deal is won there, the referral converts, the reward is granted after its hold, and the
receiver gets referral.invitation, referral.converted and reward.granted, each signature verified."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from svix.webhooks import Webhook as SvixWebhook

from plugin.db.models import Referral, ReferralInvite
from plugin.services.crm_connections import save_connection
from plugin.services.crm_pull import pull_crm
from plugin.services.crm_sync import sync_crm
from plugin.services.program_rules import Programs, load_rules
from plugin.services.referrals import attribute, capture, invite
from plugin.services.rewards import balances, release
from plugin.services.webhook_endpoints import add_endpoint
from plugin.services.webhook_worker import Worker
from plugin.settings import Settings
from tests.fakes.hubspot import HubSpotFake
from tests.fakes.webhook_receiver import Receiver
from tests.plugin.test_referrals import _people

URL = "https://flywheel.example.com"


@pytest.mark.slow
def test_a_referral_from_invitation_to_paid_reward_through_the_crm(
    engine: Engine, settings: Settings, workspace_id: int, hubspot_fake: HubSpotFake
) -> None:
    live = dataclasses.replace(
        settings, public_url=URL, webhook_allow_http=True, webhook_allowed_networks="127.0.0.0/8"
    )
    people = _people(engine, workspace_id)
    now = datetime.now(UTC)
    with Receiver() as receiver:
        with Session(engine) as session:
            secret = add_endpoint(session, live, workspace_id, receiver.url).secret
            session.commit()
        receiver.trust(secret)
        with engine.begin() as conn:
            invited = invite(conn, workspace_id, segment="champions", campaign="spring", policy=Programs(),
                             public_url=URL, now=now)  # fmt: skip
            assert people["ada"] in invited.invited
            code = conn.execute(
                select(ReferralInvite.code).where(ReferralInvite.member_id == people["ada"])
            ).scalar_one()
            got = capture(conn, code, name="Dana Levi", email="dana@prospect.example", company="Prospect Ltd",
                          policy=Programs(), now=now)  # fmt: skip
        assert got.status == "pending"

        save_connection(
            engine, live, workspace_id, "hubspot", {"token": hubspot_fake.token}, hubspot_fake.base_url
        )
        pushed = sync_crm(engine, live, workspace_id, kind="hubspot")
        assert pushed.counts["failed"] == 0
        contact = hubspot_fake.contact("dana@prospect.example")
        assert contact is not None
        props = contact["properties"]
        assert props["flywheel_referral_code"] == code
        assert props["flywheel_referred_by"] == "Ada <ada@acme.example>"

        hubspot_fake.store.create(
            "deals",
            {
                "dealname": "Prospect Ltd annual",
                "dealstage": "closedwon",
                "amount": "9000",
                "pipeline": "default",
            },
            associations=[("contacts", contact["id"])],
        )
        pulled = pull_crm(engine, live, workspace_id, kind="hubspot")
        assert pulled.counts["won_deals"] == 1
        rules = load_rules()
        with engine.begin() as conn:
            assert attribute(conn, workspace_id, policy=Programs(), rules=rules) == [got.referral_id]
            assert balances(conn, workspace_id)[0]["pending"] == "50"  # held 14 days
            assert release(conn, workspace_id, datetime.now(UTC) + timedelta(days=15)) != []
            assert balances(conn, workspace_id)[0]["approved"] == "50"
            status = conn.execute(select(Referral.status).where(Referral.id == got.referral_id)).scalar_one()
        assert status == "converted"

        worker = Worker(engine, live, threads=2)
        worker.run(once=True)
        worker.close()
        seen = []
        for headers, body in receiver.raw:
            SvixWebhook(secret).verify(body, headers)
            seen.append(json.loads(body))
    types = [m["type"] for m in seen]
    assert "referral.invitation" in types and "referral.converted" in types
    rewards = [m["data"]["reward"] for m in seen if m["type"] == "reward.granted"]
    # Both leave in one worker run, on two threads: their arrival order is not theirs to keep.
    assert sorted(r["status"] for r in rewards) == ["approved", "pending"]
    assert {r["idempotency_key"] for r in rewards} == {f"referral-{got.referral_id}"}
    converted = next(m for m in seen if m["type"] == "referral.converted")
    assert (
        converted["data"]["referral"]["code"] == code and converted["data"]["member"]["id"] == people["ada"]
    )
