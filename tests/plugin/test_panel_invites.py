"""Panel invitations: localized messages with signed, expiring links; the accept and decline
pages; consent withdrawal and the contact budget at every send; no-responses replaced."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from plugin.db.models import Consent, Outreach, PanelMember, WebhookMessage
from plugin.services import panel_invites, panels
from plugin.services.program_rules import Programs, load_rules
from plugin.services.webhook_endpoints import add_endpoint
from plugin.settings import Settings
from plugin.web.app import create_app
from tests.plugin.test_panels import _community, _spec

URL = "https://flywheel.example.com"
POLICY = Programs()


@pytest.fixture
def live(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, public_url=URL, webhook_allow_http=True, webhook_allowed_networks="127.0.0.0/8"
    )


def _drawn(engine: Engine, settings: Settings, workspace_id: int) -> int:
    _community(engine, workspace_id)
    with Session(engine) as session:
        add_endpoint(
            session,
            settings,
            workspace_id,
            "http://127.0.0.1:9/hook",
            events="focus_group.invitation,focus_group.reminder",
        )
        session.commit()
    with engine.begin() as conn:
        panel_id = panels.create(conn, workspace_id, _spec())
        panels.run_draw(conn, workspace_id, panel_id, seed=3)
    return panel_id


def _messages(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [
            json.loads(b)
            for b in conn.execute(select(WebhookMessage.body).order_by(WebhookMessage.id)).scalars()
        ]


def _status(engine: Engine, panel_id: int) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(
            conn.execute(
                select(PanelMember.member_id, PanelMember.status).where(PanelMember.panel_id == panel_id)
            ).all()
        )


def test_invitations_go_out_in_the_members_language_with_working_links(
    engine: Engine, live: Settings, workspace_id: int
) -> None:
    panel_id = _drawn(engine, live, workspace_id)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        sent = panel_invites.invite(conn, live, workspace_id, panel_id, policy=POLICY, now=now)
    assert len(sent.members) == 10
    messages = _messages(engine)
    assert [m["type"] for m in messages] == ["focus_group.invitation"] * 10
    data = messages[0]["data"]
    assert data["message"]["direction"] == "rtl" and data["message"]["locale"].startswith("he")  # type: ignore[index]
    assert data["member"]["email"].endswith(".example")  # type: ignore[index]  research consent in force
    member_id = data["member"]["id"]  # type: ignore[index]
    client = create_app(live, engine, clock=lambda: now).test_client()
    accept = urlsplit(data["accept_url"]).path  # type: ignore[index]
    shown = client.get(accept)
    assert shown.status_code == 200 and 'dir="rtl"' in shown.text and "<form" in shown.text
    assert shown.headers["Referrer-Policy"] == "no-referrer"
    assert _status(engine, panel_id)[member_id] == "invited"  # looking changes nothing
    done = client.post(accept)
    assert done.status_code == 200 and _status(engine, panel_id)[member_id] == "accepted"
    assert client.get(accept[:-3] + "abc").status_code == 404  # a tampered link
    with engine.begin() as conn:  # a second invite round sends nothing new
        assert panel_invites.invite(conn, live, workspace_id, panel_id, policy=POLICY, now=now).members == []


def test_a_decline_by_link_pulls_in_the_reserve_and_old_links_expire(
    engine: Engine, live: Settings, workspace_id: int
) -> None:
    panel_id = _drawn(engine, live, workspace_id)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        panel_invites.invite(conn, live, workspace_id, panel_id, policy=POLICY, deadline_days=3, now=now)
    first, second = (m["data"] for m in _messages(engine)[:2])
    client = create_app(live, engine, clock=lambda: now).test_client()
    assert client.post(urlsplit(first["decline_url"]).path).status_code == 200  # type: ignore[index]
    statuses = _status(engine, panel_id)
    assert statuses[first["member"]["id"]] == "declined"  # type: ignore[index]
    assert list(statuses.values()).count("selected") == 1  # the replacement, waiting for its invitation
    later = create_app(live, engine, clock=lambda: now + timedelta(days=4)).test_client()
    assert later.get(urlsplit(second["accept_url"]).path).status_code == 410  # type: ignore[index]
    with engine.begin() as conn:
        expired = panel_invites.expire(
            conn, workspace_id, panel_id, rules=load_rules(), now=now + timedelta(days=4)
        )
    assert len(expired) == 9 and all(e["status"] == "no_response" for e in expired)


def test_reminders_skip_withdrawn_consent_and_full_budgets(
    engine: Engine, live: Settings, workspace_id: int
) -> None:
    panel_id = _drawn(engine, live, workspace_id)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        invited = panel_invites.invite(conn, live, workspace_id, panel_id, policy=POLICY, now=now).members
    withdrawn, busy = invited[0], invited[1]
    with Session(engine) as session:
        session.add(Consent(workspace_id=workspace_id, member_id=withdrawn, purpose="research", granted=False,
                            source="unsubscribe", recorded_at=now + timedelta(seconds=1)))  # fmt: skip
        for d in (1, 2):
            session.add(Outreach(workspace_id=workspace_id, member_id=busy, kind="referral.invitation",
                                 at=now - timedelta(days=10 + d)))  # fmt: skip
        session.commit()
    with engine.begin() as conn:
        reminded = panel_invites.remind(
            conn, live, workspace_id, panel_id, policy=POLICY, now=now + timedelta(days=8)
        )
    assert reminded.members == []  # the links expired after 7 days: no reminder for dead links
    with engine.begin() as conn:
        reminded = panel_invites.remind(
            conn, live, workspace_id, panel_id, policy=POLICY, now=now + timedelta(days=6)
        )
    assert withdrawn not in reminded.members and busy not in reminded.members
    assert reminded.skipped == {"research consent withdrawn": 1, "over the contact budget": 1}
    assert len(reminded.members) == 8
    kinds = [m["type"] for m in _messages(engine)]
    assert kinds.count("focus_group.reminder") == 8


def test_links_need_the_public_address(engine: Engine, settings: Settings, workspace_id: int) -> None:
    panel_id = _drawn(
        engine,
        dataclasses.replace(settings, webhook_allow_http=True, webhook_allowed_networks="127.0.0.0/8"),
        workspace_id,
    )
    from plugin.errors import ConfigError

    with engine.begin() as conn, pytest.raises(ConfigError, match="FLYWHEEL_PUBLIC_URL"):
        panel_invites.invite(conn, settings, workspace_id, panel_id, policy=POLICY)
    assert set(_status(engine, panel_id).values()) == {"selected", "waiting"}  # nobody marked invited
