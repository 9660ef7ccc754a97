"""What the dashboard tests share: a scored community (``scored``, from the API tests) with consent,
a CRM connection with a synced lead and a sync run, a webhook endpoint, members named in six
scripts, and one dashboard user per role."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine, insert, update

from plugin.db.models import (
    Consent,
    CrmConnection,
    CrmLink,
    CrmSyncRun,
    Member,
    WebhookDelivery,
    WebhookEndpoint,
)
from plugin.services.secrets import encrypt
from plugin.services.users import create_user
from plugin.services.webhook_outbox import Event, emit
from plugin.settings import Settings
from plugin.web.app import create_app
from tests.plugin.test_score import FIXED
from webhooks.events import MemberRef, referral_invitation

PASSWORD = "correct horse battery staple"
PUBLIC_URL = "https://flywheel.example.com"
SALESFORCE = "https://acme.my.salesforce.com"
ROLES = ("admin", "marketer", "researcher", "sales")
#: Members who only show their names (not scored): each script the dashboard must show right.
NAMES = {
    "wei": ("王伟", "wei@example.cn"),
    "olga": ("Ольга Смирнова", "olga@example.ru"),
    "juergen": ("Jürgen Weiß", "juergen@example.de"),
    "mallory": ("<script>alert(1)</script>", "mallory@example.org"),
}
MARKETING = ("ann", "noa", "layla", "cara")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def email(role: str) -> str:
    return f"{role}@flywheel.example"


def make_app(settings: Settings, engine: Engine) -> Flask:
    """The app on the test database, with a public URL (links), the scoring's fixed clock, and
    cookies a plain-http test client and browser keep (the PostgreSQL settings want https)."""
    return create_app(
        dataclasses.replace(settings, public_url=PUBLIC_URL, cookie_secure=False), engine, clock=lambda: FIXED
    )


def seed(engine: Engine, settings: Settings, workspace_id: int, people: dict[str, int]) -> dict[str, Any]:
    ids = dict(people)
    when = FIXED - timedelta(days=30)
    with engine.begin() as conn:
        consents = [
            {"workspace_id": workspace_id, "member_id": mid, "purpose": "research", "granted": True,
             "recorded_at": when, "source": "test"}
            for mid in people.values()
        ] + [
            {"workspace_id": workspace_id, "member_id": people[who], "purpose": "marketing", "granted": True,
             "recorded_at": when, "source": "test"}
            for who in MARKETING
        ]  # fmt: skip
        conn.execute(insert(Consent), consents)
        for key, (name, address) in NAMES.items():
            ids[key] = conn.execute(
                insert(Member)
                .values(workspace_id=workspace_id, display_name=name, primary_email=address,
                        created_at=when, updated_at=when)
                .returning(Member.id)
            ).scalar_one()  # fmt: skip
        crm = conn.execute(
            insert(CrmConnection)
            .values(workspace_id=workspace_id, kind="salesforce", base_url=SALESFORCE,
                    credentials_encrypted=encrypt(settings, "{}"), created_at=when)
            .returning(CrmConnection.id)
        ).scalar_one()  # fmt: skip
        conn.execute(
            insert(CrmLink).values(connection_id=crm, member_id=people["cto"], crm_object="lead",
                                   crm_id="00Q5e000001AbCd", synced_at=when, failures=0)
        )  # fmt: skip
        conn.execute(
            insert(CrmSyncRun).values(connection_id=crm, direction="push", dry_run=False, status="done",
                                      started_at=when, finished_at=when + timedelta(seconds=3),
                                      counts={"created": 27, "failed": 0}, calls={"contacts.upsert": 1})
        )  # fmt: skip
        ids["endpoint"] = conn.execute(
            insert(WebhookEndpoint)
            .values(workspace_id=workspace_id, url="https://hooks.example.com/flywheel",
                    description="Marketing automation", event_types=None,
                    secret_encrypted=encrypt(settings, "whsec_dGVzdA=="), enabled=True, created_at=when)
            .returning(WebhookEndpoint.id)
        ).scalar_one()  # fmt: skip
        ids["failed_msg"] = _failed_delivery(conn, workspace_id, people["ann"])
    return ids | add_users(engine, workspace_id)


def _failed_delivery(conn: Connection, workspace_id: int, member_id: int) -> str:
    """A referral.invitation the receiver refused until the attempts ran out: the replay button's."""
    event = referral_invitation(
        workspace="default", occurred_at=FIXED, member=MemberRef(member_id, "Ann", None, None), code="seeded",
        referral_url=f"{PUBLIC_URL}/r/seeded", campaign="autumn",
    )  # fmt: skip
    (msg_id,) = emit(conn, workspace_id, [Event("referral.invitation", event)], now=FIXED)
    conn.execute(
        update(WebhookDelivery).values(status="failed", attempts=8, last_status=503,
                                       last_error="the receiver answered 503 Service Unavailable")
    )  # fmt: skip
    return msg_id


def add_users(engine: Engine, workspace_id: int) -> dict[str, int]:
    """One dashboard user per role, ``admin@flywheel.example`` and so on, all with PASSWORD."""
    with engine.begin() as conn:
        return {
            f"user:{role}": create_user(conn, workspace_id, email(role), role, PASSWORD, name=role.title())
            for role in ROLES
        }


def csrf_token(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client: FlaskClient, role: str, password: str = PASSWORD) -> Any:
    token = csrf_token(client.get("/dashboard/sign-in").text)
    return client.post(
        "/dashboard/sign-in", data={"email": email(role), "password": password, "csrf_token": token}
    )


def post(
    client: FlaskClient, url: str, data: dict[str, Any] | None = None, *, page: str | None = None
) -> Any:
    """POST a dashboard form with the CSRF token of ``page`` (default: the overview)."""
    token = csrf_token(client.get(page or "/dashboard/").text)
    return client.post(url, data={**(data or {}), "csrf_token": token})
