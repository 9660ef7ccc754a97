"""Every API operation, called by every role and from another workspace, derived from the routes
themselves (a new endpoint is covered the day it is added):

- without a token: 401;
- each role of the owning workspace: 403 exactly when the role table refuses the permission;
- an admin of another workspace, with this workspace's ids, codes and names in the path and body:
  never a 2xx on this workspace's objects, never a byte of its data, and nothing of it changed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from plugin.db.base import Base
from plugin.db.models import CrmConnection, Member, Organization, Referral, ReferralInvite
from plugin.db.models.workspace import ROLES
from plugin.services import panels
from plugin.services.panel_spec import read_spec
from plugin.services.program_rules import load_rules
from plugin.services.rewards import grant
from plugin.services.roles import allowed
from plugin.services.webhook_endpoints import add_endpoint
from plugin.services.webhook_outbox import Event, emit
from plugin.services.workspaces import ensure_workspace, issue_token
from plugin.settings import Settings
from plugin.web.app import create_app
from tests.plugin.api.conftest import Auth

EXAMPLE_PANEL = Path(__file__).resolve().parents[3] / "docs" / "examples" / "panel.toml"
NOW = datetime.now(UTC)
PROSPECT = "prospect.of.a@example.net"
HOOK_URL = "http://127.0.0.1:9/a-hooks"


@dataclasses.dataclass
class World:
    """Workspace A's objects: an id (or code) for every path parameter the API has."""

    params: dict[str, Any]
    code: str
    markers: list[str]  # strings only workspace A's data contains


@pytest.fixture
def app(engine: Engine, settings: Settings) -> Flask:
    hooks = dataclasses.replace(settings, webhook_allowed_networks="127.0.0.0/8", webhook_allow_http=True)
    return create_app(dataclasses.replace(hooks, api_rate_limit="100000 per minute"), engine)


@pytest.fixture
def world(app: Flask, engine: Engine, settings: Settings, workspace_id: int, scored: dict[str, int]) -> World:
    ws = workspace_id
    hooks = app.extensions["flywheel.settings"]
    with Session(engine) as session:
        endpoint = add_endpoint(session, hooks, ws, HOOK_URL, description="A's receiver").endpoint.id
        session.commit()
    with engine.begin() as conn:
        ann = scored["ann"]
        org = conn.execute(select(Member.organization_id).where(Member.id == scored["cto"])).scalar_one()
        invite = conn.execute(
            insert(ReferralInvite).values(workspace_id=ws, member_id=ann, code="A-CODE-1", campaign="a")
        ).inserted_primary_key[0]
        referral = conn.execute(
            insert(Referral).values(
                workspace_id=ws, invite_id=invite, member_id=ann, prospect_name="Pia Prospect",
                prospect_email=PROSPECT, status="pending",
            )
        ).inserted_primary_key[0]  # fmt: skip
        reward = grant(
            conn, ws, ann, "manual", key="a-1", rules=load_rules(), by="test", amount="5", kind="points"
        )
        panel = panels.create(conn, ws, read_spec(EXAMPLE_PANEL))
        [msg_id] = emit(conn, ws, [Event("reward.granted", {"note": "A's message"})], now=NOW)
        connection = conn.execute(
            insert(CrmConnection).values(workspace_id=ws, kind="hubspot", credentials_encrypted="sealed")
        ).inserted_primary_key[0]
        domain = conn.execute(select(Organization.domain).where(Organization.id == org)).scalar_one()
    with Session(engine) as session:
        workspace, _ = ensure_workspace(session, "default")
        token = issue_token(session, workspace, "sales", "A's spare token").id
        session.commit()
    params = {
        "member_id": ann,
        "org_id": org,
        "referral_id": referral,
        "reward_id": reward.grant_id,
        "panel_id": panel,
        "endpoint_id": endpoint,
        "msg_id": msg_id,
        "connection_id": connection,
        "token_id": token,
        "kind": "advocate",
        "purpose": "research",
    }
    markers = ["ann@gmail.com", "dana@bigco.io", "נועה כהן", domain, PROSPECT, HOOK_URL, "A-CODE-1", msg_id]
    return World(params, "A-CODE-1", markers)


