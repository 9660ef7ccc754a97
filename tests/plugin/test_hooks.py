"""Inbound receivers over HTTP: signatures (the platforms' published values), replays, limits, errors."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from connectors.sources.signatures import standard_webhooks_signature
from plugin.db.models import Activity, InboundDelivery
from plugin.services.hook_secrets import set_hook_secret
from plugin.settings import Settings
from plugin.web.app import create_app

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SECRET = "a-long-enough-test-secret-0123456789"
PAYLOADS = Path(__file__).resolve().parents[1] / "connectors" / "payloads"


@pytest.fixture
def vectors(shared_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((shared_dir / "data" / "signature-vectors.json").read_text())
    return data


@pytest.fixture
def client_at(settings: Settings, engine: Engine, workspace_id: int) -> Callable[[datetime], FlaskClient]:
    def make(now: datetime) -> FlaskClient:
        return create_app(settings, engine, clock=lambda: now).test_client()

    return make


@pytest.fixture
def client(client_at: Callable[[datetime], FlaskClient]) -> FlaskClient:
    return client_at(NOW)


def secret(settings: Settings, engine: Engine, workspace_id: int, source: str, value: str = SECRET) -> None:
    with Session(engine) as session:
        set_hook_secret(session, settings, workspace_id, source, value)
        session.commit()


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Activity)).scalar_one())


def github_sig(body: bytes, key: str = SECRET) -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


# -- the platforms' published test values ---------------------------------------------------------


def test_github_published_signature_is_accepted(
    client: FlaskClient, settings: Settings, engine: Engine, workspace_id: int, vectors: dict[str, Any]
) -> None:
    v = vectors["github"]
    secret(settings, engine, workspace_id, "github", v["secret"])
    headers = {"X-GitHub-Event": "ping", v["header"]: v["signature"]}
    good = client.post("/hooks/github", data=v["body"].encode(), headers=headers)
    assert good.status_code == 400  # signature verified; "Hello, World!" is then refused as not JSON
    bad = client.post("/hooks/github", data=b"Hello, World?", headers=headers)
    assert bad.status_code == 401


def test_discourse_published_signature_is_accepted(
    client: FlaskClient, settings: Settings, engine: Engine, workspace_id: int, vectors: dict[str, Any]
) -> None:
    v = vectors["discourse"]
    secret(settings, engine, workspace_id, "discourse", v["secret"])
    headers = {"X-Discourse-Event": "ping", "X-Discourse-Event-Id": "1", v["header"]: v["signature"]}
    response = client.post("/hooks/discourse", data=v["body"].encode(), headers=headers)
    assert response.status_code == 200 and response.json["status"] == "ignored"  # type: ignore[index]
    tampered = client.post("/hooks/discourse", data=b'{"ping":"KO"}', headers=headers)
    assert tampered.status_code == 401


def test_slack_published_signature_inside_and_outside_its_window(
    client_at: Callable[[datetime], FlaskClient],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    vectors: dict[str, Any],
) -> None:
    v = vectors["slack"]
    secret(settings, engine, workspace_id, "slack", v["secret"])
    headers = {"X-Slack-Request-Timestamp": v["timestamp"], "X-Slack-Signature": v["signature"]}
    sent_at = datetime.fromtimestamp(int(v["timestamp"]), UTC)
    in_window = client_at(sent_at).post("/hooks/slack", data=v["body"].encode(), headers=headers)
    assert in_window.status_code == 400  # verified; a slash-command form body is not an Events API body
    six_minutes_late = datetime.fromtimestamp(int(v["timestamp"]) + 360, UTC)
    late = client_at(six_minutes_late).post("/hooks/slack", data=v["body"].encode(), headers=headers)
    assert late.status_code == 401 and "five minutes" in late.json["detail"]  # type: ignore[index]


def test_standard_webhooks_published_signature_on_the_generic_receiver(
    client_at: Callable[[datetime], FlaskClient],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    vectors: dict[str, Any],
) -> None:
    v = vectors["standard_webhooks"]
    secret(settings, engine, workspace_id, "generic:events", v["secret"])
    headers = {
        "webhook-id": v["id"],
        "webhook-timestamp": v["timestamp"],
        "webhook-signature": v["signature"],
    }
    client = client_at(datetime.fromtimestamp(int(v["timestamp"]), UTC))
    response = client.post("/hooks/generic/events", data=v["body"].encode(), headers=headers)
    assert response.status_code == 422  # verified; {"test": ...} is not an activity record
    headers["webhook-signature"] = "v1,AAAA" + v["signature"][7:]
    assert client.post("/hooks/generic/events", data=v["body"].encode(), headers=headers).status_code == 401


# -- real deliveries --------------------------------------------------------------------------------


def test_github_delivery_is_stored_once_and_a_replay_stores_nothing(
    client: FlaskClient,
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    shared_dir: Path,
) -> None:
    secret(settings, engine, workspace_id, "github")
    body = (shared_dir / "data" / "github-webhooks" / "issues" / "opened.payload.json").read_bytes()
    headers = {
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": "d-1",
        "X-Hub-Signature-256": github_sig(body),
    }
    first = client.post("/hooks/github", data=body, headers=headers)
    assert first.status_code == 200 and first.json == {"status": "stored", "stored": 1, "duplicates": 0}
    replay = client.post("/hooks/github", data=body, headers=headers)
    assert replay.status_code == 200 and replay.json["status"] == "duplicate"  # type: ignore[index]
    # the platform re-sending the same activity under a new delivery id is caught by the activity id
    headers["X-GitHub-Delivery"] = "d-2"
    assert client.post("/hooks/github", data=body, headers=headers).json["duplicates"] == 1  # type: ignore[index]
    assert stored(engine) == 1


def test_missing_or_wrong_signature_is_401_and_stores_nothing(
    client: FlaskClient,
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    shared_dir: Path,
) -> None:
    secret(settings, engine, workspace_id, "github")
    body = (shared_dir / "data" / "github-webhooks" / "issues" / "opened.payload.json").read_bytes()
    assert client.post("/hooks/github", data=body, headers={"X-GitHub-Event": "issues"}).status_code == 401
    wrong = {"X-GitHub-Event": "issues", "X-Hub-Signature-256": github_sig(body, "another-secret-of-length")}
    assert client.post("/hooks/github", data=body, headers=wrong).status_code == 401
    unknown_ws = client.post(
        "/hooks/github?workspace=nope",
        data=body,
        headers={"X-GitHub-Event": "issues", "X-Hub-Signature-256": github_sig(body)},
    )
    assert unknown_ws.status_code == 401
    assert stored(engine) == 0


def test_oversized_body_is_413(
    client: FlaskClient, settings: Settings, engine: Engine, workspace_id: int
) -> None:
    secret(settings, engine, workspace_id, "github")
    body = b"{" + b" " * (settings.max_hook_body + 1) + b"}"
    response = client.post(
        "/hooks/github",
        data=body,
        headers={"X-GitHub-Event": "issues", "X-Hub-Signature-256": github_sig(body)},
    )
    assert response.status_code == 413


def test_malformed_payload_names_the_field(
    client: FlaskClient, settings: Settings, engine: Engine, workspace_id: int
) -> None:
    secret(settings, engine, workspace_id, "github")
    body = json.dumps(
        {
            "action": "opened",
            "issue": {"id": 1},
            "sender": {"id": 2, "login": "x"},
            "repository": {"id": 3, "full_name": "o/r"},
        }
    ).encode()
    response = client.post(
        "/hooks/github",
        data=body,
        headers={"X-GitHub-Event": "issues", "X-Hub-Signature-256": github_sig(body)},
    )
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert any(key.startswith("payload.issue") for key in response.json["errors"])  # type: ignore[index]


def test_slack_url_verification_answers_the_challenge(
    client: FlaskClient, settings: Settings, engine: Engine, workspace_id: int
) -> None:
    secret(settings, engine, workspace_id, "slack")
    body = json.dumps(
        {
            "token": "t",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    ).encode()
    stamp = str(int(NOW.timestamp()))
    sig = "v0=" + hmac.new(SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    response = client.post(
        "/hooks/slack", data=body, headers={"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": sig}
    )
    assert response.status_code == 200
    assert response.json == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_generic_receiver_stores_canonical_records_and_dedupes_on_webhook_id(
    client: FlaskClient,
    settings: Settings,
    engine: Engine,
    workspace_id: int,
) -> None:
    key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    secret(settings, engine, workspace_id, "generic:events", key)
    body = json.dumps(
        {
            "records": [
                {
                    "id": "reg-1",
                    "type": "event_registered",
                    "occurred_at": "2026-11-20T09:00:00Z",
                    "member": {"email": "kai@acme.io", "name": "Kai"},
                    "properties": {"event_id": "e1"},
                },
            ]
        }
    ).encode()
    stamp = str(int(NOW.timestamp()))
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": stamp,
        "webhook-signature": standard_webhooks_signature(key, "msg_1", stamp, body),
    }
    assert client.post("/hooks/generic/events", data=body, headers=headers).json["stored"] == 1  # type: ignore[index]
    assert client.post("/hooks/generic/events", data=body, headers=headers).json["status"] == "duplicate"  # type: ignore[index]
    with engine.connect() as conn:
        assert conn.execute(select(Activity.source)).scalar_one() == "events"
        assert conn.execute(select(func.count()).select_from(InboundDelivery)).scalar_one() == 1


def test_an_unknown_workspace_answers_exactly_like_a_wrong_signature(
    client: FlaskClient, settings: Settings, engine: Engine, workspace_id: int
) -> None:
    secret(settings, engine, workspace_id, "github")
    body = b'{"zen": "x"}'
    headers = {"X-GitHub-Event": "ping", "X-Hub-Signature-256": github_sig(body, "not-the-secret-at-all")}
    known = client.post("/hooks/github", data=body, headers=headers)
    unknown = client.post("/hooks/github?workspace=nope", data=body, headers=headers)
    unconfigured = client.post(
        "/hooks/discourse",
        data=body,
        headers={"X-Discourse-Event": "ping", "X-Discourse-Event-Signature": "sha256=00"},
    )
    assert known.status_code == unknown.status_code == unconfigured.status_code == 401
    assert known.json == unknown.json
    assert unconfigured.json["detail"] == "X-Discourse-Event-Signature does not match the body"  # type: ignore[index]
    headers.pop("X-Hub-Signature-256")
    assert (
        client.post("/hooks/github?workspace=nope", data=body, headers=headers).json
        == client.post("/hooks/github", data=body, headers=headers).json
    )


def test_a_sender_over_the_hook_budget_gets_429_with_retry_after_and_other_senders_do_not(
    settings: Settings, engine: Engine, workspace_id: int
) -> None:
    import dataclasses

    from plugin.web.hook_guard import HookGuard

    secret(settings, engine, workspace_id, "github")
    tight = dataclasses.replace(settings, hooks_rate_limit="3 per minute")
    client = create_app(tight, engine).test_client()
    body = b'{"zen": "Keep it logically awesome.", "hook_id": 1}'
    headers = {"X-GitHub-Event": "ping", "X-Hub-Signature-256": github_sig(body)}
    answers = [client.post("/hooks/github", data=body, headers=headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 20 and answers[-1].json["status"] == 429
    other = client.post("/hooks/github", data=body, headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200
    guard = HookGuard("2 per second")
    assert [guard.allow("a", now=100.0) for _ in range(3)] == [0.0, 0.0, 1.0]
    assert guard.allow("a", now=100.6) == 0.0  # half a second later, one more fits
