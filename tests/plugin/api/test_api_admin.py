"""Admin API: webhook endpoints and deliveries, CRM connections and sync runs, API tokens.

What an admin would notice: a secret is shown once and never again, a revoked token stops at
once, a stale ETag loses nothing, another workspace's ids do not exist, other roles are refused."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, update

from plugin.db.models import WebhookDelivery
from plugin.services.crm_connections import acquire_lease, finish_run, save_connection, start_run
from plugin.settings import Settings
from plugin.web.app import create_app
from tests.fakes.webhook_receiver import Receiver
from tests.plugin.api.conftest import Auth, every_item
from tests.plugin.test_webhooks import _deliver, _emit, _promoted

HOOKS = "/api/v1/webhooks"


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    """Loopback and plain http allowed (a development setup), one attempt a minute."""
    return dataclasses.replace(
        settings,
        webhook_allowed_networks="127.0.0.0/8",
        webhook_allow_http=True,
        webhook_schedule=(0, 60, 60, 60),
        webhook_timeout=2.0,
    )


@pytest.fixture
def app(engine: Engine, hook_settings: Settings) -> Flask:
    return create_app(hook_settings, engine)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _add(client: FlaskClient, admin: dict[str, str], url: str, **body: object) -> dict:
    made = client.post(f"{HOOKS}/endpoints", json={"url": url, **body}, headers=admin)
    assert made.status_code == 201, made.json
    return made.json


# --- webhooks ---------------------------------------------------------------------------------


def test_a_signing_secret_is_shown_once_at_creation_and_rotation_and_never_again(
    client: FlaskClient, auth: Auth, receiver: Receiver
) -> None:
    admin = auth("admin")
    made = _add(
        client,
        admin,
        receiver.url,
        event_types=["advocate.promoted", "lead.signal"],
        description="CRM bridge",
    )
    secret = made["secret"]
    assert secret.startswith("whsec_") and made["event_types"] == ["advocate.promoted", "lead.signal"]
    assert made["enabled"] is True and made["deliveries"] == {}
    url = f"{HOOKS}/endpoints/{made['id']}"
    for answer in (client.get(f"{HOOKS}/endpoints", headers=admin), client.get(url, headers=admin)):
        assert answer.status_code == 200
        assert secret not in answer.get_data(as_text=True) and "secret" not in answer.get_data(as_text=True)
    assert client.get(url, headers=admin).json["description"] == "CRM bridge"

    rotated = client.post(f"{url}/rotate-secret", headers=admin)
    assert rotated.status_code == 200
    new = rotated.json["secret"]
    assert new.startswith("whsec_") and new != secret and rotated.json["previous_secret_until"]
    shown = client.get(url, headers=admin)
    assert shown.json["rotating_until"] is not None
    for text in (
        shown.get_data(as_text=True),
        client.get(f"{HOOKS}/endpoints", headers=admin).get_data(True),
    ):
        assert secret not in text and new not in text
    notices = client.get(f"{HOOKS}/notices", headers=admin).json["items"]
    assert [n["kind"] for n in notices] == ["secret_rotated"] and notices[0]["endpoint_id"] == made["id"]
    assert new not in str(notices)


def test_the_ssrf_guard_refuses_inside_addresses_naming_the_url_field(
    client: FlaskClient, auth: Auth
) -> None:
    admin = auth("admin")
    for url in ("http://10.0.0.7/hook", "http://169.254.169.254/latest/meta-data", "ftp://example.com/x"):
        refused = client.post(f"{HOOKS}/endpoints", json={"url": url}, headers=admin)
        assert refused.status_code == 422, url
        assert "url" in refused.json["errors"]
        assert refused.headers["Content-Type"] == "application/problem+json"
    for url in ("http://[::1/x", "http://" + "a" * 64 + ".example.com/x", "http://127.0.0.1:99999/x"):
        bad = client.post(f"{HOOKS}/endpoints", json={"url": url}, headers=admin)
        assert bad.status_code == 422 and "url" in bad.json["errors"], url  # unparseable: no 500
    wrong = client.post(
        f"{HOOKS}/endpoints", json={"url": "http://127.0.0.1/x", "event_types": ["nope"]}, headers=admin
    )
    assert wrong.status_code == 422 and "event_types.0" in wrong.json["errors"]
    assert client.get(f"{HOOKS}/endpoints", headers=admin).json["items"] == []


def test_endpoint_edits_need_the_etag_and_a_stale_one_changes_nothing(
    client: FlaskClient, auth: Auth, receiver: Receiver
) -> None:
    admin = auth("admin")
    made = _add(client, admin, receiver.url)
    url = f"{HOOKS}/endpoints/{made['id']}"
    first = client.get(url, headers=admin)
    etag = first.headers["ETag"]
    assert first.json["event_types"] is None  # every event type
    assert client.patch(url, json={"enabled": False}, headers=admin).status_code == 428
    done = client.patch(
        url,
        json={
            "enabled": False,
            "description": "paused for maintenance",
            "event_types": ["referral.converted"],
        },
        headers={**admin, "If-Match": etag},
    )
    assert done.status_code == 200, done.json
    assert done.json["enabled"] is False and "API" in done.json["disabled_reason"]
    assert done.json["event_types"] == ["referral.converted"] and done.headers["ETag"] != etag
    stale = client.patch(
        url, json={"enabled": True, "description": "lost edit"}, headers={**admin, "If-Match": etag}
    )
    assert stale.status_code == 412
    after = client.get(url, headers=admin)
    assert after.json["enabled"] is False and after.json["description"] == "paused for maintenance"
    again = client.patch(
        url, json={"enabled": True, "event_types": None}, headers={**admin, "If-Match": after.headers["ETag"]}
    )
    assert again.status_code == 200 and again.json["enabled"] is True and again.json["event_types"] is None
    assert again.json["disabled_reason"] is None
    kinds = [n["kind"] for n in client.get(f"{HOOKS}/notices", headers=admin).json["items"]]
    assert kinds == ["enabled", "disabled"]
    bad = client.patch(url, json={"rate_limit": 0}, headers={**admin, "If-Match": again.headers["ETag"]})
    assert bad.status_code == 422 and "rate_limit" in bad.json["errors"]


def test_the_delivery_log_replay_and_recover(
    engine: Engine,
    hook_settings: Settings,
    workspace_id: int,
    client: FlaskClient,
    auth: Auth,
    receiver: Receiver,
) -> None:
    admin = auth("admin")
    made = _add(client, admin, receiver.url)
    receiver.trust(made["secret"])
    receiver.script = [(200, {}, b'{"ok":true}'), (200, {}, b'{"ok":true}'), (503, {}, b"down for a bit")]
    sent = _emit(engine, workspace_id, _promoted(3))
    _deliver(engine, hook_settings)
    log = every_item(client, admin, f"{HOOKS}/deliveries?limit=2")
    assert {d["msg_id"] for d in log} == set(sent) and len(log) == 3
    assert [d["id"] for d in log] == sorted((d["id"] for d in log), reverse=True)
    assert all(d["endpoint_id"] == made["id"] and d["attempts"] == 1 for d in log)
    waiting = client.get(f"{HOOKS}/deliveries?status=pending", headers=admin).json["items"]
    assert len(waiting) == 1 and waiting[0]["last_status"] == 503
    assert waiting[0]["last_response"] == "down for a bit" and waiting[0]["next_attempt_at"]
    delivered = client.get(f"{HOOKS}/deliveries?status=delivered", headers=admin).json["items"]
    assert len(delivered) == 2 and all(d["delivered_at"] and d["next_attempt_at"] is None for d in delivered)
    shown = client.get(f"{HOOKS}/endpoints/{made['id']}", headers=admin).json["deliveries"]
    assert shown == {"delivered": 2, "pending": 1}

    msg = delivered[0]["msg_id"]
    replayed = client.post(f"{HOOKS}/messages/{msg}/replay", headers=admin)
    assert replayed.status_code == 202 and replayed.json == {"msg_id": msg, "deliveries_queued": 1}
    one = client.get(f"{HOOKS}/deliveries?msg_id={msg}", headers=admin).json["items"]
    assert one[0]["status"] == "pending" and one[0]["attempts"] == 0
    assert client.post(f"{HOOKS}/messages/msg_nope/replay", headers=admin).status_code == 404

    with engine.begin() as conn:  # the last attempt of the 503 one failed for good
        conn.execute(
            update(WebhookDelivery).where(WebhookDelivery.status == "pending").values(status="failed")
        )
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    recovered = client.post(f"{HOOKS}/endpoints/{made['id']}/recover", json={"since": since}, headers=admin)
    assert recovered.status_code == 202 and recovered.json["deliveries_queued"] == 2
    later = client.post(
        f"{HOOKS}/endpoints/{made['id']}/recover", json={"since": "2999-01-01T00:00:00"}, headers=admin
    )
    assert later.status_code == 202 and later.json["deliveries_queued"] == 0
    with engine.connect() as conn:
        assert set(conn.execute(select(WebhookDelivery.status)).scalars()) == {"pending", "delivered"}


def test_another_workspaces_webhooks_do_not_exist(
    engine: Engine, workspace_id: int, client: FlaskClient, auth: Auth, receiver: Receiver
) -> None:
    admin, other = auth("admin"), auth("admin", workspace="other")
    made = _add(client, admin, receiver.url)
    (msg,) = _emit(engine, workspace_id, _promoted())
    url = f"{HOOKS}/endpoints/{made['id']}"
    etag = client.get(url, headers=admin).headers["ETag"]
    assert client.get(url, headers=other).status_code == 404
    assert client.patch(url, json={"enabled": False}, headers={**other, "If-Match": etag}).status_code == 404
    assert client.post(f"{url}/rotate-secret", headers=other).status_code == 404
    assert client.post(f"{url}/recover", json={"since": "2020-01-01"}, headers=other).status_code == 404
    assert client.post(f"{HOOKS}/messages/{msg}/replay", headers=other).status_code == 404
    for path in ("endpoints", "deliveries", "notices"):
        assert client.get(f"{HOOKS}/{path}", headers=other).json["items"] == []
    assert client.get(url, headers=admin).json["enabled"] is True  # untouched
    assert client.get(f"{HOOKS}/endpoints/99999999999", headers=admin).status_code == 404


# --- CRM ----------------------------------------------------------------------------------------


def test_crm_connections_show_their_state_and_runs_but_never_credentials(
    engine: Engine, settings: Settings, workspace_id: int, client: FlaskClient, auth: Auth
) -> None:
    token = "pat-na1-0000-very-secret-token"
    row = save_connection(
        engine, settings, workspace_id, "hubspot", {"token": token}, "https://crm.example.com"
    )
    runs = []
    for direction in ("push", "pull", "push"):
        run = start_run(engine, row.id, direction)
        with engine.begin() as conn:
            finish_run(conn, run, "done", {"created": 3, "updated": 1}, {"contacts.batch_upsert": 2}, None)
        runs.append(run)
    acquire_lease(engine, row.id, "host-a:123:abcd")
    admin = auth("admin")

    listed = client.get("/api/v1/crm/connections", headers=admin)
    assert listed.status_code == 200 and token not in listed.get_data(as_text=True)
    assert "credentials" not in listed.get_data(as_text=True)
    (conn_item,) = listed.json
    assert conn_item["kind"] == "hubspot" and conn_item["base_url"] == "https://crm.example.com"
    assert conn_item["lease"]["held"] is True and conn_item["lease"]["holder"] == "host-a:123:abcd"
    assert conn_item["last_run"]["id"] == runs[-1] and conn_item["sandbox"] is False
    detail = client.get(f"/api/v1/crm/connections/{row.id}", headers=admin)
    assert detail.status_code == 200 and detail.json == conn_item

    every = every_item(client, admin, "/api/v1/crm/sync-runs?limit=2")
    assert [r["id"] for r in every] == list(reversed(runs))
    assert every[0]["counts"] == {"created": 3, "updated": 1} and every[0]["calls"] == {
        "contacts.batch_upsert": 2
    }
    pulls = client.get(f"/api/v1/crm/sync-runs?direction=pull&connection_id={row.id}", headers=admin).json
    assert [r["id"] for r in pulls["items"]] == [runs[1]] and pulls["next_cursor"] is None

    other = auth("admin", workspace="other")
    assert client.get(f"/api/v1/crm/connections/{row.id}", headers=other).status_code == 404
    assert client.get("/api/v1/crm/connections", headers=other).json == []
    assert client.get("/api/v1/crm/sync-runs", headers=other).json["items"] == []


# --- tokens -------------------------------------------------------------------------------------


def test_a_token_is_shown_once_and_a_revoked_one_stops_at_once(client: FlaskClient, auth: Auth) -> None:
    admin = auth("admin")
    made = client.post(
        "/api/v1/tokens", json={"name": "ci", "role": "admin", "expires_days": 30}, headers=admin
    )
    assert made.status_code == 201, made.json
    clear = made.json["token"]
    assert clear.startswith("fw_") and clear.startswith(made.json["prefix"]) and made.json["active"] is True
    assert made.json["expires_at"] and made.json["revoked_at"] is None
    mine = {"Authorization": f"Bearer {clear}"}

    listed = client.get("/api/v1/tokens", headers=mine)
    assert listed.status_code == 200 and clear not in listed.get_data(as_text=True)
    item = next(t for t in listed.json["items"] if t["id"] == made.json["id"])
    assert item["current"] is True and item["last_used_at"] is not None and "token" not in item

    assert client.delete(f"/api/v1/tokens/{made.json['id']}", headers=admin).status_code == 204
    assert client.get("/api/v1/tokens", headers=mine).status_code == 401  # at once
    revoked = next(
        t for t in every_item(client, admin, "/api/v1/tokens?limit=1") if t["id"] == made.json["id"]
    )
    assert revoked["revoked_at"] is not None and revoked["active"] is False

    weak = client.post("/api/v1/tokens", json={"name": "dash", "role": "sales"}, headers=admin).json
    assert weak["expires_at"] is None
    sales = {"Authorization": f"Bearer {weak['token']}"}
    assert client.get("/api/v1/members", headers=sales).status_code == 200
    assert client.get("/api/v1/tokens", headers=sales).status_code == 403
    bad = client.post("/api/v1/tokens", json={"name": "x", "role": "owner"}, headers=admin)
    assert bad.status_code == 422 and "role" in bad.json["errors"]
    nul = client.post("/api/v1/tokens", json={"name": "a\x00b", "role": "sales"}, headers=admin)
    assert nul.status_code == 422 and "name" in nul.json["errors"]


def test_another_workspaces_token_cannot_be_revoked(client: FlaskClient, auth: Auth) -> None:
    admin, other = auth("admin"), auth("admin", workspace="other")
    theirs = client.get("/api/v1/tokens", headers=other).json["items"]
    assert len(theirs) == 1 and theirs[0]["current"] is True  # only their own workspace's
    mine = client.get("/api/v1/tokens", headers=admin).json["items"][0]["id"]
    assert client.delete(f"/api/v1/tokens/{mine}", headers=other).status_code == 404
    assert client.get("/api/v1/tokens", headers=admin).status_code == 200  # still works
    assert client.delete("/api/v1/tokens/99999999999", headers=admin).status_code == 404


# --- roles --------------------------------------------------------------------------------------

ADMIN_ONLY = [
    ("get", f"{HOOKS}/endpoints"),
    ("post", f"{HOOKS}/endpoints"),
    ("get", f"{HOOKS}/endpoints/1"),
    ("patch", f"{HOOKS}/endpoints/1"),
    ("post", f"{HOOKS}/endpoints/1/rotate-secret"),
    ("post", f"{HOOKS}/endpoints/1/recover"),
    ("get", f"{HOOKS}/deliveries"),
    ("post", f"{HOOKS}/messages/msg_x/replay"),
    ("get", f"{HOOKS}/notices"),
    ("get", "/api/v1/crm/connections"),
    ("get", "/api/v1/crm/connections/1"),
    ("get", "/api/v1/crm/sync-runs"),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/1"),
]


def test_only_admins_manage_webhooks_crm_and_tokens(client: FlaskClient, auth: Auth) -> None:
    for role in ("marketer", "sales", "researcher"):
        headers = auth(role)
        for method, url in ADMIN_ONLY:
            answer = getattr(client, method)(url, headers=headers, json={})
            assert answer.status_code == 403, (role, method, url)
            assert answer.headers["Content-Type"] == "application/problem+json"
    for method, url in ADMIN_ONLY:
        assert getattr(client, method)(url, json={}).status_code == 401
