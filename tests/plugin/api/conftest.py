"""API test fixtures: an app on the test database and tokens of any workspace and role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from plugin.services.workspaces import ensure_workspace, issue_token
from plugin.settings import Settings
from plugin.web.app import create_app

Auth = Callable[..., dict[str, str]]


@pytest.fixture
def app(engine: Engine, settings: Settings) -> Flask:
    return create_app(settings, engine)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth(engine: Engine, workspace_id: int) -> Auth:
    """``auth("sales")``: headers with a fresh token of that role in the default workspace;
    ``auth("admin", workspace="other")`` for another workspace (created when missing)."""

    def make(role: str, workspace: str = "default") -> dict[str, str]:
        with Session(engine) as session:
            ws, _ = ensure_workspace(session, workspace, workspace)
            token = issue_token(session, ws, role, f"test {role}").token
            session.commit()
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def scored(engine: Engine, workspace_id: int) -> dict[str, int]:
    """The hand-built community of test_score (advocates, a hot lead, customers at risk) plus two
    members with Hebrew and Arabic names, ingested and scored; returns each person's member id."""
    from tests.plugin.test_score import PEOPLE, act, community, ids, ingest, score

    extra = {
        "noa": {"email": "noa@example.org", "name": "נועה כהן"},
        "layla": {"email": "layla@example.org", "name": "ليلى حداد"},
    }
    PEOPLE.update(extra)
    try:
        rows = community() + [act(f"{who}-{d}", who, "answer", d) for who in extra for d in (1, 8, 15)]
        ingest(engine, workspace_id, rows)
        score(engine, workspace_id)
        return ids(engine)
    finally:
        for who in extra:
            PEOPLE.pop(who)


def every_item(client: FlaskClient, headers: dict[str, str], url: str) -> list[dict[str, Any]]:
    """Every item of a list, page by page, following ``next_cursor`` until it is null."""
    items: list[dict[str, Any]] = []
    cursor = None
    sep = "&" if "?" in url else "?"
    while True:
        page = client.get(url + (f"{sep}cursor={cursor}" if cursor else ""), headers=headers)
        assert page.status_code == 200, page.json
        items += page.json["items"]
        cursor = page.json["next_cursor"]
        if cursor is None:
            return items
