"""Referral capture over the web: the public localized form at an advocate's link and the API
for a company's own forms, with tokens scoped to one workspace and role."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from plugin.db.models import Referral, ReferralInvite, Workspace
from plugin.services.program_rules import Programs
from plugin.services.referrals import invite
from plugin.services.workspaces import ensure_workspace, issue_token
from plugin.settings import Settings
from plugin.web.app import create_app
from tests.plugin.test_referrals import _people

URL = "https://flywheel.example.com"


@pytest.fixture
def code(engine: Engine, workspace_id: int) -> str:
    _people(engine, workspace_id)
    with engine.begin() as conn:
        invite(conn, workspace_id, segment="champions", campaign="web", policy=Programs(), public_url=URL,
               now=datetime.now(UTC))  # fmt: skip
        return str(conn.execute(select(ReferralInvite.code).limit(1)).scalar_one())


@pytest.fixture
def client(engine: Engine, settings: Settings) -> FlaskClient:
    return create_app(settings, engine).test_client()


def _token(engine: Engine, slug: str, role: str) -> str:
    with Session(engine) as session:
        workspace, _ = ensure_workspace(session, slug, slug)
        token = issue_token(session, workspace, role, "test").token
        session.commit()
        return token


def test_the_public_form_speaks_the_visitors_language_and_records_the_referral(
    client: FlaskClient, engine: Engine, code: str
) -> None:
    shown = client.get(f"/r/{code}", headers={"Accept-Language": "ar-EG,ar;q=0.9,en;q=0.5"})
    assert shown.status_code == 200 and 'dir="rtl"' in shown.text and 'lang="ar"' in shown.text
    assert '<form method="post">' in shown.text and "<script" not in shown.text
    assert client.get(f"/r/{code}", headers={"Accept-Language": "fr-FR"}).text.count('lang="en"') == 1
    bad = client.post(f"/r/{code}", data={"name": "Dana", "email": "not-an-email"})
    assert bad.status_code == 422 and 'value="Dana"' in bad.text  # nothing typed is lost
    form = {"name": "דנה לוי", "email": "dana@prospect.example", "company": "P"}
    done = client.post(f"/r/{code}", data=form, headers={"Accept-Language": "he"})
    assert done.status_code == 200 and 'dir="rtl"' in done.text
    with engine.connect() as conn:
        name, status = conn.execute(select(Referral.prospect_name, Referral.status)).one()
    assert (name, status) == ("דנה לוי", "pending")
    assert client.get("/r/not-a-code").status_code == 404


def test_the_api_needs_a_marketer_or_admin_token_of_the_codes_workspace(
    client: FlaskClient, engine: Engine, workspace_id: int, code: str
) -> None:
    with engine.connect() as conn:
        slug = conn.execute(select(Workspace.slug).where(Workspace.id == workspace_id)).scalar_one()
    body = {"code": code, "name": "Sam", "email": "sam@prospect.example", "company": "P"}
    assert client.post("/api/v1/referrals", json=body).status_code == 401
    sales = _token(engine, slug, "sales")
    assert (
        client.post("/api/v1/referrals", json=body, headers={"Authorization": f"Bearer {sales}"}).status_code
        == 403
    )
    other = _token(engine, "elsewhere", "admin")
    assert (
        client.post("/api/v1/referrals", json=body, headers={"Authorization": f"Bearer {other}"}).status_code
        == 404
    )
    marketer = _token(engine, slug, "marketer")
    auth = {"Authorization": f"Bearer {marketer}"}
    made = client.post("/api/v1/referrals", json=body, headers=auth)
    assert made.status_code == 201 and made.json == {
        "id": made.json["id"],
        "status": "pending",
        "held_reason": None,
    }
    self_ref = client.post("/api/v1/referrals", json=body | {"email": "ada@acme.example"}, headers=auth)
    assert self_ref.status_code == 201 and self_ref.json["status"] == "held"
    invalid = client.post("/api/v1/referrals", json=body | {"email": "x"}, headers=auth)
    assert invalid.status_code == 422 and invalid.json["errors"]["email"]
    assert invalid.headers["Content-Type"].startswith("application/problem+json")