OWNED = ("member_id", "org_id", "referral_id", "reward_id", "panel_id", "endpoint_id", "msg_id")
OWNED += ("connection_id", "token_id")


def _operations(app: Flask) -> Iterator[tuple[str, str, str]]:
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            permission = app.view_functions[rule.endpoint].permission
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield method, rule.rule, permission


def _path(rule: str, params: dict[str, Any]) -> str:
    out = rule
    for part in rule.split("<")[1:]:
        spec, _ = part.split(">", 1)
        name = spec.split(":")[-1]
        assert name in params, f"the matrix has no object for path parameter {name!r}: add one to `world`"
        out = out.replace(f"<{spec}>", str(params[name]))
    return out


def _call(client: FlaskClient, method: str, path: str, headers: dict[str, str], world: World) -> Any:
    body = {
        "code": world.code, "member_id": world.params["member_id"], "member_ids": [world.params["member_id"]],
        "name": "Probe", "email": "probe@example.org", "reason": "matrix", "status": "approved",
        "granted": True, "segment": "all", "campaign": "probe", "amount": "1", "url": "https://example.org/h",
        "role": "sales", "since": NOW.isoformat(), "accept": True,
    }  # fmt: skip
    if method == "GET":
        return client.get(path, headers=headers)
    headers = {**headers, "If-Match": "*"}
    return client.open(path, method=method, json=body, headers=headers)


def _a_state(engine: Engine, workspace_id: int) -> dict[str, list[Any]]:
    """Every row of workspace A (tables without a workspace column: every row)."""
    state: dict[str, list[Any]] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            query = select(table)
            if "workspace_id" in table.c:
                query = query.where(table.c.workspace_id == workspace_id)
            if table.name == "api_tokens":
                query = query.with_only_columns(*(c for c in table.c if c.name != "last_used_at"))
            state[table.name] = sorted(json.dumps(list(r), default=str) for r in conn.execute(query))
    return state


def test_every_operation_needs_a_token(client: FlaskClient, world: World) -> None:
    operations = list(_operations(client.application))
    assert len(operations) >= 40
    for method, rule, _ in operations:
        answer = _call(client, method, _path(rule, world.params), {}, world)
        assert answer.status_code == 401, (method, rule, answer.status_code)
        assert answer.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_do_exactly_what_the_role_table_says(
    client: FlaskClient, auth: Auth, world: World, role: str
) -> None:
    headers = auth(role)
    for method, rule, permission in _operations(client.application):
        answer = _call(client, method, _path(rule, world.params), headers, world)
        assert answer.status_code != 500, (method, rule, answer.text[:500])
        if allowed(role, permission):
            assert answer.status_code not in (401, 403), (role, method, rule, answer.json)
        else:
            assert answer.status_code == 403, (role, method, rule, answer.status_code)
            assert role in answer.json["detail"]


def test_another_workspace_never_sees_or_changes_this_ones_data(
    client: FlaskClient, auth: Auth, engine: Engine, workspace_id: int, world: World
) -> None:
    intruder = auth("admin", workspace="elsewhere")
    before = _a_state(engine, workspace_id)
    for method, rule, _ in _operations(client.application):
        answer = _call(client, method, _path(rule, world.params), intruder, world)
        leaked = [m for m in world.markers if m in answer.get_data(as_text=True)]
        assert not leaked, (method, rule, leaked)
        assert answer.status_code != 500, (method, rule, answer.text[:500])
        if any(f":{name}>" in rule for name in OWNED):  # an object of workspace A in the path
            assert answer.status_code in (403, 404, 422), (method, rule, answer.status_code)
        elif method == "GET":
            assert answer.status_code == 200, (method, rule, answer.json)
    assert _a_state(engine, workspace_id) == before
