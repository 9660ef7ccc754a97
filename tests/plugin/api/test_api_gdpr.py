"""``/api/v1/members/{id}/export``, ``/api/v1/members/{id}/erase`` and ``/api/v1/erasures``: admins only,
one workspace's members only, and an erased member is gone from everything the API shows."""

from __future__ import annotations

import orjson
from flask.testing import FlaskClient

from tests.plugin.api.conftest import Auth

NOA = ("noa@example.org", "נועה כהן")


def test_an_admin_exports_everything_about_a_member(
    client: FlaskClient, auth: Auth, scored: dict[str, int]
) -> None:
    got = client.get(f"/api/v1/members/{scored['noa']}/export", headers=auth("admin"))
    assert got.status_code == 200, got.json
    data = got.json
    assert data["member"]["display_name"] == "נועה כהן" and data["member"]["primary_email"] == NOA[0]
    assert [i["email"] for i in data["identities"]] == [NOA[0]]
    assert len(data["activities"]) == 3 and data["activities"][0]["occurred_at"].endswith("+00:00")
    assert {s["kind"] for s in data["scores"]} >= {"advocate"} and data["scores"][0]["reasons"]
    assert set(data["programs"]) >= {"referrals_made", "rewards", "panels", "referral_invitations"}


def test_an_erasure_answers_the_audit_line_and_the_member_is_gone_from_the_api(
    client: FlaskClient, auth: Auth, scored: dict[str, int]
) -> None:
    admin = auth("admin")
    noa = scored["noa"]
    erased = client.post(f"/api/v1/members/{noa}/erase", json={"reason": "ticket 981"}, headers=admin)
    assert erased.status_code == 200, erased.json
    line = erased.json
    assert (
        line["member_id"] == noa
        and line["reason"] == "ticket 981"
        and line["requested_by"].startswith("token:")
    )
    assert line["removed"]["activities"] == 3 and line["removed"]["identities"] == 1
    assert line["crm_refs"] == [] and line["crm_done_at"] and line["crm_plan"]
    text = orjson.dumps(line).decode()
    assert not any(n in text for n in NOA)  # the audit line holds no personal data

    listed = client.get("/api/v1/erasures", headers=admin)
    assert listed.status_code == 200 and [x["id"] for x in listed.json["items"]] == [line["id"]]
    found = client.get("/api/v1/members?q=noa&limit=200", headers=admin).json["items"]
    assert found == []
    everyone = client.get("/api/v1/members?limit=200", headers=admin).json["items"]
    assert noa not in {m["id"] for m in everyone}
    shell = client.get(f"/api/v1/members/{noa}", headers=admin)
    assert shell.status_code == 404 and "erased" in shell.json["detail"]
    export = client.get(f"/api/v1/members/{noa}/export", headers=admin).json
    assert export["member"]["erased"] and export["activities"] == [] and len(export["erasures"]) == 1

    again = client.post(f"/api/v1/members/{noa}/erase", json={"reason": "again"}, headers=admin)
    assert again.status_code == 422 and "already erased" in again.json["detail"]
    assert again.headers["Content-Type"] == "application/problem+json"


def test_erasures_page_newest_first(client: FlaskClient, auth: Auth, scored: dict[str, int]) -> None:
    admin = auth("admin")
    for who in ("fan0", "fan1", "fan2"):
        assert (
            client.post(
                f"/api/v1/members/{scored[who]}/erase", json={"reason": who}, headers=admin
            ).status_code
            == 200
        )
    first = client.get("/api/v1/erasures?limit=2", headers=admin).json
    assert [x["reason"] for x in first["items"]] == ["fan2", "fan1"] and first["next_cursor"]
    rest = client.get(f"/api/v1/erasures?limit=2&cursor={first['next_cursor']}", headers=admin).json
    assert [x["reason"] for x in rest["items"]] == ["fan0"] and rest["next_cursor"] is None


def test_only_admins_may_and_only_for_their_own_workspace(
    client: FlaskClient, auth: Auth, scored: dict[str, int]
) -> None:
    ann = scored["ann"]
    calls = [
        ("get", f"/api/v1/members/{ann}/export", None),
        ("post", f"/api/v1/members/{ann}/erase", {"reason": "x"}),
        ("get", "/api/v1/erasures", None),
    ]
    for role in ("sales", "marketer", "researcher"):
        headers = auth(role)
        for method, url, body in calls:
            got = getattr(client, method)(url, json=body, headers=headers)
            assert got.status_code == 403 and "admin" in got.json["detail"], (role, url)
    for method, url, body in calls:
        assert getattr(client, method)(url, json=body).status_code == 401
    other = auth("admin", workspace="other")
    assert client.get(f"/api/v1/members/{ann}/export", headers=other).status_code == 404
    missing = client.post(f"/api/v1/members/{ann}/erase", json={"reason": "x"}, headers=other)
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/problem+json"
    assert client.get("/api/v1/erasures", headers=other).json["items"] == []
    no_reason = client.post(f"/api/v1/members/{ann}/erase", json={}, headers=auth("admin"))
    assert no_reason.status_code == 422 and "reason" in no_reason.json["errors"]
    kept = client.get(f"/api/v1/members/{ann}", headers=auth("admin")).json
    assert kept["display_name"] == "Ann"  # nothing was erased by the refused calls
